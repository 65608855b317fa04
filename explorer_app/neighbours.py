"""Tab 3, Neighbours: variations on a line, from codes scattered around its own.

For a bit-vector model the variations flip each bit with a chosen probability, and a row of bit
toggles lets a user flip single bits of the line's code and watch the line change.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from . import state
from .widgets import Context, needs_sentence_code, results_table


def render(ctx: Context) -> list[dict]:
    if needs_sentence_code(ctx, "Varying a line's code"):
        return []
    st.text_input("Line", key="neigh.source", max_chars=1000)
    source = st.session_state["neigh.source"].strip()
    c1, c2, c3 = st.columns([3, 2, 3])
    if ctx.vae.bits:
        c1.slider("Flip probability", *state.RANGES["neigh.flip"], step=0.01, key="neigh.flip",
                  help="Each bit of the line's code flips with this probability")
    else:
        c1.slider("Noise scale", *state.RANGES["neigh.noise"], step=0.05, key="neigh.noise")
        c3.toggle("Scale by the line's σ", key="neigh.by_std",
                  help="Multiply the noise by the posterior standard deviation of each latent dimension, "
                       "so it spreads where the model itself is unsure about the line")
    c2.number_input("How many", *state.RANGES["neigh.count"], key="neigh.count")
    c3.toggle("Distinct lines only", key="neigh.distinct",
              help="List each variation once, with how many of the codes decoded to it")
    if not source:
        st.info("Give a line to vary.")
        return []
    z, _, std = ctx.encode([source])
    s = st.session_state
    if ctx.vae.bits:
        codes = ctx.vae.neighbours(z[0], int(s["neigh.count"]), float(s["neigh.flip"]), seed=ctx.settings.seed)
    else:
        codes = ctx.vae.neighbours(z[0], int(s["neigh.count"]), float(s["neigh.noise"]), seed=ctx.settings.seed,
                                   std=std[0] if s["neigh.by_std"] else None)
    decoded = ctx.decode(codes, seed_offset=1)
    if s["neigh.distinct"]:
        lines, times = zip(*Counter(decoded).items())  # in order of first appearance
        frame = pd.DataFrame({"variation": lines, "times": times, **ctx.recall(list(lines))})
    else:
        frame = pd.DataFrame({"variation": decoded, **ctx.recall(decoded)})
    results_table(frame, "neigh.table", "variation", "neighbours.csv")
    layers = [{"name": "line", "kind": "source", "lines": [source], "xy": ctx.place(z)},
              {"name": "neighbours", "kind": "neighbour", "lines": decoded, "xy": ctx.place(codes)}]
    if ctx.vae.bits:
        layers.append(bit_toggles(ctx, source, z[0]))
    return layers if ctx.projection is not None else []


def bit_toggles(ctx: Context, source: str, code) -> dict:
    """One toggle per bit of the line's code (its most likely bits); the toggled code is decoded."""
    own = [i for i, p in enumerate(code.tolist()) if p >= 0.5]  # the line's most likely bits
    s = st.session_state
    if s.get("neigh.bits_of") != (ctx.path, source):  # a new line: the toggles start from its own code
        s["neigh.bits"], s["neigh.bits_of"] = own, (ctx.path, source)
    st.subheader("Flip single bits")
    st.pills("Bits set to 1 (click one to flip it)", list(range(len(code))), selection_mode="multi",
             key="neigh.bits", format_func=lambda i: f"{i + 1}")
    toggled = [0.0] * len(code)
    for i in s["neigh.bits"]:
        toggled[i] = 1.0
    flipped = sorted(set(own) ^ set(s["neigh.bits"]))
    line = ctx.decode([toggled])[0]
    st.markdown(f"> ### {line or '(empty line)'}")
    st.caption(f"{len(flipped)} bit(s) flipped from the line's own code"
               + (f": {', '.join(str(i + 1) for i in flipped)}." if flipped else "."))
    return {"name": "flipped bits", "kind": "position", "lines": [line], "xy": ctx.place([toggled])}
