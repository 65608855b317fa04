"""Decoding throughput on the shipped checkpoint: lines/s for greedy, sampling and beam search over
256 latent codes, and the classic one-line-at-a-time beam search as the baseline.

    python bench/decoding.py                 # on the CPU
    python bench/decoding.py --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
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
from vae_core import cli, decoding  # noqa: E402

N_CODES, WIDTH = 256, 4


def rate(fn, n: int, device: torch.device) -> float:
    """Lines/s of ``fn`` decoding ``n`` lines (waiting for a GPU's queued work before stopping the clock)."""
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def report(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 2), "unit": unit, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=cli.DEVICES, help="where to decode")
    try:
        device = cli.device(parser.parse_args().device)
    except ValueError as err:
        parser.error(str(err))
    vae = vae_core.load()
    model, max_len = vae.model.to(device), vae.max_len
    z = vae.prior(N_CODES, seed=0).to(device)
    decoding.beam(model, z[:8], 8, max_len, WIDTH)  # warm up
    on = {"device": device.type}
    report("decode greedy (256 codes)", rate(lambda: decoding.greedy(model, z, N_CODES, max_len), N_CODES, device),
           "lines/s", **on)
    generator = torch.Generator(device=device).manual_seed(0)
    report("decode sample t=1 (256 codes)",
           rate(lambda: decoding.sample(model, z, N_CODES, max_len, generator=generator), N_CODES, device),
           "lines/s", **on)
    batched = rate(lambda: decoding.beam(model, z, N_CODES, max_len, WIDTH), N_CODES, device)
    classic = rate(lambda: classic_beam(model, z, max_len, WIDTH), N_CODES, device)  # the same codes: about 20 s
    report("decode beam 4, classic one line at a time (baseline)", classic, "lines/s", **on)
    report("decode beam 4, batched (256 codes)", batched, "lines/s", baseline=round(classic, 2),
           ratio=round(batched / classic, 2), target_ratio=10, **on)


if __name__ == "__main__":
    main()
