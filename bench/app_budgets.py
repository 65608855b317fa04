"""Time the explorer's operations against its budgets on this machine, through the same vae_core
calls the app makes (uncached: each figure is a first-time request).

    python bench/app_budgets.py            # add --no-browser to skip the cold-start measurement

Prints one JSON object per figure: name, value, unit, budget and whether it was met.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vae_core  # noqa: E402
from vae_core.projection import Projection  # noqa: E402

TEN_LINES = [
    "the sea is calm tonight", "i wandered lonely as a cloud", "because i could not stop for death",
    "shall i compare thee to a summer's day", "o rose thou art sick", "the woods are lovely dark and deep",
    "tyger tyger burning bright", "do not go gentle into that good night", "i heard a fly buzz when i died",
    "my heart leaps up when i behold",
]


def timed(fn, repeats: int = 5) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, seconds: float, budget: float) -> None:
    print(json.dumps({"name": name, "value": round(seconds, 4), "unit": "s", "budget": budget,
                      "met": seconds <= budget}), flush=True)


def lines_tab(vae, projection, lines, width=4):
    z, mu, _ = vae.encode(lines)
    decoded = vae.beam(z, width=width)
    projection.recall(vae, decoded)
    projection.place(mu)
    projection.place(vae.mu([d for d in decoded if d.strip()]))


def peak_memory_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def cold_start(port: int = 8599) -> tuple[float, float]:
    """Seconds from launching ``streamlit run`` to the Lines table and the map on screen, and the
    server's peak resident memory (MiB) after a visit to every tab."""
    import subprocess

    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "explorer_app" / "app.py"),
                               "--server.port", str(port), "--server.headless", "true"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}", timeout=2000)
                    break
                except Exception:  # server not listening yet
                    time.sleep(0.2)
            page.wait_for_selector("[data-testid=stDataFrame]", timeout=120_000)
            page.wait_for_selector(".js-plotly-plot", timeout=120_000, state="attached")
            elapsed = time.perf_counter() - start
            for tab in ("Interpolate", "Neighbours", "Sample", "Model"):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(2000)
            memory = peak_memory_mib(server.pid)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return elapsed, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-browser", action="store_true", help="skip the cold-start measurement")
    args = parser.parse_args()
    vae = vae_core.load()
    projection = Projection.load(vae.directory)
    lines_tab(vae, projection, TEN_LINES[:2])  # warm up torch
    report("app: typed 10 lines -> table and map (beam 4)", timed(lambda: lines_tab(vae, projection, TEN_LINES)), 0.5)
    z = vae.mu(TEN_LINES[:2])
    fine = vae.interpolate(z[0], z[1], 100, "slerp")
    positions = iter(range(100))
    report("app: move the interpolation slider -> new line (beam 4)",
           timed(lambda: vae.beam(fine[next(positions)].unsqueeze(0), width=4)), 0.2)

    def neighbours():
        codes = vae.neighbours(z[0], 16, 0.5)
        decoded = vae.beam(codes, width=4)
        projection.recall(vae, decoded)
        projection.place(codes)

    report("app: 16 neighbours -> table and map (beam 4)", timed(neighbours), 0.3)
    report("app: 11-step homotopy (beam 4)",
           timed(lambda: vae.beam(vae.interpolate(z[0], z[1], 10), width=4)), 0.5)
    if not args.no_browser:
        seconds, memory = cold_start()
        report("app: cold start to a usable page", seconds, 15.0)
        print(json.dumps({"name": "app: peak resident memory of the server", "value": round(memory, 1),
                          "unit": "MiB"}), flush=True)


if __name__ == "__main__":
    main()
