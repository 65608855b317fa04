"""The shipped map on this machine: how fast it loads, searches and recalls over the whole corpus,
and which regions read better, k-means on the 32-D codes or on the 2-D layout.

    python bench/map.py

Regions are judged two ways: how many of a region's lines hold one of its three name words (the
names describe the lines), and how tightly its lines sit on the map (the mean distance of a region's
points to its centre, as a share of the corpus's spread: a name drawn at the centre marks a place).
Prints one JSON object per figure.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from directions import timed  # noqa: E402

import vae_core  # noqa: E402
from vae_core import regions  # noqa: E402
from vae_core.checkpoint import SHIPPED  # noqa: E402
from vae_core.projection import Projection  # noqa: E402
from vae_core.properties import words  # noqa: E402


def report(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def judge_regions(projection: Projection, labels: np.ndarray) -> tuple[float, float]:
    """(share of lines holding one of their region's names, mean distance to the region's centre
    over the layout's spread)."""
    named = [set(w for w, _ in top) for top in regions.label(projection.lines, labels)]
    hits = np.array([bool(named[r] & set(words(line))) for line, r in zip(projection.lines, labels)])
    xy = projection.xy.numpy()
    spread = np.linalg.norm(xy - xy.mean(axis=0), axis=1).mean()
    centres = np.stack([np.median(xy[labels == r], axis=0) for r in range(labels.max() + 1)])
    return float(hits.mean()), float(np.linalg.norm(xy - centres[labels], axis=1).mean() / spread)


def main() -> None:
    start = time.perf_counter()
    projection = Projection.load(SHIPPED)
    report("map: load the shipped map (95,000 lines from data/, codes, layout, fields)",
           time.perf_counter() - start, "s")
    start = time.perf_counter()
    projection.word_index, projection.code_index  # noqa: B018 (built on first use)
    report("map: build the word index (BM25) and the code index", time.perf_counter() - start, "s")
    for pattern, regex in (("sea", False), ("the silent night", False), (r"^o .*(love|heart)", True)):
        found = len(projection.search(pattern, regex))
        report(f"map: search {pattern!r} over {len(projection):,} lines ({found} matches)",
               timed(lambda p=pattern, r=regex: projection.search(p, r)), "s", budget=0.3)
    vae = vae_core.load()
    lines = vae.beam(vae.neighbours(vae.mu(["the sea is calm tonight"])[0], 16, 0.5, seed=0), width=4)
    report("map: what 16 generated lines recall (word for word, BM25, CSLS over 95,000)",
           timed(lambda: projection.recall(vae, lines)), "s")
    k = projection.settings["regions"]
    for on in ("codes", "layout"):
        labels = regions.cluster((projection.codes if on == "codes" else projection.xy).numpy(), k, seed=0)
        named, spread = judge_regions(projection, labels)
        report(f"regions on the {on} (k = {k}): lines holding one of their region's names", named, "share")
        report(f"regions on the {on} (k = {k}): distance to the region's centre / the map's spread", spread, "ratio")


if __name__ == "__main__":
    main()
