"""Training throughput at the shipped model's size, against a straightforward baseline measured in
the same run, and (with ``--budget-minutes``) the validation loss reached from scratch in that time.

    python bench/training.py                     # throughput only (about three minutes)
    python bench/training.py --budget-minutes 10 # plus the 10-minute validation loss
    python bench/training.py --device cuda       # on a GPU

The baseline is the textbook padded LSTM VAE of the same size: random batches (no length
bucketing) and a full 10,000-way softmax on every position.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from vae_core import checkpoint as ckpt  # noqa: E402
from vae_core import cli  # noqa: E402
from vae_core.data import Corpus, read_lines  # noqa: E402
from vae_core.model import ModelConfig, SentenceVAE  # noqa: E402
from vae_core.run_state import Run  # noqa: E402
from vae_core.tokenizer import Tokenizer  # noqa: E402
from vae_core.train import train, train_share  # noqa: E402
from vae_core.train_config import MODEL_FIELDS, TrainConfig  # noqa: E402
from vae_core.workers import train_parallel  # noqa: E402

BATCHES, BATCH_SIZE, TURN = 122, 64, 60


class PaddedVAE(SentenceVAE):
    """The baseline: the same network with a plain full-softmax output layer over padded batches."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.full = nn.Linear(config.dec_hidden, config.vocab_size)

    def reconstruction(self, tokens, lengths, z):
        out, _ = self.decode(tokens[:, :-1], z)
        targets = tokens[:, 1:].masked_fill(
            torch.arange(tokens.size(1) - 1, device=tokens.device) >= lengths.unsqueeze(1), -100)  # padding ignored
        nll = F.cross_entropy(self.full(out).transpose(1, 2), targets, reduction="none", ignore_index=-100)
        return nll.sum(dim=1)


def throughputs(steps: dict, corpus: Corpus, batches: dict, turn: int = TURN) -> dict:
    """Lines/s and target pieces/s of each ``steps[name](corpus, indices)`` (forward, backward, update on
    each batch of ``indices``) over its ``batches[name]``, taken in turns of ``turn`` batches each, so
    every step sees the same machine: this one's speed drifts by 10% over minutes. On a GPU each turn
    is waited for before the clock stops."""
    for name, step in steps.items():  # the first batches warm up the allocator and kernels
        step(corpus, batches[name][:2])
    totals = {name: [0.0, 0, 0] for name in steps}  # seconds, lines, pieces
    for start in range(2, min(map(len, batches.values())), turn):
        for name, step in steps.items():
            chunk = batches[name][start : start + turn]
            began = time.perf_counter()
            step(corpus, chunk)
            if corpus.tokens.is_cuda:
                torch.cuda.synchronize()
            total = totals[name]
            total[0] += time.perf_counter() - began
            total[1] += sum(len(index) for index in chunk)
            total[2] += sum(int(corpus.lengths[index].sum()) for index in chunk)
    return {name: (lines / seconds, pieces / seconds) for name, (seconds, lines, pieces) in totals.items()}


def each_batch(step):
    """A step on one batch as a step on a turn of batches."""

    def turn(corpus: Corpus, chunk: list):
        for index in chunk:
            step(corpus.batch(index))

    return turn


def textbook_step(model: PaddedVAE):
    """The baseline's training step: a plain loss, backward and Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step(batch):
        tokens, lengths, _ = batch
        q = model.posterior(tokens, lengths)
        loss = (model.reconstruction(tokens, lengths, q.sample()[:, 0]) + q.kl().sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return each_batch(step)


def trainer_step(cfg: TrainConfig, model: SentenceVAE, device: torch.device):
    """The trainer's own steps (``vae_core.train.train_share``, or with ``cfg.workers`` above 1 in its forked
    workers, ``vae_core.workers.train_parallel``) at full KL weight."""
    run = Run(cfg, model, device)
    model.train()

    def share(corpus, chunk, rank=0):
        return train_share(run, corpus, chunk, math.inf, None, lambda step: 1.0, False, rank)

    if cfg.workers > 1:
        return lambda corpus, chunk: train_parallel(run, lambda rank: share(corpus, chunk, rank))
    return share


def lstm_step(model: SentenceVAE):
    """Only the encoder's and the decoder's LSTMs, forward and backward, on inputs of the batch's
    shape: a ceiling for any training step of this size (the rest of a step comes on top)."""

    def step(batch):
        tokens = batch[0]
        n, t = tokens.size(0), tokens.size(1) - 1
        like = {"device": tokens.device, "requires_grad": True}
        encoded, _ = model.encoder(torch.randn(n, t, model.encoder.input_size, **like))
        decoded, _ = model.decoder(torch.randn(n, t, model.decoder.input_size, **like))
        (encoded.sum() + decoded.sum()).backward()

    return each_batch(step)


def report(name, value, unit, **extra):
    print(json.dumps({"name": name, "value": round(value, 2), "unit": unit, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=0, help="also train from scratch for this long")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", choices=cli.DEVICES, help="where to train")
    parser.add_argument("--workers", type=int, default=0,
                        help="the trainer's --workers (default: 2 on the CPU, 1 on a GPU)")
    args = parser.parse_args()
    try:
        device = cli.device(args.device)
    except ValueError as err:
        parser.error(str(err))
    workers = args.workers or (2 if device.type == "cpu" else 1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # the shipped model's sizes and recipe; how it trains on this machine (threads, workers) is the bench's
    shipped = dataclasses.replace(TrainConfig.from_dict(ckpt.read_json(ckpt.SHIPPED / "config.json")["train"]),
                                  threads=args.threads, workers=workers, device=args.device)
    config = shipped.model_config()
    tokenizer = Tokenizer(ckpt.SHIPPED / "tokenizer", max_len=config.max_len)
    corpus = Corpus.from_lines(read_lines(ROOT / "data" / "poetry" / "train.txt")[:20000], tokenizer)
    g = torch.Generator().manual_seed(0)
    # Evenly spaced through the batches sorted by line length, so the sample has the corpus's mix of
    # lengths (a random sample of ~60 one-length batches can be 5% shorter on average, and faster).
    by_length = sorted(corpus.batches(BATCH_SIZE, shuffle=True, generator=g),
                       key=lambda index: int(corpus.lengths[index].max()))
    picks = torch.randperm(BATCHES, generator=g).tolist()
    bucketed = [by_length[(2 * i + 1) * len(by_length) // (2 * BATCHES)] for i in picks]
    padded = list(torch.randperm(len(corpus), generator=g).split(BATCH_SIZE))[:BATCHES]

    def shipped_model() -> SentenceVAE:
        model = SentenceVAE(config)
        model.set_piece_order(corpus.piece_counts(config.vocab_size))
        return model.to(device)

    model = shipped_model()
    steps = {"baseline": textbook_step(PaddedVAE(config).to(device)), "trainer": trainer_step(shipped, model, device),
             "ceiling": lstm_step(model)}
    if workers > 1:
        one = dataclasses.replace(shipped, workers=1)
        steps["one process"] = trainer_step(one, shipped_model(), device)
    order = {name: padded if name == "baseline" else bucketed for name in steps}
    speed = throughputs(steps, corpus.to(device), order)
    (base_lines, base_pieces), (lines, pieces), (ceiling, _) = (speed[name] for name in list(steps)[:3])
    on = {"device": device.type, "threads": args.threads}
    report("train: padded full-softmax VAE (baseline)", base_lines, "lines/s", pieces_per_s=round(base_pieces), **on)
    report("train: LSTM kernels alone at the shipped size (ceiling)", ceiling, "lines/s", **on)
    if workers > 1:
        single, _ = speed["one process"]
        report("train: shipped configuration, one process", single, "lines/s", baseline=round(base_lines, 2),
               ratio=round(single / base_lines, 2), **on)
    report("train: shipped configuration", lines, "lines/s", pieces_per_s=round(pieces),
           baseline=round(base_lines, 2), ratio=round(lines / base_lines, 2), target=500, workers=workers, **on)
    if args.budget_minutes:
        with tempfile.TemporaryDirectory() as out:
            # the shipped model's options; the trainer's defaults for the rest (no --init: from scratch)
            shape = {name: getattr(shipped, name) for name in ("model", *MODEL_FIELDS)}
            cfg = TrainConfig(**shape, out=str(Path(out) / "run"), time_budget=args.budget_minutes, epochs=1000,
                              card_iw_samples=0, threads=args.threads, workers=workers, device=args.device,
                              data=str(ROOT / "data" / "poetry"))
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON figures
                train(cfg)
            epochs = ckpt.read_metrics(cfg.out)
        speeds = [row["lines_per_s"] for row in epochs[:-1]]  # the budget cuts the last epoch short
        if speeds:
            report("train: slowest whole trainer epoch in that run", min(speeds), "lines/s", epochs=speeds,
                   target=500)
        last = epochs[-1]  # where the budget ended (the trainer keeps the best epoch's weights)
        report(f"train: validation -ELBO after {args.budget_minutes:g} minutes from scratch", last["valid_elbo"],
               "nats/line", rec=round(last["valid_rec"], 3), kl=round(last["valid_kl"], 3), epochs=len(epochs),
               best=round(min(row["valid_elbo"] for row in epochs), 3))


if __name__ == "__main__":
    main()
