"""Time the explorer against its budgets on this machine: each figure is the whole rerun that one
interaction causes (Streamlit's AppTest runs the real app script: the sidebar, the open tab, the map
and its figure), on inputs the app has not seen before, so no cached result is reused (adding a
line to a poem reuses the poem's lines, as the app does).

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
sys.path.insert(0, str(ROOT / "bench"))

from vae_core.data import read_lines  # noqa: E402


def report(name: str, seconds: float, budget: float | None = None) -> None:
    judged = {} if budget is None else {"budget": budget, "met": seconds <= budget}
    print(json.dumps({"name": name, "value": round(seconds, 4), "unit": "s", **judged}), flush=True)


def rerun_seconds(at, tab: str, interact, repeats: int = 5) -> float:
    """Median seconds of the rerun after ``interact(at, i)`` sets a widget to its i-th new value,
    with ``tab`` open."""
    at.session_state["tab"] = tab
    at.run()
    times = []
    for i in range(repeats):
        interact(at, i)
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(at.exception[0].value)
    return statistics.median(times)


def app_reruns() -> None:
    """The four interactions with budgets, each on fresh input (ten new lines, a new slider position,
    a new noise scale, a new end line of the homotopy)."""
    from streamlit.testing.v1 import AppTest

    verse = read_lines(ROOT / "data" / "poetry" / "test.txt")
    at = AppTest.from_file(str(ROOT / "explorer_app" / "app.py"), default_timeout=120).run()  # loads the model
    report("app: typed 10 lines -> table and map (beam 4)",
           rerun_seconds(at, "Lines", lambda at, i: at.text_area(key="lines.text").set_value(
               "\n".join(verse[10 * i: 10 * i + 10]))), 0.5)
    poem = verse[200:300]
    at.text_area(key="lines.text").set_value("\n".join(poem))  # pasted (and encoded) before the timing
    report("app: one line added to a pasted 100-line poem -> table and map (beam 4)",
           rerun_seconds(at, "Lines", lambda at, i: at.text_area(key="lines.text").set_value(
               "\n".join(poem + verse[300: 301 + i]))))
    report("app: move the interpolation slider -> new line and map (beam 4)",
           rerun_seconds(at, "Interpolate", lambda at, i: at.slider(key="interp.t").set_value(
               round(0.13 + 0.17 * i, 2))), 0.2)
    report("app: 16 neighbours -> table and map (beam 4)",
           rerun_seconds(at, "Neighbours", lambda at, i: at.slider(key="neigh.noise").set_value(0.3 + 0.25 * i)),
           0.3)
    report("app: 11-step homotopy -> table and map (beam 4)",
           rerun_seconds(at, "Interpolate", lambda at, i: at.text_input(key="interp.b").set_value(verse[100 + i])),
           0.5)


def peak_memory_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def cold_start(port: int = 8599) -> tuple[float, float]:
    """Seconds from launching the explorer (``latent-verse explore``) to the Lines table and the map on screen, and the
    server's peak resident memory (MiB) after a visit to every tab."""
    import subprocess

    from browser import map_frame, wait_for_map
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "explorer_app.serve",  # what `latent-verse explore` runs
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
            wait_for_map(map_frame(page), "t => t.some(x => x[0] === 'your lines')", timeout=120)
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
    app_reruns()
    if not args.no_browser:
        seconds, memory = cold_start()
        report("app: cold start to a usable page", seconds, 15.0)
        print(json.dumps({"name": "app: peak resident memory of the server", "value": round(memory, 1),
                          "unit": "MiB"}), flush=True)


if __name__ == "__main__":
    main()
