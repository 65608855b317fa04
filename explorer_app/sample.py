"""Tab 4, Sample: lines decoded from random points of the prior N(0, I)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .widgets import Context, results_table


def render(ctx: Context) -> list[dict]:
    c1, c2 = st.columns([3, 1])
    c1.slider("How many lines", 1, 64, key="sample.count")
    c2.button("New draw", key="sample.redraw", on_click=_redraw)
    seed = ctx.settings.seed + st.session_state.get("sample.draw", 0)
    codes = ctx.vae.prior(int(st.session_state["sample.count"]), seed=seed)
    decoded = ctx.decode(codes, seed_offset=st.session_state.get("sample.draw", 0) + 2)
    nearest, distance = ctx.recall(decoded)
    frame = pd.DataFrame({"line": decoded, "nearest corpus line": nearest, "distance": distance})
    results_table(frame, "sample.table", "line", "samples.csv")
    if ctx.projection is None:
        return []
    return [{"name": "prior samples", "kind": "prior", "lines": decoded, "xy": ctx.place(codes)}]


def _redraw() -> None:
    st.session_state["sample.draw"] = st.session_state.get("sample.draw", 0) + 1
