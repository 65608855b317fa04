"""Training throughput at the shipped model's size, against a straightforward baseline measured in
the same run, and (with ``--budget-minutes``) the validation loss reached from scratch in that time.

    python bench/training.py                     # throughput only (about a minute)
    python bench/training.py --budget-minutes 10 # plus the 10-minute validation loss
    python bench/training.py --device cuda       # on a GPU

The baseline is the textbook padded LSTM VAE of the same size: random batches (no length
bucketing) and a full 10,000-way softmax on every position.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
from vae_core.tokenizer import Tokenizer  # noqa: E402
from vae_core.train import MODEL_FIELDS, Run, TrainConfig, train, train_step  # noqa: E402

BATCHES, BATCH_SIZE = 62, 64


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


def throughputs(steps: dict, corpus: Corpus, batches: dict, turn: int = 5) -> dict:
    """Lines/s and target pieces/s of each ``steps[name](batch)`` (forward, backward, update) over its
    ``batches[name]``, taken in turns of ``turn`` batches each, so every step sees the same machine:
    this one's speed drifts by 10% over minutes. On a GPU each step is waited for before the clock stops."""
    for name, step in steps.items():  # the first steps warm up the allocator and kernels
        for index in batches[name][:2]:
            step(corpus.batch(index))
    totals = {name: [0.0, 0, 0] for name in steps}  # seconds, lines, pieces
    for start in range(2, min(map(len, batches.values())), turn):
        for name, step in steps.items():
            for index in batches[name][start : start + turn]:
                batch = corpus.batch(index)
                began = time.perf_counter()
                step(batch)
                if batch[0].is_cuda:
                    torch.cuda.synchronize()
                total = totals[name]
                total[0] += time.perf_counter() - began
                total[1] += len(index)
                total[2] += int(batch[1].sum())
    return {name: (lines / seconds, pieces / seconds) for name, (seconds, lines, pieces) in totals.items()}


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

    return step


def trainer_step(cfg: TrainConfig, model: SentenceVAE, device: torch.device):
    """The trainer's own step (``vae_core.train.train_step``) at full KL weight."""
    run = Run(cfg, model, device)
    model.train()
    return lambda batch: train_step(run, batch, 1.0, run.optimizers)


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

    return step


def report(name, value, unit, **extra):
    print(json.dumps({"name": name, "value": round(value, 2), "unit": unit, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=0, help="also train from scratch for this long")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", choices=cli.DEVICES, help="where to train")
    args = parser.parse_args()
    try:
        device = cli.device(args.device)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shipped = TrainConfig(**ckpt.read_json(ckpt.SHIPPED / "config.json")["train"])
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

    model = SentenceVAE(config)
    model.set_piece_order(corpus.piece_counts(config.vocab_size))
    model.to(device)
    steps = {"baseline": textbook_step(PaddedVAE(config).to(device)), "trainer": trainer_step(shipped, model, device),
             "ceiling": lstm_step(model)}
    speed = throughputs(steps, corpus.to(device), {"baseline": padded, "trainer": bucketed, "ceiling": bucketed})
    (base_lines, base_pieces), (lines, pieces), (ceiling, _) = (speed[name] for name in steps)
    on = {"device": device.type}
    report("train: padded full-softmax VAE (baseline)", base_lines, "lines/s", pieces_per_s=round(base_pieces), **on)
    report("train: LSTM kernels alone at the shipped size (ceiling)", ceiling, "lines/s", **on)
    report("train: shipped configuration", lines, "lines/s", pieces_per_s=round(pieces),
           baseline=round(base_lines, 2), ratio=round(lines / base_lines, 2), target=500, **on)
    if args.budget_minutes:
        with tempfile.TemporaryDirectory() as out:
            # the shipped model's options; the trainer's defaults for the rest (no --init: from scratch)
            shape = {name: getattr(shipped, name) for name in ("model", *MODEL_FIELDS)}
            cfg = TrainConfig(**shape, out=str(Path(out) / "run"), time_budget=args.budget_minutes, epochs=1000,
                              card_iw_samples=0, threads=args.threads, device=args.device,
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
