"""Tab 1, Lines: type lines of verse and see how the model reconstructs them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import cache
from .widgets import Context, results_table, split_lines


def render(ctx: Context) -> list[dict]:
    st.text_area("Lines of verse, one per line", key="lines.text", height=140,
                 placeholder="the sea is calm tonight")
    lines, notices = split_lines(st.session_state["lines.text"])
    for notice in notices:
        st.info(notice)
    if not lines:
        st.info("Type a line of verse above to place it on the map.")
        return []
    if ctx.vae.latent == "sequence":
        frame = pd.DataFrame({"input": lines, "reconstruction": cache.reconstruct(ctx.path, tuple(lines))})
        results_table(frame, "lines.table", "reconstruction", "reconstructions.csv")
        st.caption("A VRNN's reconstruction: each piece is its best guess given the line so far and that "
                   "piece's own latent (at its posterior mean).")
        return []
    z, mu, _ = ctx.encode(lines)
    decoded = ctx.decode(z)
    frame = pd.DataFrame({"input": lines, "reconstruction": decoded, **ctx.recall(decoded)})
    results_table(frame, "lines.table", "reconstruction", "reconstructions.csv")
    layers = []
    if ctx.projection is not None:
        layers.append({"name": "your lines", "kind": "input", "lines": lines, "xy": ctx.place(mu)})
        recon = [line for line in decoded if line.strip()]
        if recon:
            _, recon_mu, _ = ctx.encode(recon)
            layers.append({"name": "reconstructions", "kind": "reconstruction", "lines": recon,
                           "xy": ctx.place(recon_mu)})
    return layers
