"""Plotly figure builders: the latent map, training curves and per-dimension KL."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

# How each kind of point looks on the map.
STYLES = {
    "input": dict(color="#b5179e", symbol="diamond", size=12),
    "reconstruction": dict(color="#f77f00", symbol="circle-open", size=11),
    "homotopy": dict(color="#2a9d8f", symbol="circle", size=8),
    "position": dict(color="#e63946", symbol="star", size=16),
    "neighbour": dict(color="#4361ee", symbol="triangle-up", size=9),
    "source": dict(color="#4361ee", symbol="x", size=13),
    "prior": dict(color="#6a4c93", symbol="square", size=8),
    "picked": dict(color="#111111", symbol="circle-open", size=12),
}


def _hover_text(lines: list[str], width: int = 60) -> np.ndarray:
    """Lines cut to ``width`` characters for hover labels, as one numpy array (see ``latent_map``)."""
    return np.array([line if len(line) <= width else line[:width] + "…" for line in lines])


def latent_map(corpus_xy: torch.Tensor, corpus_lines: list[str], layers: list[dict]) -> go.Figure:
    """WebGL scatter of the corpus with every user layer on top.

    A layer is ``{"name", "kind", "lines", "xy"}``; homotopy layers are drawn as a path.
    """
    # Points and labels go in as numpy arrays: plotly checks those whole, where lists of thousands
    # of items are checked one by one and cost about a tenth of a second every rerun.
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=corpus_xy[:, 0].numpy(), y=corpus_xy[:, 1].numpy(), mode="markers", name="corpus",
        marker=dict(size=4, color="#c9c3b6", opacity=0.55), text=_hover_text(corpus_lines),
        hovertemplate="%{text}<extra>corpus</extra>",
    ))
    for layer in layers:
        style = STYLES[layer["kind"]]
        xy = layer["xy"]
        fig.add_trace(go.Scattergl(
            x=xy[:, 0].numpy(), y=xy[:, 1].numpy(), name=layer["name"],
            mode="lines+markers" if layer["kind"] == "homotopy" else "markers",
            marker=dict(size=style["size"], color=style["color"], symbol=style["symbol"],
                        line=dict(width=1, color="white")),
            line=dict(color=style["color"], width=2),
            text=_hover_text(layer["lines"]), hovertemplate="%{text}<extra>" + layer["name"] + "</extra>",
        ))
    # Streamlit picks clicked points only outside lasso/box mode, so the map opens panning and
    # offers the lasso in its toolbar.
    fig.update_layout(
        height=500, margin=dict(l=0, r=0, t=30, b=0), dragmode="pan",
        plot_bgcolor="#fbf8f1",
        legend=dict(orientation="h", yanchor="top", y=0, x=0), hoverlabel=dict(font_size=14),
        xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
    )
    return fig


def training_curves(rows: list[dict]) -> go.Figure:
    """Validation ELBO, reconstruction, KL and active units by epoch, from ``metrics.jsonl``."""
    epochs = [r["epoch"] for r in rows]
    panels = [("valid_elbo", "-ELBO (nats/line)"), ("valid_rec", "reconstruction"), ("valid_kl", "KL"),
              ("valid_active_units", "active units")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in panels])
    for i, (key, title) in enumerate(panels):
        fig.add_trace(go.Scatter(x=epochs, y=[r.get(key) for r in rows], mode="lines+markers", name=title,
                                 line=dict(color="#6a4c93")), row=i // 2 + 1, col=i % 2 + 1)
        train_key = {"valid_elbo": "train_loss", "valid_rec": "train_rec"}.get(key)
        if train_key:
            fig.add_trace(go.Scatter(x=epochs, y=[r.get(train_key) for r in rows],
                                     mode="lines", name=f"{title} (train)", line=dict(color="#c9c3b6", dash="dot")),
                          row=i // 2 + 1, col=i % 2 + 1)
    fig.update_yaxes(rangemode="tozero", row=2, col=2)  # active units: a count out of nz
    fig.update_layout(height=520, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text="epoch")
    return fig


def kl_per_dimension(kl: torch.Tensor) -> go.Figure:
    """Mean KL of each latent dimension as bars (collapsed dimensions sit near zero)."""
    fig = go.Figure(go.Bar(x=list(range(len(kl))), y=kl.tolist(), marker_color="#2a9d8f"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="latent dimension",
                      yaxis_title="KL (nats)")
    return fig
