"""Held-out metrics of a checkpoint (definitions as in He et al. 2019).

    python -m vae_core.evaluate --checkpoint checkpoints/poetry --data data/poetry/test.txt --json

All quantities are in nats per line unless named per token: ``elbo`` is the negative ELBO
(``rec + kl``), ``iw_nll`` the importance-weighted bound on -log p(x), ``ppl`` exp(iw_nll summed
over lines / pieces, end-of-line included). A VRNN's ``kl`` sums the KL of every step, its
``iw_nll`` weighs whole trajectories of latents, and it has no ``mi`` or ``active_units`` (no code
for a whole line).

A sentence VAE's importance samples come from q(z|x) fitted to each line (``--fit-steps``, see
``fit_proposal``): the encoder's q is amortised over all lines, and a proposal closer to each line's
true posterior makes the bound tighter. The model is the same; its likelihood is only measured more
closely. ``iw_nll_encoder`` is the bound with the encoder's q as it is (He et al.'s estimate; the
only one with ``--fit-steps 0``). The ELBO terms, MI, active units and reconstructions always use
the encoder's q.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter

import torch

from .cli import DEVICES, command, device, non_negative_int, positive_int
from .data import Corpus, read_lines
from .latent import Gaussian, Posterior, concat
from .model import SentenceVAE
from .syllables import count
from .vrnn import VRNN

ACTIVE_THRESHOLD = 0.01  # a unit is active when Var_x E[z|x] is at least this
FIT_STEPS = 30  # Adam steps that fit each line's importance proposal (0: the encoder's q as is)
FIT_LR = 0.1  # their learning rate (the proposal's mean and log-variance are of order 1)


@torch.no_grad()
def posteriors(model: SentenceVAE, corpus: Corpus, batch_size: int = 512) -> Posterior:
    """q(z|x) of every line, in corpus order."""
    return concat([model.posterior(*corpus.batch(torch.arange(start, min(start + batch_size, len(corpus)))))
                   for start in range(0, len(corpus), batch_size)])


def active_units(mu: torch.Tensor) -> int:
    return int((mu.var(dim=0, unbiased=False) >= ACTIVE_THRESHOLD).sum()) if len(mu) > 1 else 0


def mutual_info(q: Posterior, batch_size: int = 512, generator=None) -> float:
    """He et al.'s minibatch estimate of I(x; z) under q, averaged over batches of lines.

    ``E_x E_q(z|x) log q(z|x)`` minus ``E log q(z)``, with q(z) the mixture of the batch's posteriors.
    """
    total, count = 0.0, 0
    for start in range(0, len(q), batch_size):
        part = q[start : start + batch_size]
        z = part.sample(generator=generator)  # [B, 1, nz]
        log_q = part.log_prob(z.transpose(0, 1))  # [B, B]: row j, column i is log q(z_i | x_j)
        log_qz = torch.logsumexp(log_q, dim=0) - math.log(len(log_q))
        total += float(-part.entropy().mean() - log_qz.mean()) * len(log_q)
        count += len(log_q)
    return total / max(count, 1)


@torch.no_grad()
def elbo_terms(model: SentenceVAE | VRNN, corpus: Corpus, batch_size: int = 512, generator=None) -> dict:
    """Mean ``rec``, ``kl`` and ``elbo`` per line with one posterior sample (a VRNN: one trajectory of
    latents), plus AU and MI for a sentence code.

    For a plain LM (``nz == 0``) the reconstruction term is the exact NLL and KL is zero.
    """
    rec = kl = 0.0
    qs = []
    for index in corpus.batches(batch_size):
        tokens, lengths, cond = corpus.batch(index)
        if isinstance(model, VRNN):
            terms = model.terms(tokens, lengths, generator=generator)
            line_rec, line_kl = terms.rec, terms.kl
        elif model.is_lm:
            line_rec, line_kl = model.reconstruction(tokens, lengths, model.code(None, cond)), torch.zeros(())
        else:
            q = model.posterior(tokens, lengths, cond)
            line_rec = model.reconstruction(tokens, lengths, model.code(q.sample(generator=generator)[:, 0], cond))
            line_kl = q.kl()
            qs.append(q)
        rec += float(line_rec.sum())
        kl += float(line_kl.sum())
    n = len(corpus)
    out = {"n_lines": n, "rec": rec / n, "kl": kl / n, "elbo": (rec + kl) / n}
    if qs:
        q = concat(qs)
        out.update(active_units=active_units(q.mean), mi=mutual_info(q, generator=generator))
    return out


@torch.enable_grad()
def fit_proposal(model: SentenceVAE, q: Posterior, tokens: torch.Tensor, lengths: torch.Tensor,
                 cond: torch.Tensor | None, steps: int = FIT_STEPS, lr: float = FIT_LR, generator=None) -> Posterior:
    """A Gaussian q(z|x) whose mean and log-variance, started at the encoder's, took ``steps`` Adam steps
    on each line's own ELBO (one reparameterised sample a step), as in the semi-amortised VAE of
    Kim et al. (2018). The lines are fitted together but independently (the loss is their sum). A
    bit-vector posterior is returned as it is."""
    if steps == 0 or not isinstance(q, Gaussian):
        return q
    mu, logvar = (p.detach().clone().requires_grad_() for p in (q.mu, q.logvar))
    optimizer = torch.optim.Adam([mu, logvar], lr=lr)
    for _ in range(steps):
        fitted = Gaussian(mu, logvar)
        z = fitted.sample(generator=generator)[:, 0]
        loss = model.reconstruction(tokens, lengths, model.code(z, cond)) + fitted.kl().sum(dim=-1)
        mu.grad, logvar.grad = torch.autograd.grad(loss.sum(), [mu, logvar])  # no gradients for the model
        optimizer.step()
    return Gaussian(mu.detach(), logvar.detach())


@torch.no_grad()
def iw_nll(model: SentenceVAE | VRNN, corpus: Corpus, samples: int = 100, batch_size: int = 64, chunk: int = 50,
           fit_steps: int = 0, generator=None) -> torch.Tensor:
    """Importance-weighted estimate of -log p(x) per line, ``[N]``, with ``samples`` draws from q(z|x)
    (fitted to each line by ``fit_steps`` steps of ``fit_proposal``); a VRNN's draws are whole
    trajectories of latents, z_t from q at every step.

    ``log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K``; the K samples of
    a batch are decoded ``chunk`` at a time, all lines of the batch together.
    """
    result = torch.empty(len(corpus))
    for index in corpus.batches(batch_size):
        tokens, lengths, cond = corpus.batch(index)
        if isinstance(model, VRNN):
            q = None
        elif model.is_lm:
            result[index] = model.reconstruction(tokens, lengths, model.code(None, cond)).cpu()
            continue
        else:
            q = fit_proposal(model, model.posterior(tokens, lengths, cond), tokens, lengths, cond, fit_steps,
                             generator=generator)
        log_w = [log_weights(model, q, tokens, lengths, cond, min(chunk, samples - start), generator)
                 for start in range(0, samples, chunk)]
        result[index] = -(torch.logsumexp(torch.cat(log_w, dim=1), dim=1) - math.log(samples)).cpu()
    return result


def log_weights(model: SentenceVAE | VRNN, q: Posterior | None, tokens: torch.Tensor, lengths: torch.Tensor,
                cond: torch.Tensor | None, k: int, generator=None) -> torch.Tensor:
    """``log p(x, z) - log q(z|x)`` of ``k`` draws per line, ``[N, k]``: codes from the proposal ``q``, or
    for a VRNN (``q`` None) trajectories weighed by ``sum_t log p(x_t | .) + log p(z_t | h_{t-1}) -
    log q(z_t | .)``."""
    rep = torch.arange(len(tokens), device=tokens.device).repeat_interleave(k)
    if q is None:
        terms = model.terms(tokens[rep], lengths[rep], generator=generator)
        return (terms.log_ratio - terms.rec).view(-1, k)
    z = q.sample(k, generator=generator)  # [N, k, nz]
    code = model.code(z.reshape(-1, z.size(-1)), cond[rep] if cond is not None else None)
    log_px = -model.reconstruction(tokens[rep], lengths[rep], code).view(-1, k)
    return log_px + q.log_prior(z) - q.log_prob(z)


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def unigram_f1(reference: str, hypothesis: str) -> float:
    """F1 of the word multisets of two lines (case and punctuation ignored)."""
    ref, hyp = Counter(_WORD.findall(reference.lower())), Counter(_WORD.findall(hypothesis.lower()))
    overlap = sum((ref & hyp).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(hyp.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def syllable_error(sampler, requested: list[int], seed: int = 0) -> float:
    """How well decoded lines obey requested syllable counts: the mean absolute difference between
    ``requested`` and the counts of the lines decoded (beam 4) from as many prior codes. An
    unconditioned model decodes the same codes and simply ignores the request (the reference)."""
    z = sampler.prior(len(requested), seed=seed)
    lines = sampler.beam(z, width=4, syllables=requested if sampler.condition else None)
    return sum(abs(count(line) - n) for line, n in zip(lines, requested)) / max(len(requested), 1)


def evaluate(directory, lines: list[str], iw_samples: int = 100, seed: int = 0, batch_size: int = 64,
             device="cpu", fit_steps: int = FIT_STEPS) -> dict:
    """Every metric of the module docstring for ``lines`` under the checkpoint in ``directory``,
    computed on ``device`` (the posterior samples differ between devices, so do the estimates, slightly).
    ``fit_steps`` fits each line's importance proposal (see ``fit_proposal``)."""
    from .sampler import check_lines, load  # sampler imports this module's helpers

    lines = check_lines(lines)
    sampler = load(directory)
    sampler.model.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if sampler.latent == "sequence":
        return evaluate_sequence(sampler, lines, iw_samples, generator, batch_size)
    model, tokenizer = sampler.model, sampler.tokenizer
    corpus = Corpus.from_lines(lines, tokenizer, model.config.condition).to(device)
    n_pieces = int(corpus.lengths.sum())
    nll = iw_nll(model, corpus, iw_samples if not model.is_lm else 1, batch_size, fit_steps=fit_steps,
                 generator=generator)
    if model.is_lm:
        total = float(nll.sum())
        return {"n_lines": len(lines), "n_pieces": n_pieces, "nll": total / len(lines),
                "ppl": math.exp(total / n_pieces)}
    syllables = corpus.cond.long().tolist() if corpus.cond is not None else None
    decoded = sampler.greedy(posteriors(model, corpus).mean.cpu(), syllables=syllables)
    out = elbo_terms(model, corpus, generator=generator) | _summary(float(nll.sum()), corpus, iw_samples,
                                                                    model.config.nz, lines, decoded)
    if sampler.latent != "gaussian" or fit_steps == 0:
        return out | {"fit_steps": 0}
    as_is = iw_nll(model, corpus, iw_samples, batch_size, generator=generator)  # shown beside the tighter bound
    return out | {"fit_steps": fit_steps, "iw_nll_encoder": float(as_is.mean())}


def _summary(nll_total: float, corpus: Corpus, iw_samples: int, nz: int, lines: list[str],
             reconstructed: list[str]) -> dict:
    """The metrics every latent-variable model reports beside its ELBO terms."""
    n_pieces = int(corpus.lengths.sum())
    return {"n_pieces": n_pieces, "iw_nll": nll_total / len(lines), "iw_samples": iw_samples,
            "ppl": math.exp(nll_total / n_pieces), "nz": nz,
            "recon_f1": sum(unigram_f1(a, b) for a, b in zip(lines, reconstructed)) / len(lines)}


def evaluate_sequence(sampler, lines: list[str], iw_samples: int, generator: torch.Generator, batch_size: int) -> dict:
    """``evaluate`` for a VRNN (``sampler`` a ``SequenceSampler``): the ELBO terms, iw_nll over
    trajectories, ppl and the unigram F1 of teacher-forced reconstructions."""
    model = sampler.model
    corpus = Corpus.from_lines(lines, sampler.tokenizer).to(generator.device)
    out = elbo_terms(model, corpus, generator=generator)
    total = float(iw_nll(model, corpus, iw_samples, batch_size, generator=generator).sum())
    return out | _summary(total, corpus, iw_samples, model.config.nz, lines, sampler.reconstruct(lines))


@command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--data", required=True, help="file (or folder of .txt files) of lines, one per line")
    parser.add_argument("--iw-samples", type=positive_int, default=100, help="importance samples per line for iw_nll")
    parser.add_argument("--fit-steps", type=non_negative_int, default=FIT_STEPS,
                        help="Adam steps fitting each line's importance proposal to it (0: the encoder's q as is)")
    parser.add_argument("--max-lines", type=positive_int, default=None, help="evaluate only the first N lines")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="lines per batch")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the posterior samples")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="cpu, cuda, or auto (CUDA when present)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    args = parser.parse_args(argv)
    lines = read_lines(args.data)[: args.max_lines]
    if not lines:
        raise ValueError(f"no lines in {args.data}")
    result = evaluate(args.checkpoint, lines, args.iw_samples, args.seed, args.batch_size, device(args.device),
                      args.fit_steps)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}  {value:.4f}" if isinstance(value, float) else f"{key:>14}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
