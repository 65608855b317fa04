"""Many sessions on one explorer server: N users at once, each typing its own lines, walking every
tab, moving a slider in each and switching between the shipped checkpoints, while the server's
memory is sampled.

    python bench/load.py --sessions 1 8 30
    python bench/load.py --sessions 30 --servers 2   # two servers behind a sticky local proxy

Each session is a client of Streamlit's own websocket protocol (``/_stcore/stream``, the protobufs
the browser sends and reads), and fetches the map's corpus files over HTTP as the browser's map
does. Headless Chromium was measured too, and set aside: four pages opening the explorer and typing
ten lines took 58 s of Chromium's CPU (it draws the 95,000-point map in software) for 5.6 s of the
server's, so 30 browsers on 2 cores would time the browsers, not the server.

Checked: every table and map layer a session is sent holds its own lines (no cross-talk), no
exception or error is shown, and every result arrives within the timeout. Reported, as JSON lines:
the latency of "typing ten lines -> table shown" and of the other interactions (p50, p95), the
errors, and the peak resident memory of each server process (with its children), sampled every
0.2 s. With ``--servers 2`` sessions reach two servers through the proxy of ``latent-verse explore
--processes 2`` (``explorer_app/serve.py``), which keeps each user on one server by a cookie
(Streamlit needs sticky sessions: a session lives in one process, with its map files).
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import io
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow as pa
import websockets
from browser import report
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer_app.serve import StickyProxy, start_servers, stop  # noqa: E402
from vae_core.data import read_lines  # noqa: E402

MEMORY_GOAL = 2e9  # bytes: 2 GB for the server (all its processes), with every shipped checkpoint open

CHECKPOINTS = ("poetry", "poetry-bits", "poetry-syllables", "poetry-vrnn")
TABS = ("Interpolate", "Neighbours", "Sample", "Directions", "Model", "Lines")
# The slider moved in each tab (the first of these the tab draws), and where to.
SLIDERS = {"Interpolate": [("interp.t", 0.3)], "Neighbours": [("neigh.noise", 0.8), ("neigh.flip", 0.2)],
           "Sample": [("sample.count", 8)], "Directions": [("dir.amount", 1.0)]}
STRING_WIDGETS = ("text_area", "text_input", "selectbox", "radio", "tabs")


class Run:
    """What one script run sent a session: its widgets (key -> id and kind), tables, map layers and errors."""

    def __init__(self):
        self.widgets, self.tables, self.layers, self.errors, self.map_files = {}, {}, [], [], set()
        self.table_at = None  # seconds from the request until the Lines table arrived

    def read(self, msg: ForwardMsg, since: float) -> None:
        if msg.WhichOneof("type") == "ref_hash":
            self.errors.append("a cached message the client never had")
        if msg.WhichOneof("type") != "delta":
            return
        delta = msg.delta
        if delta.WhichOneof("type") == "add_block" and delta.add_block.WhichOneof("type") == "tab_container":
            self.widgets["tab"] = (delta.add_block.tab_container.id, "tabs")
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        inner = getattr(element, kind)
        widget_id = getattr(inner, "id", "") if kind != "exception" else ""
        if widget_id.startswith("$$ID-"):
            self.widgets[widget_id.split("-", 2)[2]] = (widget_id, kind)
        if kind == "exception":
            self.errors.append(f"exception: {inner.message}")
        elif kind == "alert" and inner.format == inner.ERROR:
            self.errors.append(f"error: {inner.body[:120]}")
        elif kind == "dataframe":
            table = pa.ipc.open_stream(io.BytesIO(inner.arrow_data.data)).read_all().to_pydict()
            key = widget_id.split("-", 2)[2] if widget_id else "table"
            self.tables[key] = table
            if key == "lines.table":
                self.table_at = time.perf_counter() - since
        elif kind == "component_instance":
            args = json.loads(inner.json_args)
            self.layers = args.get("layers", [])
            self.map_files.add((inner.component_name, args["corpus"]))


class Session:
    """One user: a websocket to the server, the widget values it set, and its own lines."""

    def __init__(self, number: int, base: str, lines: list[list[str]], timeout: float, think: float):
        self.number, self.base, self.lines, self.timeout, self.think = number, base, lines, timeout, think
        self.cookies = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.values, self.seen, self.fetched = {}, {}, set()
        self.times: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.crosstalk = 0
        self.ws = None

    async def get(self, path: str) -> bytes:
        return await asyncio.to_thread(lambda: self.http.open(self.base + path, timeout=self.timeout).read())

    async def run(self) -> None:
        """Open the page on this user's checkpoint, then per round: type ten lines, walk the tabs moving a
        slider in each, and switch to the next checkpoint."""
        first = CHECKPOINTS[self.number % len(CHECKPOINTS)]
        await self.get("/")  # as a browser does: the page (and, behind the proxy, the cookie that pins this user)
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        url = "ws" + self.base.removeprefix("http") + "/_stcore/stream"
        async with websockets.connect(url, subprotocols=["streamlit"], max_size=None,
                                      additional_headers={"Cookie": cookie} if cookie else None) as self.ws:
            await self.rerun("open the page", query=f"settings.checkpoint={first}")
            for r, lines in enumerate(self.lines):
                await self.pause()
                run = await self.rerun("type ten lines", **{"lines.text": "\n".join(lines)})
                self.check(run, lines, "type ten lines")
                for tab in TABS:
                    await self.pause()
                    run = await self.rerun(f"open the {tab} tab", tab=tab)
                    for key, value in SLIDERS.get(tab, []):
                        if key in run.widgets:
                            await self.pause()
                            await self.rerun("move a slider", **{key: value + 0.05 * (self.number % 3)})
                            break
                self.check(run, lines, "back to the Lines tab")
                await self.pause()
                after = CHECKPOINTS[(self.number + r + 1) % len(CHECKPOINTS)]
                await self.rerun("switch the checkpoint", **{"settings.checkpoint": after})

    async def pause(self) -> None:
        await asyncio.sleep(random.uniform(0.5, 1.5) * self.think)

    async def rerun(self, name: str, query: str = "", **changes) -> Run:
        """Set widgets (by key) as a user would, and read the run this triggers until it finishes."""
        states = dict(self.values)
        for key, value in changes.items():
            widget_id, kind = self.seen[key]
            state = WidgetState(id=widget_id)
            if kind in STRING_WIDGETS:
                state.string_value = str(value)
            elif kind == "slider":
                state.double_array_value.data.append(float(value))
            else:
                raise ValueError(f"no value of a {kind} widget is sent by this bench")
            states[widget_id] = state
        msg = BackMsg()
        msg.rerun_script.query_string = query
        # Like the browser, send the value of every widget on the page now, the changed one included.
        msg.rerun_script.widget_states.widgets.extend(s for i, s in states.items() if i in self.visible())
        run, start = Run(), time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                await self.ws.send(msg.SerializeToString())
                while True:
                    forward = ForwardMsg()
                    forward.ParseFromString(await self.ws.recv())
                    run.read(forward, start)
                    if forward.WhichOneof("type") == "script_finished":
                        break
        except TimeoutError:
            run.errors.append(f"no result within {self.timeout:.0f} s")
        self.times.setdefault(name, []).append(time.perf_counter() - start)
        if name == "type ten lines" and run.table_at is not None:
            self.times.setdefault("type ten lines -> table shown", []).append(run.table_at)
        self.errors += [f"session {self.number}, {name}: {e}" for e in run.errors]
        self.seen = run.widgets
        self.values = {i: s for i, s in states.items() if i in self.visible()}
        for component, corpus in run.map_files - self.fetched:  # what the browser's map fetches once per map
            try:
                for suffix in ("xy.bin.gz", "lines.txt.gz", "field.region.bin.gz"):
                    await self.get(f"/component/{component}/{corpus}.{suffix}")
            except OSError as err:  # on a server that never opened this map, say (a user not kept on one)
                self.errors.append(f"session {self.number}, {name}: the map's files: {err}")
            self.fetched.add((component, corpus))
        return run

    def visible(self) -> set[str]:
        return {widget_id for widget_id, _ in self.seen.values()}

    def check(self, run: Run, lines: list[str], name: str) -> None:
        """The Lines table, and the map's layer of typed lines, hold this session's lines and no one else's
        (a VRNN's table has two rows a line: its reconstructions from its own and from the prior's latents)."""
        table = run.tables.get("lines.table")
        if table is None:
            self.errors.append(f"session {self.number}, {name}: no table of lines")
            return
        rows = 2 if "latents" in table else 1
        expected = [line for line in lines for _ in range(rows)]
        own = [layer["lines"] for layer in run.layers if layer["name"] == "your lines"]
        if table["input"] != expected or len(table["reconstruction"]) != len(expected) or any(x != lines for x in own):
            self.crosstalk += 1


class Memory:
    """Peak memory of some server processes, each with all its children, sampled every 0.2 s from /proc:
    resident (RSS, each process counting every page it maps, shared or not) and proportional (PSS, each
    page shared by k processes counted 1/k in each, so the PSS of several servers adds up to what the
    machine gives them)."""

    def __init__(self, pids: list[int]):
        self.pids, self.peaks, self.peak_pss, self.done = pids, [0] * len(pids), 0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    @staticmethod
    def tree(pid: int) -> list[int]:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [pid] + [p for child in children for p in Memory.tree(int(child))]

    @staticmethod
    def usage(pid: int) -> tuple[int, int]:
        """A process's RSS and PSS in bytes (0, 0 once it is gone)."""
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            return 0, 0
        kib = {line.split()[0]: int(line.split()[1]) for line in text.splitlines()[1:]}
        return kib.get("Rss:", 0) * 1024, kib.get("Pss:", 0) * 1024

    def sample(self) -> None:
        while not self.done.wait(0.2):
            usage = [[self.usage(p) for p in self.tree(pid)] for pid in self.pids]  # each server's processes
            self.peaks = [max(peak, sum(rss for rss, _ in server)) for peak, server in zip(self.peaks, usage)]
            self.peak_pss = max(self.peak_pss, sum(pss for server in usage for _, pss in server))

    def stop(self) -> tuple[list[int], int]:
        """Each server's peak RSS, and the peak of all their PSS added up at one moment."""
        self.done.set()
        self.thread.join()
        return self.peaks, self.peak_pss


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def drive(n: int, servers: int, port: int, rounds: int, timeout: float, think: float,
                verse: list[str]) -> None:
    ports = [port + 1 + i for i in range(servers)]
    processes = start_servers(ports, quiet=True)
    memory = Memory([p.pid for p in processes])
    proxy = None
    try:
        if servers > 1:
            proxy = await asyncio.start_server(StickyProxy(ports).handle, "127.0.0.1", port)
            base = f"http://127.0.0.1:{port}"
        sessions = []
        for i in range(n):
            lines = [verse[10 * (i * rounds + r): 10 * (i * rounds + r) + 10] for r in range(rounds)]
            url = base if servers > 1 else f"http://127.0.0.1:{ports[0]}"
            sessions.append(Session(i, url, lines, timeout, think))
        start = time.perf_counter()
        await asyncio.gather(*(s.run() for s in sessions))
        wall = time.perf_counter() - start
    finally:
        if proxy is not None:
            proxy.close()
        peaks, pss = memory.stop()
        stop(processes)
    label = f"load, {n} session{'s' if n > 1 else ''}" + (f", {servers} servers" if servers > 1 else "")
    times: dict[str, list[float]] = {}
    for s in sessions:
        for name, values in s.times.items():
            times.setdefault(name, []).extend(values)
    typed = times.get("type ten lines -> table shown", [])
    if typed:
        report(f"{label}: typing ten lines -> table shown, p50", percentile(typed, 50), "s")
        report(f"{label}: typing ten lines -> table shown, p95", percentile(typed, 95), "s", 3.0)
    others = [t for name, values in times.items() if name not in ("type ten lines -> table shown", "open the page")
              for t in values]
    report(f"{label}: any interaction -> run finished, p50", percentile(others, 50), "s")
    report(f"{label}: any interaction -> run finished, p95", percentile(others, 95), "s")
    report(f"{label}: open the page -> first run finished, p95", percentile(times["open the page"], 95), "s")
    errors = [e for s in sessions for e in s.errors]
    for error in errors[:10]:
        print(error, file=sys.stderr)
    report(f"{label}: errors (exceptions, errors shown, missing results)", len(errors), "count", 0)
    report(f"{label}: tables or map layers with another session's lines", sum(s.crosstalk for s in sessions),
           "count", 0)
    report(f"{label}: peak resident memory of {'the largest ' if servers > 1 else 'the '}server", max(peaks) / 2**30,
           "GiB")
    if servers > 1:
        report(f"{label}: the servers' peaks added up", sum(peaks) / 2**30, "GiB")
    report(f"{label}: peak memory the machine gives {'the servers together' if servers > 1 else 'the server'} "
           "(PSS: shared pages once)", pss / 2**30, "GiB", MEMORY_GOAL / 2**30)
    if servers > 1:
        pinned = [next((c.value for c in s.cookies if c.name == StickyProxy.COOKIE), None) for s in sessions]
        for server in range(servers):
            report(f"{label}: sessions kept on server {server + 1}", pinned.count(str(server)), "count")
    report(f"{label}: wall time ({sum(len(v) for v in times.values())} timed interactions)", wall, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 30], help="users at once, one run each")
    parser.add_argument("--servers", type=int, default=1, help="explorer processes behind a sticky proxy")
    parser.add_argument("--rounds", type=int, default=2, help="each user's rounds of typing, tabs and a switch")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds a user waits between interactions (drawn from 0.5-1.5 times it)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a result may take before it is an error")
    parser.add_argument("--port", type=int, default=8620, help="the proxy's port; the servers take the ports after it")
    args = parser.parse_args()
    if args.servers < 1 or min(args.sessions) < 1 or args.rounds < 1:
        parser.error("--servers, --sessions and --rounds take positive numbers")
    verse = list(dict.fromkeys(read_lines(ROOT / "data" / "poetry" / "test.txt")))
    random.seed(0)
    for n in args.sessions:
        if 10 * n * args.rounds > len(verse):
            parser.error(f"the test lines hold ten distinct lines for at most {len(verse) // 10} session rounds")
        asyncio.run(drive(n, args.servers, args.port, args.rounds, args.timeout, args.think, verse))


if __name__ == "__main__":
    main()
