"""Tab 5, Model: what the test figures mean beside the LM baseline, the metrics, training curves over
every stage, KL per latent dimension and the model card."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from vae_core import card
from vae_core.checkpoint import CheckpointError, read_json, read_metrics

from . import cache, charts
from .widgets import Context


def render(ctx: Context) -> list[dict]:
    directory = Path(ctx.path)
    evaluation_file = directory / "evaluation.json"
    if evaluation_file.is_file():
        try:
            evaluation, config = read_json(evaluation_file), read_json(directory / "config.json")
        except CheckpointError as err:
            st.warning(f"The test figures cannot be read: {err}")
            evaluation, config = {}, {}
        if "test" in evaluation:
            baseline = evaluation.get("baseline")
            st.subheader("Test metrics")
            st.markdown(" ".join(card.findings(config, evaluation)))
            rows = [(name, value, base) for _, name, value, base in card.metric_rows(evaluation["test"], baseline)]
            table = pd.DataFrame(rows, columns=["metric", "this model", "LM baseline"])
            st.dataframe(table if baseline else table.drop(columns="LM baseline"), hide_index=True, width="stretch")
            st.caption("Nats are a line's; perplexity is a BPEmb piece's.")
        control = evaluation.get("syllables")
        if control:
            st.subheader("Syllable control")
            st.caption(f"Mean absolute error between requested and produced syllable counts, beam 4 from "
                       f"{card.fmt(control['n_lines'])} prior codes, beside the unconditioned model decoding the "
                       "same codes.")
            st.dataframe(pd.DataFrame([("this model", card.fmt(control["mae"])),
                                       (card.shown_path(control["unconditioned"]),
                                        card.fmt(control["mae_unconditioned"]))],
                                      columns=["model", "syllable MAE"]), hide_index=True, width="stretch")
    metrics = read_metrics(directory)
    if metrics:
        st.subheader("Training")
        if card.lost_note(metrics):
            st.caption(card.lost_note(metrics))
        st.plotly_chart(charts.training_curves(metrics), width="stretch", key="model.curves")
    if ctx.projection is not None and ctx.vae.nz > 0:
        st.subheader("KL per latent dimension")
        st.plotly_chart(charts.kl_per_dimension(cache.kl_per_dimension(ctx.path)), width="stretch",
                        key="model.kl")
    model_card = directory / "README.md"
    if model_card.is_file():
        with st.expander("Model card", expanded=False):
            st.markdown(model_card.read_text(encoding="utf-8"))
    return []
