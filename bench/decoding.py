"""Decoding throughput on the shipped checkpoint: lines/s for greedy, sampling and beam search over
256 latent codes, and the classic one-line-at-a-time beam search as the baseline.

    python bench/decoding.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from classic_beam import classic_beam  # noqa: E402

import vae_core  # noqa: E402
from vae_core import decoding  # noqa: E402

N_CODES, WIDTH = 256, 4


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def report(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 2), "unit": unit, **extra}), flush=True)


def main() -> None:
    vae = vae_core.load()
    model, max_len = vae.model, vae.max_len
    z = vae.prior(N_CODES, seed=0)
    decoding.beam(model, z[:8], 8, max_len, WIDTH)  # warm up
    report("decode greedy (256 codes)", rate(lambda: decoding.greedy(model, z, N_CODES, max_len), N_CODES), "lines/s")
    report("decode sample t=1 (256 codes)",
           rate(lambda: decoding.sample(model, z, N_CODES, max_len, generator=torch.Generator().manual_seed(0)),
                N_CODES), "lines/s")
    batched = rate(lambda: decoding.beam(model, z, N_CODES, max_len, WIDTH), N_CODES)
    classic = rate(lambda: classic_beam(model, z, max_len, WIDTH), N_CODES)  # the same codes: about 20 s
    report("decode beam 4, classic one line at a time (baseline)", classic, "lines/s")
    report("decode beam 4, batched (256 codes)", batched, "lines/s", baseline=round(classic, 2),
           ratio=round(batched / classic, 2), target_ratio=10)


if __name__ == "__main__":
    main()
