"""Tab 3, Neighbours: variations on a line, from codes scattered around its own."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .widgets import Context, results_table


def render(ctx: Context) -> list[dict]:
    st.text_input("Line", key="neigh.source", max_chars=1000)
    source = st.session_state["neigh.source"].strip()
    c1, c2, c3 = st.columns([3, 2, 3])
    c1.slider("Noise scale", 0.0, 2.0, step=0.05, key="neigh.noise")
    c2.number_input("How many", 1, 64, key="neigh.count")
    c3.toggle("Scale by the line's σ", key="neigh.by_std",
              help="Multiply the noise by the posterior standard deviation of each latent dimension, "
                   "so it spreads where the model itself is unsure about the line")
    if not source:
        st.info("Give a line to vary.")
        return []
    z, _, std = ctx.encode([source])
    codes = ctx.vae.neighbours(z[0], int(st.session_state["neigh.count"]), float(st.session_state["neigh.noise"]),
                               seed=ctx.settings.seed, std=std[0] if st.session_state["neigh.by_std"] else None)
    decoded = ctx.decode(codes, seed_offset=1)
    nearest, distance = ctx.recall(decoded)
    frame = pd.DataFrame({"variation": decoded, "nearest corpus line": nearest, "distance": distance})
    results_table(frame, "neigh.table", "variation", "neighbours.csv")
    if ctx.projection is None:
        return []
    return [{"name": "line", "kind": "source", "lines": [source], "xy": ctx.place(z)},
            {"name": "neighbours", "kind": "neighbour", "lines": decoded, "xy": ctx.place(codes)}]
