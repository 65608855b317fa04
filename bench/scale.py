"""A map of a million lines on this machine: the training lines plus lines decoded from the shipped
model's prior, mapped with the layout fitted on a sample and the rest placed, then opened in the
explorer in headless Chromium, searched, and queried for nearest lines through the approximate
(inverted lists) code index against an exhaustive search. The explorer is also opened on the
shipped map of 95,000 lines, as the baseline of the million-line open in the same run.

    python bench/scale.py --work runs/scale        # 25-60 minutes on 2 cores, half of it decoding

The decoded lines are kept in the work folder, so a second run maps them again without decoding
(and with ``--reuse-map`` measures the map already built there without building it again).
Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

import vae_core  # noqa: E402
from vae_core import recall  # noqa: E402
from vae_core.checkpoint import SHIPPED  # noqa: E402
from vae_core.data import read_lines  # noqa: E402
from vae_core.projection import TENSORS, MapConfig, Projection, build, source_files  # noqa: E402

DECODE_BATCH = 4096


def report(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def corpus(vae, work: Path, n: int) -> Path:
    """A file of ``n`` lines: the training lines, then greedy decodings of prior codes."""
    path = work / f"lines-{n}.txt"
    if path.is_file():
        return path
    lines = read_lines(ROOT / "data" / "poetry" / "train.txt")
    start, seed = time.perf_counter(), 0
    while len(lines) < n:
        decoded = vae.greedy(vae.prior(DECODE_BATCH, seed=seed), max_len=24)
        lines.extend(line for line in decoded if line.strip())
        seed += 1
    report(f"scale: decode {n - 85_000:,} prior lines (greedy, not part of mapping)", time.perf_counter() - start, "s")
    path.write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    return path


def checkpoint_folder(work: Path) -> Path:
    """A checkpoints folder whose one checkpoint is the shipped model (linked), for the large map."""
    folder = work / "checkpoints" / "poetry"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer", "evaluation.json", "metrics.jsonl", "README.md"):
        if not (folder / name).exists():
            (folder / name).symlink_to(SHIPPED / name)
    return folder


def open_in_browser(checkpoints: Path, port: int = 8596) -> float:
    """Seconds from the server's start to the large map drawn in Chromium."""
    from browser import CHROMIUM_ARGS, map_frame, wait_for_map
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "LATENT_VERSE_CHECKPOINTS": str(checkpoints)}
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "explorer_app.serve",  # what `latent-verse explore` runs
                               "--server.port", str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}", timeout=2000)
                    break
                except Exception:  # not listening yet
                    time.sleep(0.2)
            wait_for_map(map_frame(page), "t => t.some(x => x[0] === 'your lines')", timeout=300)
            elapsed = time.perf_counter() - start
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return elapsed


def cpu_model() -> str:
    """The processor's name, as Linux reports it ("" elsewhere): machines of one kind differ."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.is_file() else []
    return names[0] if names else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/scale", help="folder for the lines and the map (default: runs/scale)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines on the map")
    parser.add_argument("--reuse-map", action="store_true", help="measure the map the work folder holds, if any")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    vae = vae_core.load()
    data = corpus(vae, work, args.lines)
    folder = checkpoint_folder(work)
    if not (args.reuse_map and (folder / TENSORS).is_file()):
        start = time.perf_counter()
        build(vae, source_files(data), MapConfig(reconstruct=False)).save(folder)
        report(f"scale: map {args.lines:,} lines (encode, properties, UMAP on 100,000, place the rest, regions)",
               time.perf_counter() - start, "s", budget=1800)
    start = time.perf_counter()
    projection = Projection.load(folder)
    report("scale: load the map", time.perf_counter() - start, "s")
    for pattern, regex in (("sea", False), (r"^o .*(love|heart)", True)):
        start = time.perf_counter()
        found = projection.search(pattern, regex)
        report(f"scale: search {pattern!r} ({len(found):,} matches)", time.perf_counter() - start, "s", budget=1.0)
    start = time.perf_counter()
    approximate = recall.CodeIndex(projection.codes, hubness=projection.hubness, approximate=True)
    report("scale: build the approximate code index again (inverted lists; the map stores them)",
           time.perf_counter() - start, "s")
    exact = recall.CodeIndex(projection.codes, hubness=projection.hubness, approximate=False)
    queries = vae.mu(read_lines(ROOT / "data" / "poetry" / "test.txt")[:200])
    torch.set_num_threads(1)  # as the explorer runs each operation
    for name, index in (("approximate", approximate), ("exhaustive", exact)):
        times = []
        for i in range(0, 160, 16):
            start = time.perf_counter()
            index.nearest(queries[i: i + 16], 1, measure="csls")
            times.append(time.perf_counter() - start)
        report(f"scale: nearest line by CSLS for 16 codes, {name} (median of 10)", statistics.median(times), "s",
               budget=0.2)
    found, truth = approximate.nearest(queries, 1, "csls")[0][:, 0], exact.nearest(queries, 10, "csls")[0]
    report("scale: approximate nearest = exhaustive nearest (200 test lines)", float((found == truth[:, 0]).mean()),
           "share")
    report("scale: approximate nearest among the exhaustive 10 nearest", float((found[:, None] == truth).any(1).mean()),
           "share")
    shipped = [open_in_browser(SHIPPED.parent) for _ in range(3)]  # the baseline: the same, on 95,000 lines
    opens = [open_in_browser(folder.parent) for _ in range(3)]
    report("scale: open the explorer on the shipped map of 95,000 lines -> map drawn (cold server, median of 3)",
           statistics.median(shipped), "s", runs=[round(t, 2) for t in shipped])
    report("scale: open the explorer on the map -> map drawn in Chromium (cold server, median of 3)",
           statistics.median(opens), "s", budget=15, runs=[round(t, 2) for t in opens],
           over_the_shipped_map=round(statistics.median(opens) / statistics.median(shipped), 2))
    print(json.dumps({"name": "scale: machine", "cpu": cpu_model(), "cores": os.cpu_count(),
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
