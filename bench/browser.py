"""The explorer's latency where a user feels it: the real server, driven in headless Chromium, each
figure the median of 5 interactions on inputs the app has not seen, timed from the keystroke that asks
for the result (Ctrl+Enter in the text box, Enter in the search box, Page Up or Down on the slider;
the text itself is typed into the box before, untimed) until the page shows it (the table's first
row and the map's new layer), with the bytes the browser received for each interaction (websocket
messages and files).

    python bench/browser.py
    LATENT_VERSE_CHECKPOINTS=runs/scale/checkpoints python bench/browser.py    # on bench/scale.py's map

Prints one JSON object per figure: name, value, unit, budget and whether it was met.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer_app.serve import start_servers, stop  # noqa: E402
from vae_core.data import read_lines  # noqa: E402

PORT = 8597
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPEATS = 5
# The map's state, read inside its frame: which layers it drew, with their first lines.
MAP_STATE = "() => window.mapState ? JSON.stringify(window.mapState.traces) : ''"


def report(name: str, value: float, unit: str, budget: float | None = None) -> None:
    judged = {} if budget is None else {"budget": budget, "met": value <= budget}
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **judged}), flush=True)


class Traffic:
    """Bytes the page receives: websocket frames from the server and HTTP response bodies."""

    def __init__(self, page):
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("requestfinished", self._request)

    def _frame(self, payload) -> None:
        self.bytes += len(payload)

    def _request(self, request) -> None:
        sizes = request.sizes()
        self.bytes += sizes.get("responseBodySize", 0) + sizes.get("responseHeadersSize", 0)


def map_frame(page):
    """The frame that draws the latent map."""
    while True:
        for frame in page.frames:
            if "latent_map" in frame.url:
                return frame
        page.wait_for_timeout(100)


def wait_for_map(frame, predicate: str, timeout: float = 60) -> None:
    """Until the map's drawn layers satisfy ``predicate`` (a JS function of the parsed layer list)."""
    frame.wait_for_function(f"() => window.mapState && ({predicate})(window.mapState.traces)", timeout=timeout * 1000,
                            polling=10)


def wait_for_table(page, text: str, timeout: float = 60) -> None:
    """Until a results table on the page holds ``text`` (checked every 10 ms, as the map is)."""
    page.wait_for_function("t => [...document.querySelectorAll('[data-testid=stDataFrame]')]"
                           ".some(e => e.textContent.includes(t))", arg=text, timeout=timeout * 1000, polling=10)


def timed(page, traffic: Traffic, act, done, ready=None) -> tuple[float, int]:
    """Seconds and bytes from ``act()`` until ``done()`` returns, after ``ready()`` (what the user does
    before the keystroke that asks for the result, untimed)."""
    if ready is not None:
        ready()
    page.wait_for_timeout(300)  # let the previous interaction's last messages arrive
    before = traffic.bytes
    start = time.perf_counter()
    act()
    done()
    return time.perf_counter() - start, traffic.bytes - before


def main() -> None:
    from playwright.sync_api import sync_playwright

    verse = read_lines(ROOT / "data" / "poetry" / "test.txt")
    servers = start_servers([PORT], quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            traffic = Traffic(page)
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{PORT}")
            frame = map_frame(page)
            wait_for_map(frame, "t => t.some(x => x[0] === 'your lines')", timeout=120)
            report("browser: open the page -> table and the whole map on screen (server warm)",
                   time.perf_counter() - start, "s")
            report("browser: bytes received to open the page", traffic.bytes / 1e6, "MB")
            box = page.get_by_label("Lines of verse, one per line")

            def typed(i: int):
                lines = verse[10 * i + 500: 10 * i + 510]
                first = json.dumps(lines[0])

                def ready():
                    box.fill("\n".join(lines))

                def act():
                    box.press("Control+Enter")

                def done():
                    wait_for_map(frame, f"t => t.some(x => x[0] === 'your lines' && x[2] === {first})")
                    wait_for_table(page, lines[0])

                return act, done, ready

            measure(page, traffic, "typed 10 lines -> table and map", typed, 0.5)

            page.get_by_role("tab", name="Interpolate").click()
            wait_for_map(frame, "t => t.some(x => x[0] === 'slider')")
            slider = page.get_by_role("slider", name="Position between the two lines")
            slider.focus()

            def slide(i: int):
                previous = {}

                def act():
                    previous["line"] = page.locator("blockquote h3").first.inner_text()
                    previous["map"] = frame.evaluate(MAP_STATE)
                    slider.press("PageUp" if i % 2 == 0 else "PageDown")

                def done():
                    changed = f"() => JSON.stringify(window.mapState.traces) !== {json.dumps(previous['map'])}"
                    frame.wait_for_function(changed,
                                            timeout=60_000, polling=10)

                return act, done

            measure(page, traffic, "move the interpolation slider -> new line and point", slide, 0.3)

            search = page.get_by_label("Search the corpus", exact=True)

            def searched(i: int):
                word = ["moon", "river", "golden", "winter", "silence", "heart"][i]

                def ready():
                    search.fill(word)

                def act():
                    search.press("Enter")

                def done():
                    wait_for_map(frame, "t => t.some(x => x[0] === 'matches')")
                    page.get_by_text("lines match").first.wait_for(timeout=60_000)
                    frame.wait_for_function(
                        "() => window.mapState.traces.find(x => x[0] === 'matches')[2].toLowerCase()"
                        f".includes('{word}')",
                        timeout=60_000, polling=10)

                return act, done, ready

            measure(page, traffic, "search a word -> matches highlighted and counted", searched, 0.3)
            browser.close()
    finally:
        stop(servers)


def measure(page, traffic: Traffic, name: str, interaction, budget: float) -> None:
    seconds, sent = [], []
    for i in range(REPEATS + 1):  # the first one warms the page and is not counted
        s, b = timed(page, traffic, *interaction(i))
        if i:
            seconds.append(s)
            sent.append(b)
    report(f"browser: {name} (median of {REPEATS})", statistics.median(seconds), "s", budget)
    report(f"browser: bytes received for '{name}' (median)", statistics.median(sent) / 1e6, "MB", 1.0)


if __name__ == "__main__":
    main()
