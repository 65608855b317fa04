"""Tab 5, Model: the model card, training curves, test metrics and KL per latent dimension."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from vae_core.card import bar_checks, fmt
from vae_core.checkpoint import read_metrics

from . import cache, charts
from .widgets import Context


def render(ctx: Context) -> list[dict]:
    directory = Path(ctx.path)
    evaluation_file = directory / "evaluation.json"
    if evaluation_file.is_file():
        evaluation = json.loads(evaluation_file.read_text(encoding="utf-8"))
        if "test" in evaluation:
            test, baseline = evaluation["test"], evaluation.get("baseline")
            st.subheader("Test metrics")
            same = {"iw_nll": "nll", "iw_nll_encoder": "nll"}  # the baseline's exact NLL beside either bound
            rows = [(k, fmt(v), fmt((baseline or {}).get(same.get(k, k), ""))) for k, v in test.items()]
            st.dataframe(pd.DataFrame(rows, columns=["metric", "this model", "LM baseline"]),
                         hide_index=True, width="stretch")
            if test.get("nz", 0) > 0 and baseline:
                st.caption("Acceptance bar for the shipped model")
                checks = [(criterion, value, "met" if ok else "not met")
                          for criterion, value, ok in bar_checks(test, baseline)]
                st.dataframe(pd.DataFrame(checks, columns=["criterion", "observed", ""]), hide_index=True,
                             width="stretch")
        control = evaluation.get("syllables")
        if control:
            st.subheader("Syllable control")
            st.caption(f"Mean absolute error between requested and produced syllable counts, beam 4 from "
                       f"{control['n_lines']} prior codes, beside the unconditioned model decoding the same codes.")
            st.dataframe(pd.DataFrame([("this model", fmt(control["mae"])),
                                       (control["unconditioned"], fmt(control["mae_unconditioned"]))],
                                      columns=["model", "syllable MAE"]), hide_index=True, width="stretch")
    metrics = read_metrics(directory)
    if metrics:
        st.subheader("Training")
        st.plotly_chart(charts.training_curves(metrics), width="stretch", key="model.curves")
    if ctx.projection is not None and ctx.vae.nz > 0:
        st.subheader("KL per latent dimension")
        st.plotly_chart(charts.kl_per_dimension(cache.kl_per_dimension(ctx.path)), width="stretch",
                        key="model.kl")
    card = directory / "README.md"
    if card.is_file():
        with st.expander("Model card", expanded=False):
            st.markdown(card.read_text(encoding="utf-8"))
    return []
