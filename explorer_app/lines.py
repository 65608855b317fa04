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
        own, prior = (cache.reconstruct(ctx.path, tuple(lines), latents) for latents in ("posterior", "prior"))
        frame = pd.DataFrame({"input": [line for line in lines for _ in range(2)],
                              "latents": ["own", "prior"] * len(lines),
                              "reconstruction": [line for pair in zip(own, prior) for line in pair]})
        results_table(frame, "lines.table", "reconstruction", "reconstructions.csv")
        st.caption("A VRNN has a latent at every piece. Each piece of a reconstruction is the model's best guess "
                   "given the line so far and a latent: the piece's own (its posterior's mean, which has seen the "
                   "piece) or the prior's (which has only seen the line before it). Where a line's two "
                   "reconstructions differ, the latents carry the line; where they agree, the model guesses like "
                   "a language model.")
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
