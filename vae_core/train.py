"""Train a sentence VAE (or the plain LSTM LM baseline, or a VRNN) on a corpus of lines.

    python -m vae_core.train --data data/poetry --out checkpoints/poetry  # the shipped model
    python -m vae_core.train --data my_lines.txt --out checkpoints/my-model
    python -m vae_core.train --data data/poetry --out checkpoints/my-model --resume
    python -m vae_core.train --data data/poetry --out checkpoints/tuned --init checkpoints/my-model --lr 3e-4
    torchrun --nproc-per-node 4 -m vae_core.train --data data/poetry --out checkpoints/my-model  # on 4 GPUs

For ``--model vae`` one command runs the shipped recipe: a first stage from scratch, then
fine-tuning stages at rising BN scales (see ``vae_core.recipe``); epochs scale with the corpus.
Each epoch appends validation metrics to ``metrics.jsonl``, keeps the best weights (by validation
loss; ``--keep last``: the last) in the checkpoint and the last epoch's full state in ``resume/``;
at the end the model card (``README.md``) is written with test metrics and samples when the data
has a test split. A run from ``--init`` carries its source's metrics forward, one training stage
more (see ``vae_core.run_state``). Under ``torchrun`` each process trains on its share of every epoch's
batches with DistributedDataParallel, and rank 0 evaluates and writes (see ``vae_core.distributed``).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import checkpoint as ckpt
from . import cli, distributed, recipe
from .card import write_card
from .data import Corpus, shard, splits
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
        return model.loss(batch, beta, cfg.free_bits)
    return model.loss(batch, beta, cfg.free_bits, cfg.bow_weight, cfg.estimator, cfg.gumbel_tau, run.baseline,
                      autoencoder)


class Objective(torch.nn.Module):
    """``batch_loss`` as a module's ``forward``: what DistributedDataParallel wraps, to average the ranks'
    gradients in the backward pass."""

    def __init__(self, run: Run):
        super().__init__()
        self.model, self.run = run.model, run

    def forward(self, batch, beta: float, autoencoder: bool = False):
        return batch_loss(self.run, batch, beta, autoencoder)


def train_step(run: Run, batch, beta: float, optimizers: list, autoencoder: bool = False):
    """One optimisation step on ``batch`` (under torchrun: on each rank's own batch, their gradients
    averaged) that updates the parameters of ``optimizers``; returns this batch's loss and parts."""
    loss, parts = batch_loss(run, batch, beta, autoencoder) if run.ddp is None else run.ddp(batch, beta, autoencoder)
    for opt in run.optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    if run.baseline.per_piece is not None:  # the score estimator's baseline: the mean of the ranks' updates
        run.baseline.per_piece = distributed.mean(run.baseline.per_piece)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip, foreach=True)
    for opt in optimizers:
        opt.step()
    return loss, parts


def encoder_burst(run: Run, corpus: Corpus, beta: float, generator: torch.Generator) -> None:
    """He et al.'s inner loop: update only the encoder on fresh batches until the loss stops falling.

    Under torchrun each rank takes its own part of one draw (``generator`` is the same on every rank),
    and the ranks' mean loss decides when to stop, so they all take the same number of steps."""
    cfg = run.cfg
    best, since_best = math.inf, 0
    rank, world = distributed.rank(), distributed.world()
    for _ in range(cfg.aggressive_steps):
        index = torch.randint(len(corpus), (world * cfg.batch_size,), generator=generator)
        index = index[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]
        loss, _ = train_step(run, corpus.batch(index), beta, [run.enc_opt])
        loss = distributed.mean(loss.item())
        if loss < best - 1e-3:
            best, since_best = loss, 0
        else:
            since_best += 1
            if since_best >= 5:
                break


def train_share(run: Run, corpus: Corpus, batches: list, deadline: float, generator: torch.Generator,
                beta_at, autoencoder: bool) -> dict:
    """Train on the epoch's ``batches``, the KL weighted by ``beta_at(step)``, until the step at which
    ``deadline`` passes (on any rank); returns the sums of the loss parts and the batches and lines
    done. ``generator`` draws the aggressive mode's encoder batches."""
    sums, done, lines = {}, 0, 0
    bar = tqdm(range(len(batches)), desc=f"epoch {run.epoch + 1}", disable=None if distributed.lead() else True,
               leave=False)
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
        lines += len(batches[position])
        bar.set_postfix(loss=f"{parts['loss']:.2f}", kl=f"{parts['kl']:.2f}", beta=f"{beta:.2f}")
        if deadline < math.inf and distributed.any_rank(time.monotonic() > deadline):
            break
    return {"sums": sums, "batches": done, "lines": lines}


def train_epoch(run: Run, corpus: Corpus, deadline: float, generator: torch.Generator) -> dict:
    """One pass over the training batches (stopping early at ``deadline``), or over this rank's share
    under torchrun; returns the mean training loss parts over all the epoch's batches, their number
    and lines, and the KL weight of the last step."""
    cfg = run.cfg
    run.model.train()
    batches = shard(corpus.batches(cfg.batch_size, shuffle=True, generator=generator), distributed.rank(),
                    distributed.world())
    autoencoder = run.epoch < run.pretraining
    total_steps = len(batches) * (cfg.epochs - run.pretraining)

    def beta_at(step: int) -> float:
        return 0.0 if autoencoder else kl_weight(cfg, step, len(batches), total_steps)

    share = train_share(run, corpus, batches, deadline, generator, beta_at, autoencoder)
    done = share["batches"]  # this rank's steps
    beta = beta_at(run.step + max(done - 1, 0))  # the weight of the epoch's last step
    if not autoencoder:
        run.step += done
    keys = list(share["sums"])
    *sums, batches, lines = distributed.sums([share["sums"][key] for key in keys] + [done, share["lines"]])
    return {f"train_{k}": v / max(batches, 1) for k, v in zip(keys, sums)} | {"beta": beta, "batches": int(batches),
                                                                               "lines": int(lines)}


def train(cfg: TrainConfig) -> Path:
    """Train as ``cfg`` says and return the checkpoint directory; under torchrun, as one of its ranks (a
    lost rank stops the others with ``distributed.PeerLost``)."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file; give a directory for the checkpoint")
    device = distributed.start(cfg.device)
    try:
        lines = splits(cfg.data, cfg.max_lines, cfg.valid_fraction, cfg.seed)
        if distributed.lead():
            print(f"data: {len(lines[0])} training lines, {len(lines[1])} validation, {len(lines[2])} test",
                  flush=True)
            recipe.warn_if_small(len(lines[0]))
        every = recipe.stages(cfg, len(lines[0]))
        runs = recipe.plan(cfg, every)
        command = dataclasses.replace(cfg, epochs=every[0].epochs, resume=False)  # what the checkpoint records
        # the stages share the tokenizer and the data: tokenized once
        tokenizer_dir = Path(cfg.tokenizer) if cfg.tokenizer else ckpt.SHIPPED / "tokenizer"
        tokenizer = Tokenizer(tokenizer_dir, max_len=cfg.max_len)
        data = tuple(Corpus.from_lines(part, tokenizer, cfg.condition) for part in lines[:2]) + (lines[2],)
        outs = [stage.out for stage in every]
        with distributed.peers(out):
            for stage in runs:
                if len(outs) > 1 and distributed.lead():
                    print(f"stage {outs.index(stage.out) + 1} of {len(outs)}: {stage.epochs} epochs at BN scale "
                          f"{stage.bn_gamma:g} into {stage.out}", flush=True)
                train_on(stage, data, tokenizer_dir, device, command, card=stage is runs[-1])
        if distributed.lead() and (out / "stages").is_dir():
            shutil.rmtree(out / "stages")  # the finished stages: the last one's log holds their epochs
        distributed.stop(together=True)
        return out
    finally:
        distributed.stop()  # after an error: leave at once (a lost peer would never reach a barrier)


def train_on(cfg: TrainConfig, data: tuple[Corpus, Corpus, list[str]], tokenizer_dir: Path, device: torch.device,
             command: TrainConfig, card: bool = True) -> Path:
    """Train one stage as ``cfg`` says on ``data`` (the training and validation corpora, tokenized with
    the tokenizer in ``tokenizer_dir``, and the test lines), on ``device`` once any process group is
    joined; its checkpoint records the whole ``command``, and with ``card`` the model card is written
    at the end."""
    lead, out = distributed.lead(), Path(cfg.out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_set, valid_set, test_lines = data

    model = (VRNN if cfg.model == "vrnn" else SentenceVAE)(cfg.model_config(train_set.cond))
    model.set_piece_order(train_set.piece_counts(model.config.vocab_size))
    model.to(device)
    run = start(cfg, model, device, train_set.cond)
    if distributed.world() > 1:
        run.ddp = distributed.wrap(Objective(run), device)
    if lead:
        ckpt.copy_tokenizer(tokenizer_dir, out)

    valid_dev, train_dev = valid_set.to(device), train_set.to(device)
    began, spent = time.monotonic(), run.seconds  # the time budget counts the earlier runs' time too
    deadline = began + (cfg.time_budget * 60 - spent if cfg.time_budget else math.inf)
    while run.epoch < cfg.epochs and not distributed.any_rank(time.monotonic() >= deadline):
        # schedule: this epoch's shuffle, seeded per epoch so that a resumed run shuffles exactly as one
        # that never stopped (the KL weights and pretraining follow run.step and run.epoch); under
        # torchrun the same on every rank, while each rank but the lead draws its own dropout and noise
        generator = torch.Generator().manual_seed(1_000_003 * cfg.seed + run.epoch)
        if not lead:
            torch.manual_seed(1_000_003 * cfg.seed + 1_009 * run.epoch + distributed.rank())
        lr, aggressive, started = run.lr, run.aggressive, time.monotonic()
        # step
        stats = train_epoch(run, train_dev, deadline, generator)
        seconds = time.monotonic() - started
        # evaluate (on the lead, its figures then every rank's), and what the validation metrics decide
        valid = distributed.from_lead(elbo_terms(model.eval(), valid_dev) if lead else None)
        run.epoch += 1
        run.seconds = spent + time.monotonic() - began
        keep = run.end_epoch(valid)
        distributed.share_lead_state(model)  # the new decoder drawn at the end of pretraining, say
        lines_per_s = round(stats.pop("lines") / seconds, 1)
        if not lead:
            continue
        # save: the weights the checkpoint keeps, then all that a resume needs
        if keep:
            ckpt.save_model(out, model, {"kind": cfg.model, "epoch": run.epoch, "train": cfg.recorded(),
                                         "command": command.recorded(), "valid": valid})
        run.save(out)
        # log
        row = {"stage": run.stage, "epoch": run.epoch, "seconds": round(seconds, 1), "lines_per_s": lines_per_s,
               "lr": lr, "aggressive": aggressive, **stats, **{f"valid_{k}": v for k, v in valid.items()}}
        log(out, row)

    if lead and cfg.spread_epochs and (out / "config.json").exists():
        spread_pass(cfg, train_dev, valid_dev, run.stage, command)
    if lead and card and (out / "config.json").exists():
        write_card(out, test_lines, iw_samples=cfg.card_iw_samples, baseline=cfg.baseline or None, device=device)
    return out


def log(out: Path, row: dict) -> None:
    """Append ``row`` to the run's ``metrics.jsonl`` and print it on one line."""
    ckpt.append_metrics(out, row)
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def spread_pass(cfg: TrainConfig, train_set: Corpus, valid_set: Corpus, stage: int, command: TrainConfig) -> None:
    """The last step for a matched-prior model: a head that widens or narrows each line's variances
    (``ModelConfig.spread``) trains on the plain ELBO for ``--spread-epochs`` with every other weight
    fixed, without dropout, so the means, and with them reconstructions and the map, stay as they were.
    The matched prior gives every line the same variance, which is too narrow for most lines: the head
    brings q(z|x) closer to each line's posterior, so the bound from the encoder's q tightens. Skipped
    when the checkpoint in ``cfg.out`` has the head already. The corpora are on the training device; the
    metrics log counts the head's epochs as ``spread`` within ``stage``."""
    out = Path(cfg.out)
    trained, info = ckpt.build_model(out)
    if not isinstance(trained, SentenceVAE) or not trained.config.match_prior or trained.config.spread:
        return
    model = SentenceVAE(dataclasses.replace(trained.config, spread=True))
    model.load_state_dict(model.fit_weights(trained.state_dict()))
    model.to(train_set.tokens.device).eval()  # BN's running statistics too: the means are the trained model's
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("to_spread."))
    optimizer = torch.optim.Adam(model.to_spread.parameters(), lr=cfg.spread_lr)
    for epoch in range(cfg.spread_epochs):
        started, sums = time.monotonic(), {}
        batches = train_set.batches(cfg.batch_size, shuffle=True,
                                    generator=torch.Generator().manual_seed(1_000_003 * cfg.seed + 500_000 + epoch))
        for index in tqdm(batches, desc=f"variances {epoch + 1}", leave=False):
            loss, parts = model.loss(train_set.batch(index), beta=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
        seconds = time.monotonic() - started
        valid = elbo_terms(model, valid_set)
        ckpt.save_model(out, model, {"kind": info["kind"], "epoch": info["epoch"], "train": cfg.recorded(),
                                     "command": command.recorded(), "valid": valid})
        log(out, {"stage": stage, "spread": epoch + 1, "seconds": round(seconds, 1),
                  "lines_per_s": round(len(train_set) / seconds, 1), "lr": cfg.spread_lr,
                  **{f"train_{k}": v / len(batches) for k, v in sums.items()},
                  **{f"valid_{k}": v for k, v in valid.items()}})


@cli.command
def main(argv=None) -> int:
    try:
        out = train(parse_args(argv, description=__doc__))
    except distributed.PeerLost as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if distributed.lead():
        print(f"checkpoint: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
