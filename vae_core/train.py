"""Train a sentence VAE (or the plain LSTM LM baseline, or a VRNN) on a corpus of lines.

    python -m vae_core.train --data data/poetry --out checkpoints/my-model
    python -m vae_core.train --data data/poetry --out checkpoints/my-model --resume
    python -m vae_core.train --data data/poetry --out checkpoints/my-model --workers 2  # on two CPU cores
    python -m vae_core.train --data data/poetry --out checkpoints/tuned --init checkpoints/my-model --lr 3e-4

Each epoch appends validation metrics to ``metrics.jsonl``, keeps the best weights (by validation
loss; ``--keep last``: the last) in the checkpoint and the last epoch's full state in ``resume/``;
at the end the model card (``README.md``) is written with test metrics and samples when the data
has a test split. A run from ``--init`` carries its source's metrics forward, one training stage
more (see ``vae_core.run_state``).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import checkpoint as ckpt
from . import cli, workers
from .card import write_card
from .data import Corpus, splits
from .evaluate import elbo_terms
from .model import SentenceVAE
from .run_state import Run, start
from .tokenizer import Tokenizer
from .train_config import TrainConfig, parse_args
from .vrnn import VRNN


def kl_weight(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The KL term's weight (beta) at optimisation step ``step`` (counted after any pretraining)."""
    if cfg.kl_schedule == "linear" and cfg.kl_warmup > 0:
        return min(1.0, step / (cfg.kl_warmup * steps_per_epoch))
    if cfg.kl_schedule == "cyclical":
        period = max(1, total_steps // cfg.kl_cycles)
        return min(1.0, 2.0 * (step % period) / period)
    return 1.0


def batch_loss(run: Run, batch, beta: float, autoencoder: bool = False):
    """The run's model's loss on ``batch`` and its parts, with the run's recipe (free bits, the
    bag-of-words weight, the bit-vector estimator)."""
    cfg, model = run.cfg, run.model
    if isinstance(model, VRNN):
        return model.loss(batch, beta)
    return model.loss(batch, beta, cfg.free_bits, cfg.bow_weight, cfg.estimator, cfg.gumbel_tau, run.baseline,
                      autoencoder)


def train_step(run: Run, batch, beta: float, optimizers: list, autoencoder: bool = False):
    """One optimisation step on ``batch`` that updates the parameters of ``optimizers``; returns
    ``batch_loss``'s loss and parts."""
    loss, parts = batch_loss(run, batch, beta, autoencoder)
    for opt in run.optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip, foreach=True)
    for opt in optimizers:
        opt.step()
    return loss, parts


def encoder_burst(run: Run, corpus: Corpus, beta: float, generator: torch.Generator) -> None:
    """He et al.'s inner loop: update only the encoder on fresh batches until the loss stops falling."""
    cfg = run.cfg
    best, since_best = math.inf, 0
    for _ in range(cfg.aggressive_steps):
        index = torch.randint(len(corpus), (cfg.batch_size,), generator=generator)
        loss, _ = train_step(run, corpus.batch(index), beta, [run.enc_opt])
        if loss.item() < best - 1e-3:
            best, since_best = loss.item(), 0
        else:
            since_best += 1
            if since_best >= 5:
                break


def train_share(run: Run, corpus: Corpus, batches: list, deadline: float, generator: torch.Generator | None,
                beta_at, autoencoder: bool, rank: int = 0) -> dict:
    """Train on every ``cfg.workers``-th of the epoch's ``batches``, from the ``rank``-th, the KL weighted by
    ``beta_at(step)``; returns the sums of the loss parts, the batches done and the score estimator's
    baseline. ``generator`` draws the aggressive mode's encoder batches (one worker only)."""
    cfg = run.cfg
    sums, done = {}, 0
    mine = range(rank, len(batches), cfg.workers)
    bar = tqdm(mine, desc=f"epoch {run.epoch + 1}", disable=None if rank == 0 else True, leave=False)
    for position in bar:
        beta = beta_at(run.step + position)
        if run.aggressive:
            encoder_burst(run, corpus, beta, generator)
        loss, parts = train_step(run, corpus.batch(batches[position]), beta,
                                 [run.dec_opt] if run.aggressive else run.optimizers, autoencoder)
        parts["loss"] = loss.item()
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + value
        done += 1
        bar.set_postfix(loss=f"{parts['loss']:.2f}", kl=f"{parts['kl']:.2f}", beta=f"{beta:.2f}")
        if time.monotonic() > deadline:
            break
    return {"sums": sums, "batches": done, "baseline": run.baseline.per_piece}


def train_epoch(run: Run, corpus: Corpus, deadline: float, generator: torch.Generator) -> dict:
    """One pass over the training batches (stopping early at ``deadline``), in this process or in
    ``cfg.workers`` of them; returns the mean training loss parts and the KL weight of the last step."""
    cfg = run.cfg
    run.model.train()
    batches = corpus.batches(cfg.batch_size, shuffle=True, generator=generator)
    autoencoder = run.epoch < run.pretraining
    total_steps = len(batches) * (cfg.epochs - run.pretraining)

    def beta_at(step: int) -> float:
        return 0.0 if autoencoder else kl_weight(cfg, step, len(batches), total_steps)

    if cfg.workers == 1:
        shares = [train_share(run, corpus, batches, deadline, generator, beta_at, autoencoder)]
    else:
        shares = workers.train_parallel(
            run, lambda rank: train_share(run, corpus, batches, deadline, None, beta_at, autoencoder, rank))
        run.baseline.per_piece = shares[0]["baseline"]
    done = sum(share["batches"] for share in shares)
    beta = beta_at(run.step + max(done - 1, 0))  # the weight of the epoch's last step
    if not autoencoder:
        run.step += done
    keys = dict.fromkeys(key for share in shares for key in share["sums"])  # a worker may have had no batch
    sums = {key: sum(share["sums"].get(key, 0.0) for share in shares) for key in keys}
    return {f"train_{k}": v / max(done, 1) for k, v in sums.items()} | {"beta": beta, "batches": done}


def train(cfg: TrainConfig) -> Path:
    """Train as ``cfg`` says and return the checkpoint directory."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file; give a directory for the checkpoint")
    device = cli.device(cfg.device)
    workers.check(cfg.workers, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer_dir = Path(cfg.tokenizer) if cfg.tokenizer else ckpt.SHIPPED / "tokenizer"
    tokenizer = Tokenizer(tokenizer_dir, max_len=cfg.max_len)
    train_lines, valid_lines, test_lines = splits(cfg.data, cfg.max_lines, cfg.valid_fraction, cfg.seed)
    train_set, valid_set = (Corpus.from_lines(lines, tokenizer, cfg.condition) for lines in (train_lines, valid_lines))
    print(f"data: {len(train_set)} training lines, {len(valid_set)} validation, {len(test_lines)} test", flush=True)

    model = (VRNN if cfg.model == "vrnn" else SentenceVAE)(cfg.model_config(train_set.cond))
    model.set_piece_order(train_set.piece_counts(model.config.vocab_size))
    model.to(device)
    run = start(cfg, model, device, train_set.cond)
    ckpt.copy_tokenizer(tokenizer_dir, out)

    valid_dev, train_dev = valid_set.to(device), train_set.to(device)
    began, spent = time.monotonic(), run.seconds  # the time budget counts the earlier runs' time too
    deadline = began + (cfg.time_budget * 60 - spent if cfg.time_budget else math.inf)
    while run.epoch < cfg.epochs and time.monotonic() < deadline:
        # schedule: this epoch's shuffle, seeded per epoch so that a resumed run shuffles exactly as one
        # that never stopped (the KL weights and pretraining follow run.step and run.epoch)
        generator = torch.Generator().manual_seed(1_000_003 * cfg.seed + run.epoch)
        lr, aggressive, started = run.lr, run.aggressive, time.monotonic()
        # step
        stats = train_epoch(run, train_dev, deadline, generator)
        seconds = time.monotonic() - started
        # evaluate, and what the validation metrics decide (Run.end_epoch)
        valid = elbo_terms(model.eval(), valid_dev)
        run.epoch += 1
        run.seconds = spent + time.monotonic() - began
        keep = run.end_epoch(valid)
        # save: the weights the checkpoint keeps, then all that a resume needs
        if keep:
            ckpt.save_model(out, model, {"kind": cfg.model, "epoch": run.epoch, "train": cfg.recorded(),
                                         "valid": valid})
        run.save(out)
        # log
        lines_per_s = round(stats["batches"] * cfg.batch_size / seconds, 1)
        row = {"stage": run.stage, "epoch": run.epoch, "seconds": round(seconds, 1), "lines_per_s": lines_per_s,
               "lr": lr, "aggressive": aggressive, **stats, **{f"valid_{k}": v for k, v in valid.items()}}
        ckpt.append_metrics(out, row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    if (out / "config.json").exists():
        write_card(out, test_lines, iw_samples=cfg.card_iw_samples, baseline=cfg.baseline or None, device=device)
    return out


@cli.command
def main(argv=None) -> int:
    out = train(parse_args(argv, description=__doc__))
    print(f"checkpoint: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
