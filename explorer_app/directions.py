"""Tab 5, Directions: steer a line along a direction (longer, more syllables, towards a word or from
one set of lines to another), analogies, each dimension swept, and what the code knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from vae_core import directions, syllables
from vae_core.evaluate import unigram_f1
from vae_core.properties import words

from . import cache, charts, state
from .widgets import Context, needs_sentence_code, results_table, split_lines

VIEWS = ("Steer", "Analogy", "Sweep the dimensions", "What the code knows")
# What a line can be steered towards: numeric properties of the map, a word, or one set of lines from another.
TOWARDS = {"words": "longer lines (words)", "pieces": "longer lines (pieces)", "syllables": "more syllables",
           "recon_f1": "lines the model reconstructs well", "code_norm": "codes further from the origin",
           "word": "lines with a word", "sets": "from one set of lines to another"}
SWEEP = (-3, -2, -1, 0, 1, 2, 3)  # amounts of a steer table, and values of a dimension sweep, in spreads


def render(ctx: Context) -> list[dict]:
    if needs_sentence_code(ctx, "Directions"):
        return []
    if ctx.projection is None:
        st.info("Directions are fitted on the corpus map, and this checkpoint has none yet. Build it with "
                f"`python -m vae_core.projection --checkpoint checkpoints/{ctx.name}`.")
        return []
    st.radio("View", VIEWS, key="dir.view", horizontal=True, label_visibility="collapsed")
    view = st.session_state["dir.view"]
    return {"Steer": steer, "Analogy": analogy, "Sweep the dimensions": sweep,
            "What the code knows": knows}[view](ctx)


def measure(name: str, source: str, lines: list[str], ctx: Context) -> list:
    """The property a direction is about, measured on each decoded line."""
    if name == "words":
        return [len(words(line)) for line in lines]
    if name == "syllables":
        return [syllables.count(line) for line in lines]
    if name == "pieces":
        return [len(ids) for ids in ctx.vae.tokenizer.encode(lines)]
    if name == "recon_f1":
        return [round(unigram_f1(source, line), 3) for line in lines]
    if name == "word":
        word = st.session_state["dir.word"].strip().lower()
        return [word in words(line) for line in lines]
    return [None] * len(lines)


def chosen_direction(ctx: Context) -> directions.Direction | None:
    """The direction the Steer view's controls describe (None, after saying why, when it is incomplete)."""
    s, towards = st.session_state, st.session_state["dir.towards"]
    if towards == "word":
        st.text_input("Word", key="dir.word", max_chars=40)
        return cache.direction(ctx.path, "word", s["dir.word"].strip().lower())
    if towards != "sets":
        return cache.direction(ctx.path, towards, None)
    left, right = st.columns(2)
    for column, key, label in ((left, "dir.set_a", "From these lines"), (right, "dir.set_b", "towards these")):
        column.text_area(label, key=key, height=110, placeholder="one line per line, at least two")
        column.button("Use the lines picked on the map", key=f"{key}.picked", on_click=_use_picked, args=(key,),
                      disabled=not s["map.picked"])
    sets = [split_lines(s[key])[0] for key in ("dir.set_a", "dir.set_b")]
    if min(len(lines) for lines in sets) < 2:
        st.info("Give at least two lines on each side (type them, or lasso lines on the map and use them).")
        return None
    codes = [ctx.encode(lines)[1] for lines in sets]
    return directions.direction(codes[0], codes[1], corpus_codes=ctx.projection.codes, name="your two sets")


def along(ctx: Context, z, lines: list[str], direction: directions.Direction) -> list[float]:
    """Where each decoded line's own code lies along the direction, in spreads from the steered line
    (NaN for an empty decoding): if it rises with the amount, the decoder kept the move."""
    kept = [line for line in lines if line.strip()]
    places = iter((ctx.encode(kept)[1] - np.asarray(z)) @ direction.vector.numpy() / direction.spread if kept else [])
    return [round(float(next(places)), 2) if line.strip() else float("nan") for line in lines]


def codes(ctx: Context, z):
    """Codes the decoder takes: a bit-vector model's probabilities are clipped to [0, 1]."""
    return z.clamp(0, 1) if ctx.vae.bits else z


def _use_picked(key: str) -> None:
    st.session_state[key] = "\n".join(st.session_state["map.picked"])


def steer(ctx: Context) -> list[dict]:
    s = st.session_state
    st.text_input("Line to steer", key="dir.line", max_chars=1000)
    st.selectbox("Towards", list(TOWARDS), key="dir.towards", format_func=TOWARDS.get)
    direction = chosen_direction(ctx)
    line = s["dir.line"].strip()
    if direction is None:
        return []
    if not line:
        st.info("Give a line to steer.")
        return []
    scale = "0.5 is chance, 1 a clean split" if direction.score_name == "AUC" else "0 knows nothing, 1 all"
    st.caption(f"Direction: {direction.name}; held-out {direction.score_name} {direction.score:.2f} ({scale}). "
               f"One step is one spread of the corpus codes along it ({direction.spread:.2f}).")
    z = ctx.encode([line])[0][0]
    st.slider("How far (corpus spreads)", *state.RANGES["dir.amount"], step=0.25, key="dir.amount")
    towards, amount = s["dir.towards"], float(s["dir.amount"])
    counts = {}
    if towards == "syllables" and ctx.vae.condition == "syllables":
        own = syllables.count(line)
        counts = {"here": directions.steer_counts(own, ctx.projection, [amount]),
                  "path": directions.steer_counts(own, ctx.projection, SWEEP)}
        st.caption(f"This model takes the syllable count as a condition, so the count it is asked for moves "
                   f"with the code: {counts['here'][0]} here (the line has {own}; the sidebar's count is not used).")
    here = codes(ctx, directions.steer(z, direction, [amount]))
    here_line = ctx.decode(here, syllables=counts.get("here"))[0]
    st.markdown(f"> ### {here_line or '(empty line)'}")
    path = codes(ctx, directions.steer(z, direction, SWEEP))
    decoded = ctx.decode(path, syllables=counts.get("path"))
    measured_name = {"word": f"has '{s['dir.word'].strip()}'", "sets": None}.get(towards, TOWARDS[towards])
    frame = pd.DataFrame({"amount": SWEEP, "line": decoded})
    if counts:
        frame["syllables asked for"] = counts["path"]
    if measured_name:
        frame[measured_name] = measure(towards, line, decoded, ctx)
    frame["decoded line's place along it"] = along(ctx, z, decoded, direction)
    results_table(frame, "dir.table", "line", "steer.csv")
    st.caption("The last column re-encodes each decoded line and measures where it lies along the direction: "
               "if it rises with the amount, the decoder kept the move.")
    return [{"name": "steered", "kind": "homotopy", "lines": decoded, "xy": ctx.place(path)},
            {"name": "slider", "kind": "position", "lines": [here_line], "xy": ctx.place(here)}]


def analogy(ctx: Context) -> list[dict]:
    s = st.session_state
    st.caption("*a* is to *b* as *c* is to …: the code of *c* moved by the difference from *a* to *b*.")
    c1, c2, c3 = st.columns(3)
    for column, key, label in ((c1, "dir.a", "a"), (c2, "dir.b", "is to b"), (c3, "dir.c", "as c")):
        column.text_input(label, key=key, max_chars=1000)
    st.toggle("Keep the norm of c", key="dir.keep_norm",
              help="Rescale the answer to the length of c's code, so it stays as typical a code as c")
    lines = [s[key].strip() for key in ("dir.a", "dir.b", "dir.c")]
    if not all(lines):
        st.info("Give three lines.")
        return []
    z = ctx.encode(lines)[0]
    answer = codes(ctx, directions.analogy(z[0], z[1], z[2], keep_norm=s["dir.keep_norm"]))
    decoded = ctx.decode(answer)[0]
    st.markdown(f"> ### is to {decoded or '(empty line)'}")
    index, score = ctx.projection.code_index.nearest(answer, 5, measure="csls")
    frame = pd.DataFrame({"nearest corpus line": [ctx.projection.lines[i] for i in index[0]],
                          "CSLS": np.round(score[0], 3)})
    results_table(frame, "dir.analogy_table", "nearest corpus line", "analogy.csv")
    return [{"name": "a, b, c", "kind": "input", "lines": lines, "xy": ctx.place(z)},
            {"name": "answer", "kind": "position", "lines": [decoded], "xy": ctx.place(answer)}]


def sweep(ctx: Context) -> list[dict]:
    s = st.session_state
    st.text_input("Line", key="dir.line", max_chars=1000)
    s["dir.dims"] = min(s["dir.dims"], ctx.vae.nz)  # a link may ask for more dimensions than the code has
    st.slider("Dimensions shown (those that change the line most first)", 1, ctx.vae.nz, key="dir.dims")
    line = s["dir.line"].strip()
    if not line:
        st.info("Give a line to sweep.")
        return []
    effects = cache.dimension_effects(ctx.path, line, ctx.settings.method, tuple(sorted(
        ctx.settings.decode_options().items())))
    order = np.argsort(-effects.change, kind="stable")[: int(s["dir.dims"])]
    spread = "bit" if ctx.vae.bits else "spread"
    frame = pd.DataFrame([[f"{effects.dims[i] + 1}", round(float(effects.change[i]), 2), *effects.lines[i]]
                          for i in order], columns=["dimension", "change",
                                                    *[f"{v:+g}" if not ctx.vae.bits else f"{v:g}"
                                                      for v in effects.values]])
    st.caption(f"The line: *{effects.base}*. Each row sets one dimension to each value "
               f"({'0 or 1' if ctx.vae.bits else f'in corpus {spread}s from its mean'}), the others fixed; "
               "'change' is the share of words that differ from the line, on average.")
    results_table(frame, "dir.sweep_table", frame.columns[2], "dimensions.csv")
    return []


def knows(ctx: Context) -> list[dict]:
    table, (matrix, names) = cache.probes(ctx.path)
    per = "bit" if ctx.vae.bits else "dimension"
    st.caption("How well a linear probe from the posterior mean predicts each property on held-out lines "
               "(R² for numbers, accuracy for categories), beside a probe that knows nothing (it predicts the "
               "mean or the commonest class) and one that knows only the line's length in pieces.")
    frame = pd.DataFrame(table)
    frame["the code knows more than length"] = frame["probe"] > frame["length_only"]
    for column in ("probe", "baseline", "length_only"):
        frame[column] = frame[column].round(3)
    st.dataframe(frame, hide_index=True, width="stretch", key="dir.probes")
    st.download_button("Download CSV", frame.to_csv(index=False).encode("utf-8"), file_name="probes.csv",
                       mime="text/csv", key="dir.probes.csv")
    st.plotly_chart(charts.correlations(matrix, names, per), width="stretch", key="dir.heatmap")
    return []
