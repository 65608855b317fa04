"""A real browser: the explorer served on localhost, driven in Debian's headless Chromium."""

import base64
import os
import shutil
import socket
import time

import numpy as np
import pytest

from explorer_app.serve import start_servers, stop

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it; CI never skips this test)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    servers = start_servers([port], quiet=True)
    yield f"http://127.0.0.1:{port}"
    stop(servers)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(server)
        yield page
        browser.close()


def live_line(page) -> str:
    return page.locator("blockquote h3").first.inner_text(timeout=60_000)


def test_type_two_lines_and_drag_the_interpolation_slider(page):
    page.get_by_role("tab", name="Interpolate").click()
    for label, line in (("From", "the moon is rising on the hill"), ("To", "and the wind is singing in the trees")):
        box = page.get_by_label(label, exact=True)
        box.fill(line)
        box.press("Enter")
        page.wait_for_timeout(1500)
    before = live_line(page)
    assert before.strip()
    slider = page.get_by_role("slider", name="Position between the two lines")
    slider.focus()
    slider.press("Home")  # drag the point to the first line
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stStatusWidget]') === null", timeout=60_000)
    page.wait_for_timeout(1500)
    start = live_line(page)
    slider.press("End")  # and to the second
    page.wait_for_timeout(3000)
    end = live_line(page)
    assert start.strip() and end.strip()
    assert start != end  # the decoded line follows the slider
    layers = [t[0] for t in map_frame(page).evaluate("() => window.mapState.traces")]
    assert "corpus" in layers and "slider" in layers  # the map draws the corpus and the slider's point


def sidebar_deltas(page, interact) -> tuple[int, int]:
    """How many elements the server sent to the sidebar, and to anywhere, for ``interact()``."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    frames = []  # the page's socket is already open, so its frames are read through the DevTools protocol
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on("Network.webSocketFrameReceived", lambda e: frames.append(e["response"]["payloadData"]))
    interact()
    idle(page)
    cdp.detach()
    paths = []
    for payload in frames:
        message = ForwardMsg()
        message.ParseFromString(base64.b64decode(payload))
        if message.WhichOneof("type") == "delta":
            paths.append(list(message.metadata.delta_path))
    return sum(path[:1] == [1] for path in paths), len(paths)  # the sidebar is the page's container 1


def test_the_tabs_rerun_without_redrawing_the_sidebar(page):
    page.get_by_role("tab", name="Lines").click()
    box = page.get_by_label("Lines of verse, one per line")
    box.fill("the owl is hooting in the barn")
    box.press("Control+Enter")
    idle(page)
    page.get_by_role("tab", name="Interpolate").click()
    slider = page.get_by_role("slider", name="Position between the two lines")
    slider.wait_for(timeout=60_000)
    idle(page)
    slider.focus()
    sidebar, everywhere = sidebar_deltas(page, lambda: slider.press("Home"))  # no earlier test leaves it there
    assert everywhere > 5 and sidebar == 0  # the slider reran the tab and the map only
    page.get_by_role("tab", name="Lines").click()  # a tab that the fragment's last runs did not draw kept its text
    idle(page)
    assert page.get_by_label("Lines of verse, one per line").input_value() == "the owl is hooting in the barn"
    seed = page.get_by_label("Random seed")
    sidebar, everywhere = sidebar_deltas(page, lambda: (seed.fill("7"), seed.press("Enter")))
    assert sidebar > 5  # a setting in the sidebar reruns the whole app
    seed.fill("0")
    seed.press("Enter")
    idle(page)


def test_clicking_a_result_row_walks_to_that_line(page):
    page.get_by_role("tab", name="Lines").click()
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)  # the selection cell of the first row
    page.get_by_text("Your walk").wait_for(timeout=30_000)
    step = page.locator("[data-testid=stSidebar] button", has_text="1. ").first.inner_text()
    line = step.split(". ", 1)[1]
    assert line.strip()
    page.get_by_role("tab", name="Neighbours").click()
    source = page.get_by_label("Line", exact=True)
    deadline = time.monotonic() + 20
    while source.input_value() != line and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert source.input_value() == line  # the line is now the current line of the other tabs


def map_frame(page):
    """The frame in which the latent map is drawn, once it has drawn the corpus."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "latent_map" in frame.url:
                frame.wait_for_function("() => window.mapState && window.mapState.renders > 0", timeout=60_000)
                return frame
        page.wait_for_timeout(200)
    pytest.fail("the map's frame did not appear")


ALONE = """() => {
  // Corpus points with no other within 4 pixels, found through a grid of 4-pixel cells.
  const gd = document.getElementById("map");
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, {w, h} = gd._fullLayout._size;
  const corpus = gd._fullData.find(t => t.name === "corpus");
  const px = Array.from(corpus.x, v => xa.l2p(v)), py = Array.from(corpus.y, v => ya.l2p(v));
  const cells = new Map(), key = (cx, cy) => cx * 100003 + cy;
  px.forEach((x, i) => {
    const k = key(Math.floor(x / 4), Math.floor(py[i] / 4));
    cells.set(k, (cells.get(k) || []).concat([i]));
  });
  const alone = [];
  px.forEach((x, i) => {
    if (x < 10 || x > w - 10 || py[i] < 10 || py[i] > h - 10) return;  // inside the plot area, off its edge
    const cx = Math.floor(x / 4), cy = Math.floor(py[i] / 4);
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      for (const j of cells.get(key(cx + dx, cy + dy)) || []) {
        if (j !== i && Math.hypot(px[j] - x, py[j] - py[i]) < 4) return;
      }
    }
    alone.push(i);
  });
  return alone;
}"""


IN_PLOT_AREA = """(i) => {
  const gd = document.getElementById("map");
  const corpus = gd._fullData.find(t => t.name === "corpus");
  return [gd._fullLayout.xaxis.l2p(corpus.x[i]), gd._fullLayout.yaxis.l2p(corpus.y[i])];
}"""

HOVERS = """(i) => {
  const hover = document.getElementById("map")._hoverdata;
  return nearLayer === null && Boolean(hover) && hover.length === 1 && hover[0].pointNumber === i
    && document.querySelectorAll(".hoverlayer .hovertext").length === 1;
}"""


def point_on_page(page, frame, i: int) -> tuple[float, float]:
    """Page coordinates of corpus point ``i`` (the plot area's offset plus the point's place in it)."""
    x, y = frame.evaluate(IN_PLOT_AREA, i)
    box = frame.locator("#map .nsewdrag").first.bounding_box()
    return box["x"] + x, box["y"] + y


def idle(page) -> None:
    page.wait_for_function("() => document.querySelector('[data-testid=stStatusWidget]') === null", timeout=60_000)
    page.wait_for_timeout(1000)


def use_first_picked_line(page, before: str) -> str:
    """Press the first "Use" button under the map; returns the Neighbours tab's line once it changes."""
    page.get_by_text("picked").first.wait_for(timeout=30_000)
    idle(page)
    page.get_by_role("button", name="Use", exact=True).first.click()
    page.get_by_role("tab", name="Neighbours").click()
    source = page.get_by_label("Line", exact=True)
    deadline = time.monotonic() + 30
    while source.input_value() == before and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    return source.input_value()


def test_clicking_a_corpus_point_makes_it_an_input(page):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.get_by_role("tab", name="Neighbours").click()
    before = page.get_by_label("Line", exact=True).input_value()
    idle(page)
    frame = map_frame(page)
    plot_area = frame.locator("#map .nsewdrag").first  # where plotly takes the corpus plot's hovers and clicks
    for i in frame.evaluate(ALONE)[:20]:  # a corpus point alone under the pointer
        at = dict(zip("xy", frame.evaluate(IN_PLOT_AREA, i)))
        plot_area.hover(position=at)
        try:  # plotly throttles hovers: wait until the label is this point's
            frame.wait_for_function(HOVERS, arg=i, timeout=3_000)
            break
        except PlaywrightTimeout:
            continue
    else:
        pytest.fail("no corpus point stood alone under the pointer")
    hovered = frame.locator(".hoverlayer .hovertext text.nums").first.text_content(timeout=10_000).rstrip("…")
    plot_area.click(position=at)
    picked = use_first_picked_line(page, before)
    assert picked != before and hovered and picked.startswith(hovered)  # the very line under the pointer


def test_lasso_on_the_map_offers_corpus_lines_as_inputs(page):
    page.get_by_role("tab", name="Neighbours").click()
    before = page.get_by_label("Line", exact=True).input_value()
    idle(page)
    frame = map_frame(page)
    x, y = point_on_page(page, frame, 40)
    page.mouse.move(x, y)
    frame.locator(".modebar-btn[data-val=lasso]").first.click()
    page.mouse.move(x - 25, y - 25)
    page.mouse.down()
    for a, b in ((x + 25, y - 25), (x + 25, y + 25), (x - 25, y + 25), (x - 25, y - 25)):
        page.mouse.move(a, b, steps=5)
    page.mouse.up()
    picked = use_first_picked_line(page, before)
    assert picked != before and picked == picked.lower()  # a corpus line: the corpus is lowercase
    frame.locator(".modebar-btn[data-val=pan]").first.click()


def test_searching_a_word_highlights_its_lines(page):
    from vae_core.checkpoint import SHIPPED
    from vae_core.projection import Projection

    expected = len(Projection.load(SHIPPED).search("nightingale"))
    box = page.get_by_label("Search the corpus", exact=True)
    box.fill("nightingale")
    box.press("Enter")
    page.get_by_text(f"{expected:,} corpus lines match").wait_for(timeout=30_000)
    frame = map_frame(page)
    frame.wait_for_function("() => window.mapState.traces.some(t => t[0] === 'matches')", timeout=30_000)
    highlighted = frame.evaluate("() => window.mapState.traces.find(t => t[0] === 'matches')")
    assert highlighted[1] == expected and "nightingale" in highlighted[2].lower()
    assert red_pixels(frame) > 4 * expected  # each match is painted over the corpus
    idle(page)  # the search's rerun has finished before the box is cleared
    box.fill("")
    box.press("Enter")
    page.get_by_text(f"{expected:,} corpus lines match").wait_for(state="hidden", timeout=30_000)
    frame = map_frame(page)
    frame.wait_for_function("() => !window.mapState.traces.some(t => t[0] === 'matches')", timeout=30_000)
    assert red_pixels(frame) == 0


def red_pixels(frame) -> int:
    """Pixels of the map's highlight canvas painted in the highlight's red."""
    return frame.evaluate("""() => {
        const c = document.getElementById("marks"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 180 && d[i + 1] < 90 && d[i + 2] < 90 && d[i + 3] > 200) n++;
        return n;
    }""")


def test_dragging_the_steer_slider_changes_the_line(page):
    page.get_by_role("tab", name="Directions").click()
    slider = page.get_by_role("slider", name="How far (corpus spreads)")
    slider.wait_for(timeout=60_000)
    idle(page)
    slider.focus()
    slider.press("Home")  # -3 spreads: fewer words
    idle(page)
    shorter = live_line(page)
    slider.press("End")  # +3 spreads
    idle(page)
    longer = live_line(page)
    assert shorter.strip() and longer.strip() and shorter != longer
    layers = [t[0] for t in map_frame(page).evaluate("() => window.mapState.traces")]
    assert "steered" in layers  # the sweep is drawn on the map


def test_colouring_by_a_field_shows_its_legend_or_colour_bar(page, server):
    from vae_core.checkpoint import SHIPPED
    from vae_core.projection import Projection

    rhymes = Projection.load(SHIPPED).fields["rhyme"]
    page.goto(f"{server}/?map.colour=rhyme")
    frame = map_frame(page)
    frame.wait_for_function("() => window.mapState.colour === 'rhyme'", timeout=60_000)
    legend = frame.evaluate("() => Array.from(document.querySelectorAll('#legend > span'), s => s.textContent)")
    counts = [int(item.rsplit("(", 1)[1].rstrip(")").replace(",", "")) for item in legend]
    assert len(legend) == 13 and legend[-1].startswith("other") and sum(counts) == len(rhymes)
    assert counts[0] == max(counts[:12]) == max(np.bincount(rhymes))  # the most frequent sound comes first
    page.goto(f"{server}/?map.colour=syllables")
    frame = map_frame(page)
    frame.wait_for_function("() => window.mapState.colour === 'syllables'", timeout=60_000)
    frame.wait_for_function("() => document.querySelector('g.colorbar') !== null", timeout=30_000)
    assert "syllables" in frame.evaluate("() => document.querySelector('g.colorbar').textContent")
    assert frame.evaluate("() => document.querySelectorAll('#legend > span').length") == 0


def test_region_names_are_whole_and_apart_on_the_map(page, server):
    from vae_core.checkpoint import SHIPPED
    from vae_core.projection import Projection

    regions = len(Projection.load(SHIPPED).region_words)
    page.goto(server)
    frame = map_frame(page)
    frame.wait_for_function(f"() => document.querySelectorAll('#names span').length === {regions}", timeout=60_000)
    boxes = frame.evaluate("""() => {
        const area = document.getElementById("layers").getBoundingClientRect();
        return Array.from(document.querySelectorAll("#names span"), s => {
            const b = s.getBoundingClientRect();
            return [b.left - area.left, b.top - area.top, b.right - area.left, b.bottom - area.top,
                    area.width, area.height];
        });
    }""")
    for left, top, right, bottom, width, height in boxes:  # at the whole map's zoom every region is in view
        assert 0 <= left and right <= width and 0 <= top and bottom <= height
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
            assert min(overlap) <= 0.5, "two region names cover each other"
