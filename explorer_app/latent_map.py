"""The map beside every tab: the whole corpus in the latent space, coloured by a property, searched,
divided into named regions, with the user's own file and what the open tab made on top; clicking
or lassoing points picks their lines for the tabs."""

from __future__ import annotations

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from vae_core.projection import CATEGORICAL, NUMERIC, LineSearch
from vae_core.tokenizer import clean

from . import cache, state
from .widgets import Context, needs_sentence_code

MAX_PICKED = 50  # picked lines kept as choices for the other tabs
SHOWN = 8  # matches, region lines and picked lines listed under the map
MAX_UPLOAD_LINES = 20_000  # lines of an uploaded file placed on the map
HEIGHT = 520
MAX_POINTS = 100_000  # corpus points drawn as markers; past that, every k-th, over the density of all
_map = components.declare_component("latent_map", path=str(cache.frontend_dir()))


def colour_fields(projection) -> list[str]:
    """The "Colour by" choices this map holds ("" is no colour)."""
    return [""] + [name for name in (*NUMERIC, *CATEGORICAL) if name in projection.fields]


@st.fragment
def render(ctx: Context, layers: list[dict]) -> None:
    """The map panel. It is a fragment: colouring, searching, regions and uploads rerun only the
    panel (with the layers of the tab's last run), and what changes the tabs (a pick, "Use") reruns
    the app."""
    state.follow()
    if needs_sentence_code(ctx, "The map"):
        return
    if ctx.projection is None:
        st.warning(f"Checkpoint '{ctx.name}' has no map yet. Build one with "
                   f"`python -m vae_core.projection --checkpoint checkpoints/{ctx.name}`.")
        return
    projection, s = ctx.projection, st.session_state
    fields = colour_fields(projection)
    if s["map.colour"] not in fields:
        s["map.colour"] = ""
    c1, c2 = st.columns([2, 3])
    c1.selectbox("Colour by", fields, key="map.colour",
                 format_func=lambda f: {**NUMERIC, **CATEGORICAL}.get(f, "nothing"))
    c2.text_input("Search the corpus", key="map.search", max_chars=200, placeholder="a word, a phrase, or a pattern",
                  help="Highlights every corpus line with these words (whole words, any case); switch on "
                       "'regular expression' for a pattern, e.g. ^o or (night|dark)$")
    t1, t2 = st.columns(2)
    t1.toggle("Region names", key="map.labels", help="Label the map's regions with their most distinctive words")
    t2.toggle("Regular expression", key="map.regex", help="Search with a Python regular expression")
    upload, upload_message = uploaded_lines()
    highlight, name, matches = None, "", None
    if s["map.search"].strip():
        try:
            matches = cache.search(ctx.path, s["map.search"], s["map.regex"])
        except ValueError as err:
            st.error(f"Search: {err}.")
        else:
            highlight, name = matches, "matches"
    regions = cache.regions(ctx.path)
    chosen = s["map.region"]
    if highlight is None and 0 <= chosen < len(projection.region_words):
        highlight, name = np.flatnonzero(projection.fields["region"] == chosen), "region"
    if upload:
        layers = [*layers, {"name": "your file", "kind": "upload", "lines": upload,
                            "xy": cache.place_upload(ctx.path, tuple(upload))}]
    step = drawn_step(len(projection))
    if s["map.colour"]:
        cache.field_files(ctx.path, step, s["map.colour"])
    event = _map(key="map.chart", default=None, **{
        "corpus": cache.map_files(ctx.path, step),
        "colour": s["map.colour"] or None,
        "highlight": cache.mask(highlight, len(projection)) if highlight is not None and len(highlight) else None,
        "highlight_name": name,
        "regions": [{"label": r["name"], "x": r["x"], "y": r["y"]} for r in regions] if s["map.labels"] else [],
        "layers": [_plain(layer) for layer in layers],
        "height": HEIGHT,
        "step": step,
        "status": status(projection),
    })
    picked = event_lines(event, projection)
    if picked is not None and picked[:MAX_PICKED] != s["map.picked"]:
        s["map.picked"] = picked[:MAX_PICKED]
        st.rerun()  # the tabs offer the picked lines
    if matches is not None:
        search_results(projection, matches, upload)
    region_panel(projection, regions)
    upload_panel(upload, upload_message)
    picked_panel(s["map.picked"])
    state.sync_url()  # a rerun of the panel alone does not reach the app's own sync


def status(projection) -> str:
    """What the map draws, said plainly (every corpus line is a point)."""
    splits = projection.fields.get("split")
    parts = ""
    if splits is not None and len(projection.names.get("split", [])) > 1:
        counts = np.bincount(splits, minlength=len(projection.names["split"]))
        parts = " (" + " · ".join(f"{n} {c:,}" for n, c in zip(projection.names["split"], counts)) + ")"
    n, step = len(projection), drawn_step(len(projection))
    if step == 1:
        return f"All {n:,} corpus lines drawn{parts}."
    return (f"{-(-n // step):,} of {n:,} corpus lines drawn as points (every {step}th){parts}; the shading "
            "beneath is the density of all of them.")


def drawn_step(n: int) -> int:
    """Every how many corpus lines one is drawn as a point: 1 up to ``MAX_POINTS`` lines."""
    return -(-n // MAX_POINTS)


def _plain(layer: dict) -> dict:
    """A layer as JSON the browser reads."""
    xy = np.asarray(layer["xy"], dtype=np.float64).reshape(-1, 2).round(4)
    return {"name": layer["name"], "kind": layer["kind"], "lines": list(layer["lines"]),
            "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()}


def event_lines(event, projection) -> list[str] | None:
    """The lines a click or lasso on the map picked (None when the map sent nothing new)."""
    if not isinstance(event, dict) or event.get("at") == st.session_state.get("map.event_at"):
        return None
    st.session_state["map.event_at"] = event.get("at")
    corpus = [projection.lines[i] for i in event.get("picked", []) if isinstance(i, int) and 0 <= i < len(projection)]
    own = [line for line in event.get("lines", []) if isinstance(line, str)]
    return list(dict.fromkeys(corpus + own))


def use_buttons(lines: list[str], key: str) -> None:
    """One row per line with a button that makes it the current line of every tab."""
    for i, line in enumerate(lines):
        text, button = st.columns([5, 1])
        text.write(line)
        button.button("Use", key=f"{key}.{i}", on_click=state.go_to, args=(line,),
                      help="Make this your current line in every tab")


def search_results(projection, matches: np.ndarray, upload: list[str]) -> None:
    own = LineSearch(upload)(st.session_state["map.search"], st.session_state["map.regex"]) if upload else []
    found = f"**{len(matches):,} corpus {'line matches' if len(matches) == 1 else 'lines match'}**"
    if upload:
        found += f" and **{len(own):,}** of your file's"
    st.markdown(found + (", highlighted on the map." if len(matches) else "."))
    use_buttons([upload[i] for i in own[:SHOWN]] + [projection.lines[i] for i in matches[:SHOWN]], "map.match")


def region_panel(projection, regions: list[dict]) -> None:
    if not regions:
        return
    names = {r["region"]: f"{r['name']} ({r['lines']:,} lines)" for r in regions}
    if st.session_state["map.region"] not in names:  # a link may name a region this map lacks
        st.session_state["map.region"] = -1
    st.selectbox("Look inside a region", [-1, *names], key="map.region",
                 format_func=lambda r: names.get(r, "—"),
                 help="Regions are clusters of codes, named by the words that set their lines apart (c-TF-IDF)")
    chosen = st.session_state["map.region"]
    if chosen in names:
        members = np.flatnonzero(projection.fields["region"] == chosen)
        shown = "" if st.session_state["map.search"].strip() else ", highlighted"  # a search highlights instead
        st.caption(f"{len(members):,} lines in this region{shown}; a few of them:")
        sample = np.random.default_rng(chosen).choice(members, size=min(SHOWN, len(members)), replace=False)
        use_buttons([projection.lines[i] for i in sorted(sample)], "map.region_line")


def uploaded_lines() -> tuple[list[str], str]:
    """The lines of the text file uploaded under the map (at most ``MAX_UPLOAD_LINES``), and a
    message: why the file is unusable, or that only its first lines are used ("" when all is well)."""
    file = st.session_state.get("map.upload")
    if file is None:
        return [], ""
    data = file.getvalue()
    try:
        if b"\x00" in data[:4096]:
            raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "binary")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], f"{file.name} is not a text file (it should be UTF-8 text, one line of verse per line)."
    lines = [line.strip() for line in text.splitlines() if clean(line)]
    if not lines:
        return [], f"{file.name} has no lines of text."
    note = ""
    if len(lines) > MAX_UPLOAD_LINES:
        note = f"Only the first {MAX_UPLOAD_LINES:,} of its {len(lines):,} lines are used."
    return [line[: state.MAX_CHARS] for line in lines[:MAX_UPLOAD_LINES]], note


def upload_panel(upload: list[str], message: str) -> None:
    limit = st.get_option("server.maxUploadSize")
    with st.expander("Your own lines on the map", expanded=bool(upload or message)):
        st.file_uploader(f"A text file, one line of verse per line (up to {limit} MB)", type=["txt"], key="map.upload",
                         help=f"Placed on the map without moving the corpus; the first {MAX_UPLOAD_LINES:,} lines "
                              "are used.")
        if message and not upload:
            st.error(message)
        elif upload:
            st.caption(f"{len(upload):,} lines placed on the map as 'your file'; search them above, or click one. "
                       + message)


def picked_panel(picked: list[str]) -> None:
    if not picked:
        st.caption("Hover to read corpus lines; click one, or choose the lasso in the map's toolbar and "
                   "circle several, to use them in the tabs.")
        return
    shown = f" (the first {MAX_PICKED} are offered in Interpolate)" if len(picked) >= MAX_PICKED else ""
    st.markdown(f"**{len(picked)} {'line' if len(picked) == 1 else 'lines'} picked**{shown}")
    use_buttons(picked[:SHOWN], "map.use")
