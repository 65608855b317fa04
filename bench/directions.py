"""Directions through the latent space on the shipped checkpoints: how far steering 100 test lines
along the length (words) and syllable directions moves their decodings (beam 4), what one steering
step and a grid of the busiest dimensions cost, and what a linear probe reads from the codes.

The directions are fitted on a seeded sample of the training lines. The syllable-conditioned model
(``checkpoints/poetry-syllables``) decodes each line with its own syllable count as the condition,
so what moves is the direction's doing, not the condition's; along syllables it is also steered with
the condition moved with the code, as the explorer steers it.

    python bench/directions.py                    # 20,000 corpus lines
    python bench/directions.py --corpus 5000      # quicker
    python bench/directions.py --threads 1        # on a machine another job is busy on (2 threads then thrash)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import vae_core  # noqa: E402
from vae_core import cli  # noqa: E402
from vae_core import directions as D  # noqa: E402
from vae_core.data import read_lines  # noqa: E402
from vae_core.syllables import count, words  # noqa: E402

POETRY = ROOT / "data" / "poetry"
CHECKPOINTS = ("poetry", "poetry-syllables")
AMOUNTS = [-2.0, -1.0, 0.0, 1.0, 2.0]
N_TEST, WIDTH = 100, 4
GRID_DIMS, GRID_VALUES = 8, [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
STEER_BUDGET, GRID_BUDGET = 0.3, 1.0  # seconds


def report(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def timed(fn, repeats: int = 5) -> float:
    """The median seconds of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def steering(sampler, corpus: D.Corpus, test: list[str], checkpoint: str) -> None:
    """Mean words, pieces and syllables of the test lines' decodings steered by each of ``AMOUNTS``.
    A syllable-conditioned model is steered twice along syllables: with each line's own count as its
    condition ("code only"), and with the condition moved with the code (``steer_counts``), as the
    explorer does."""
    z = sampler.mu(test)
    own = [count(line) for line in test]
    for prop in ("words", "syllables"):
        direction = D.direction_for(corpus, prop)
        report(f"{checkpoint}: {prop} direction, held-out {direction.score_name}", direction.score,
               direction.score_name, spread=round(direction.spread, 3))
        steered = torch.cat([D.steer(code, direction, AMOUNTS) for code in z])  # code by code, amount by amount
        ways = {"": {}}
        if sampler.condition:
            ways = {" (code only)": {"syllables": [n for n in own for _ in AMOUNTS]}}
            if prop == "syllables":
                moved = [c for n in own for c in D.steer_counts(n, corpus, AMOUNTS)]
                ways[" (code and condition)"] = {"syllables": moved}
        for way, options in ways.items():
            lines = np.array(sampler.beam(steered, width=WIDTH, **options)).reshape(len(test), len(AMOUNTS))
            for j, amount in enumerate(AMOUNTS):
                decoded = lines[:, j].tolist()
                report(f"{checkpoint}: steer along {prop}{way} by {amount:+g} spreads, mean decoded words",
                       float(np.mean([len(words(line)) for line in decoded])), "words",
                       pieces=round(float(np.mean([len(ids) for ids in sampler.tokenizer.encode(decoded)])), 2),
                       syllables=round(float(np.mean([count(line) for line in decoded])), 2))


def costs(sampler, corpus: D.Corpus, line: str, checkpoint: str) -> None:
    """Seconds for one steering step (steer and beam-decode one line) and for the grid of the busiest
    dimensions (those whose corpus codes spread most) at each of ``GRID_VALUES``."""
    z = sampler.mu([line])[0]
    direction = D.direction_for(corpus, "words")
    step = timed(lambda: sampler.beam(D.steer(z, direction, [1.0]), width=WIDTH))
    report(f"{checkpoint}: one steering step (steer + beam {WIDTH}, 1 line)", step, "s", budget=STEER_BUDGET,
           met=step < STEER_BUDGET)
    busiest = D.dimension_spread(corpus.codes).argsort(descending=True)[:GRID_DIMS].tolist()
    grid = timed(lambda: D.dimension_effects(sampler, z, GRID_VALUES, dims=busiest), repeats=3)
    report(f"{checkpoint}: dimension grid, {GRID_DIMS} busiest dims x {len(GRID_VALUES)} values (greedy)", grid, "s",
           budget=GRID_BUDGET, met=grid < GRID_BUDGET)
    every = timed(lambda: D.dimension_effects(sampler, z, GRID_VALUES), repeats=3)
    report(f"{checkpoint}: dimension grid, all {sampler.nz} dims x {len(GRID_VALUES)} values (greedy)", every, "s")


def probes(corpus: D.Corpus, checkpoint: str) -> None:
    """The probe table: each property's held-out score from the codes beside the two baselines."""
    start = time.perf_counter()
    table = D.probe_table(corpus)
    for row in table:
        report(f"{checkpoint}: probe {row['property']} from the codes", row["probe"], row["measure"],
               baseline=round(row["baseline"], 3), length_only=round(row["length_only"], 3),
               held_out=row["held_out"])
    report(f"{checkpoint}: probe table", time.perf_counter() - start, "s", lines=len(corpus.lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=cli.positive_int, default=20_000, help="training lines to fit directions on")
    parser.add_argument("--threads", type=cli.positive_int, default=None,
                        help="threads for torch and for the probes' BLAS (default: as the libraries choose)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    train = read_lines(POETRY / "train.txt")
    sample = random.Random(0).sample(train, min(args.corpus, len(train)))
    test = read_lines(POETRY / "test.txt")[:N_TEST]
    for checkpoint in CHECKPOINTS:
        sampler = vae_core.load(ROOT / "checkpoints" / checkpoint)
        start = time.perf_counter()
        corpus = D.Corpus.encode(sampler, sample)
        report(f"{checkpoint}: encode and measure the corpus", time.perf_counter() - start, "s", lines=len(sample),
               threads=torch.get_num_threads())
        steering(sampler, corpus, test, checkpoint)
        costs(sampler, corpus, test[0], checkpoint)
        probes(corpus, checkpoint)


if __name__ == "__main__":
    main()
