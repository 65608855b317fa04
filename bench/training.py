"""Training throughput at the shipped model's size, against a straightforward baseline measured in
the same run, and (with ``--budget-minutes``) the validation loss reached from scratch in that time.

    python bench/training.py                     # throughput only (about four minutes)
    python bench/training.py --budget-minutes 10 # plus the 10-minute validation loss
    python bench/training.py --device cuda       # on a GPU

The baseline is the textbook padded LSTM VAE of the same size: random batches (no length
bucketing) and a full 10,000-way softmax on every position. On the CPU the trainer is measured in one
process with all the threads and as ``--processes`` DistributedDataParallel ranks under torchrun with
one share of the threads each, on the same batches.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import subprocess
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
from vae_core import cli, distributed  # noqa: E402
from vae_core.data import Corpus, read_lines, shard  # noqa: E402
from vae_core.model import ModelConfig, SentenceVAE  # noqa: E402
from vae_core.run_state import Run  # noqa: E402
from vae_core.tokenizer import Tokenizer  # noqa: E402
from vae_core.train import Objective, train, train_share  # noqa: E402
from vae_core.train_config import MODEL_FIELDS, TrainConfig  # noqa: E402

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
    is waited for before the clock stops. A step that runs in other processes returns the seconds its
    batches took there (their start-up not counted)."""
    for name, step in steps.items():  # the first batches warm up the allocator and kernels
        step(corpus, batches[name][:2])
    totals = {name: [0.0, 0, 0] for name in steps}  # seconds, lines, pieces
    for start in range(2, min(map(len, batches.values())), turn):
        for name, step in steps.items():
            chunk = batches[name][start : start + turn]
            began = time.perf_counter()
            seconds = step(corpus, chunk)
            if corpus.tokens.is_cuda:
                torch.cuda.synchronize()
            total = totals[name]
            total[0] += seconds if isinstance(seconds, float) else time.perf_counter() - began
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
    """The trainer's own steps (``vae_core.train.train_share``; in a torchrun rank, on its share of the
    batches) at full KL weight."""
    run = Run(cfg, model, device)
    model.train()
    if distributed.world() > 1:
        run.ddp = distributed.wrap(Objective(run), device)
    return lambda corpus, chunk: train_share(run, corpus, shard(chunk, distributed.rank(), distributed.world()),
                                             math.inf, None, lambda step: 1.0, False)


def ranks_step(batches: list, processes: int, threads: int, device: str):
    """A turn of the trainer's steps on some of ``batches`` in ``processes`` DistributedDataParallel ranks
    started by torchrun, each with ``threads`` threads (this script again, with ``--rank-turn``, which
    draws the same batches); returns their seconds."""

    def turn(corpus: Corpus, chunk: list) -> float:
        first = next(i for i, index in enumerate(batches) if index is chunk[0])
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                   "--master-port", str(free_port()), __file__, "--rank-turn", f"{first},{len(chunk)}",
                   "--batches", str(len(batches)),
                   "--threads", str(threads), "--device", device]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode:
            raise RuntimeError(f"the ranks failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]

    return turn


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (shared out among processes)")
    parser.add_argument("--device", default="cpu", choices=cli.DEVICES, help="where to train")
    parser.add_argument("--processes", type=int, default=0,
                        help="training processes to compare with one (default: 2 on the CPU, 1 on a GPU)")
    parser.add_argument("--batches", type=int, default=BATCHES, help="batches in the sample (2 of them warm up)")
    parser.add_argument("--rank-turn", default="", help=argparse.SUPPRESS)  # FIRST,COUNT: one rank's turn
    args = parser.parse_args()
    try:
        device = distributed.start(args.device) if args.rank_turn else cli.device(args.device)
    except ValueError as err:
        parser.error(str(err))
    processes = args.processes or (2 if device.type == "cpu" else 1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # the shipped model's sizes and recipe; how it trains on this machine (threads, processes) is the bench's
    recorded = ckpt.read_json(ckpt.SHIPPED / "config.json")["train"]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    shipped = dataclasses.replace(TrainConfig.from_dict({k: v for k, v in recorded.items() if k in known}),
                                  threads=args.threads, device=args.device)
    config = shipped.model_config()
    tokenizer = Tokenizer(ckpt.SHIPPED / "tokenizer", max_len=config.max_len)
    corpus = Corpus.from_lines(read_lines(ROOT / "data" / "poetry" / "train.txt")[:20000], tokenizer)
    g = torch.Generator().manual_seed(0)
    # Evenly spaced through the batches sorted by line length, so the sample has the corpus's mix of
    # lengths (a random sample of ~60 one-length batches can be 5% shorter on average, and faster).
    by_length = sorted(corpus.batches(BATCH_SIZE, shuffle=True, generator=g),
                       key=lambda index: int(corpus.lengths[index].max()))
    picks = torch.randperm(args.batches, generator=g).tolist()
    bucketed = [by_length[(2 * i + 1) * len(by_length) // (2 * args.batches)] for i in picks]
    padded = list(torch.randperm(len(corpus), generator=g).split(BATCH_SIZE))[: args.batches]

    def shipped_model() -> SentenceVAE:
        model = SentenceVAE(config)
        model.set_piece_order(corpus.piece_counts(config.vocab_size))
        return model.to(device)

    if args.rank_turn:  # one torchrun rank of ranks_step: warm up, then time the turn's batches
        first, count = map(int, args.rank_turn.split(","))
        step, corpus = trainer_step(shipped, shipped_model(), device), corpus.to(device)
        step(corpus, bucketed[:2])
        torch.distributed.barrier()
        began = time.perf_counter()
        step(corpus, bucketed[first : first + count])
        torch.distributed.barrier()
        if distributed.lead():
            print(json.dumps({"seconds": time.perf_counter() - began}))
        distributed.stop()
        return

    model = shipped_model()
    steps = {"baseline": textbook_step(PaddedVAE(config).to(device)), "trainer": trainer_step(shipped, model, device),
             "ceiling": lstm_step(model)}
    if processes > 1:
        steps["ranks"] = ranks_step(bucketed, processes, max(1, args.threads // processes), args.device)
    order = {name: padded if name == "baseline" else bucketed for name in steps}
    speed = throughputs(steps, corpus.to(device), order)
    (base_lines, base_pieces), (lines, pieces), (ceiling, _) = (speed[name] for name in list(steps)[:3])
    on = {"device": device.type, "threads": args.threads}
    report("train: padded full-softmax VAE (baseline)", base_lines, "lines/s", pieces_per_s=round(base_pieces), **on)
    report("train: LSTM kernels alone at the shipped size (ceiling)", ceiling, "lines/s", **on)
    report("train: shipped configuration, one process", lines, "lines/s", pieces_per_s=round(pieces),
           baseline=round(base_lines, 2), ratio=round(lines / base_lines, 2), target=500, **on)
    if processes > 1:
        value, value_pieces = speed["ranks"]
        report(f"train: shipped configuration, DistributedDataParallel, torchrun with {processes} processes", value,
               "lines/s", pieces_per_s=round(value_pieces), baseline=round(base_lines, 2),
               ratio=round(value / base_lines, 2), one_process=round(lines, 2), processes=processes, **on)
    if args.budget_minutes:
        with tempfile.TemporaryDirectory() as out:
            # the shipped model's options; the trainer's defaults for the rest (no --init: from scratch)
            shape = {name: getattr(shipped, name) for name in ("model", *MODEL_FIELDS)}
            cfg = TrainConfig(**shape, out=str(Path(out) / "run"), time_budget=args.budget_minutes, epochs=1000,
                              refine="none", card_iw_samples=0, threads=args.threads, device=args.device,
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
