"""Tab 2, Interpolate: the homotopy between two lines, with a slider that decodes any point on it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vae_core.sampler import INTERPOLATIONS, first_appearances

from . import state
from .widgets import Context, needs_sentence_code, results_table

SLIDER_STEPS = 100  # resolution of the live slider


def _choices() -> list[str]:
    typed = [line.strip() for line in st.session_state["lines.text"].splitlines() if line.strip()]
    return list(dict.fromkeys(typed + st.session_state["map.picked"]))


def render(ctx: Context) -> list[dict]:
    if needs_sentence_code(ctx, "Interpolation"):
        return []
    left, right = st.columns(2)
    left.text_input("From", key="interp.a", max_chars=1000)
    right.text_input("To", key="interp.b", max_chars=1000)
    choices = _choices()
    if choices:
        pick_a, pick_b = st.columns(2)
        pick_a.selectbox("…or pick the first line", [""] + choices, key="interp.pick_a",
                         on_change=_copy_pick, args=("interp.pick_a", "interp.a"))
        pick_b.selectbox("…or pick the second line", [""] + choices, key="interp.pick_b",
                         on_change=_copy_pick, args=("interp.pick_b", "interp.b"))
    a, b = st.session_state["interp.a"].strip(), st.session_state["interp.b"].strip()
    if not a or not b:
        st.info("Give two lines to walk between.")
        return []
    c1, c2, c3 = st.columns(3)
    c1.number_input("Steps", *state.RANGES["interp.steps"], key="interp.steps")
    if ctx.vae.bits:
        method = "linear"
        c2.caption("Path: linear between the two lines' bit probabilities; a bit flips where its "
                   "probability crosses ½.")
    else:
        c2.radio("Path", INTERPOLATIONS, key="interp.method", horizontal=True,
                 help="linear: a straight line; slerp: along the sphere, keeping codes as far from the origin "
                      "as real ones")
        method = st.session_state["interp.method"]
    c3.toggle("Distinct lines only", key="interp.distinct")
    z, _, _ = ctx.encode([a, b])
    fine = ctx.vae.interpolate(z[0], z[1], SLIDER_STEPS, method)
    st.slider("Position between the two lines", *state.RANGES["interp.t"], step=1 / SLIDER_STEPS, key="interp.t")
    here = fine[round(st.session_state["interp.t"] * SLIDER_STEPS)]
    st.markdown(f"> ### {ctx.decode(here.unsqueeze(0))[0] or '(empty line)'}")

    steps = int(st.session_state["interp.steps"])
    path = ctx.vae.interpolate(z[0], z[1], steps, method)
    decoded = ctx.decode(path)
    rows = first_appearances(decoded) if st.session_state["interp.distinct"] else list(enumerate(decoded))
    frame = pd.DataFrame({"step": [s for s, _ in rows], "t": [round(s / steps, 3) for s, _ in rows],
                          "line": [line for _, line in rows], **ctx.recall([line for _, line in rows])})
    results_table(frame, "interp.table", "line", "homotopy.csv")
    if ctx.projection is None:
        return []
    return [{"name": "homotopy", "kind": "homotopy", "lines": decoded, "xy": ctx.place(path)},
            {"name": "slider", "kind": "position", "lines": [ctx.decode(here.unsqueeze(0))[0]],
             "xy": ctx.place(here.unsqueeze(0))}]


def _copy_pick(source: str, target: str) -> None:
    if st.session_state[source]:
        st.session_state[target] = st.session_state[source]
