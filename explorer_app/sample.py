"""Tab 4, Sample: lines decoded from random codes drawn from the prior (for a VRNN: lines generated
with a latent drawn from its prior at every piece)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import cache, state
from .widgets import Context, results_table


def render(ctx: Context) -> list[dict]:
    c1, c2 = st.columns([3, 1])
    c1.slider("How many lines", *state.RANGES["sample.count"], key="sample.count")
    c2.button("New draw", key="sample.redraw", on_click=_redraw)
    draw = st.session_state.get("sample.draw", 0)
    count = int(st.session_state["sample.count"])
    if ctx.vae.latent == "sequence":
        st.slider("Temperature", *state.RANGES["sample.temperature"], step=0.05, key="sample.temperature",
                  help="Softmax temperature of every piece (the latents come from the VRNN's prior)")
        c1, c2 = st.columns([3, 1])
        c1.text_input("Begin with the latents of this line", key="sample.line")
        c2.slider("Its first pieces kept", *state.RANGES["sample.fixed"], key="sample.fixed",
                  help="How many of the line's latents (posterior means, one a piece) every sample starts with; "
                       "the prior draws the rest. 0: all from the prior")
        line = st.session_state["sample.line"].strip()
        fixed = int(st.session_state["sample.fixed"]) if line else 0
        decoded = cache.generate(ctx.path, count, float(st.session_state["sample.temperature"]),
                                 ctx.settings.seed + draw, ctx.settings.max_len, line or None, fixed)
        results_table(pd.DataFrame({"line": decoded}), "sample.table", "line", "samples.csv")
        if fixed:
            st.caption(f"Every line starts from the latents of the first {fixed} pieces of “{line}” and goes on "
                       "from the prior: the more the lines begin like it, the more of each piece the latents carry "
                       "(latents that follow the prior change nothing).")
        return []
    codes = ctx.vae.prior(count, seed=ctx.settings.seed + draw)
    decoded = ctx.decode(codes, seed_offset=draw + 2)
    frame = pd.DataFrame({"line": decoded, **ctx.recall(decoded)})
    results_table(frame, "sample.table", "line", "samples.csv")
    if ctx.projection is None:
        return []
    return [{"name": "prior samples", "kind": "prior", "lines": decoded, "xy": ctx.place(codes)}]


def _redraw() -> None:
    st.session_state["sample.draw"] = st.session_state.get("sample.draw", 0) + 1
