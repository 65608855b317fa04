"""The map beside every tab: the corpus in the latent space, what the open tab made on top, and
picking corpus lines by clicking or lasso."""

from __future__ import annotations

import streamlit as st

from . import charts, state
from .widgets import Context, needs_sentence_code

MAX_PICKED = 50  # picked lines kept as choices for the other tabs


def render(ctx: Context, layers: list[dict]) -> None:
    if needs_sentence_code(ctx, "The map"):
        return
    if ctx.projection is None:
        st.warning(f"Checkpoint '{ctx.name}' has no map yet. Build one with "
                   f"`python -m vae_core.projection --checkpoint checkpoints/{ctx.name}`.")
        return
    projection = ctx.projection
    fig = charts.latent_map(projection.xy, projection.lines, layers)
    event = st.plotly_chart(fig, key="map.chart", on_select="rerun", selection_mode=("points", "lasso", "box"),
                            width="stretch", config={"displaylogo": False})
    picked = [projection.lines[p["point_index"]] for p in (event.selection.points if event else [])
              if p.get("curve_number") == 0]
    st.session_state["map.picked"] = picked[:MAX_PICKED]
    if not picked:
        st.caption("Hover to read corpus lines; click one, or choose the lasso in the map's toolbar and "
                   "circle several, to use them in the tabs.")
        return
    shown = f" (the first {MAX_PICKED} are offered in Interpolate)" if len(picked) > MAX_PICKED else ""
    st.markdown(f"**{len(picked)} corpus {'line' if len(picked) == 1 else 'lines'} picked**{shown}")
    for i, line in enumerate(picked[:8]):
        text, button = st.columns([5, 1])
        text.write(line)
        button.button("Use", key=f"map.use.{i}", on_click=state.go_to, args=(line,),
                      help="Make this your current line in every tab")
