"""Plotly figure builders: training curves, KL per dimension, and each dimension's correlation with each
property. (The latent map is drawn in the browser: see ``map_frontend``.)"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots


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


def correlations(matrix, names: list[str], per: str = "dimension") -> go.Figure:
    """Each latent dimension's (or bit's) correlation with each property, as a heatmap."""
    fig = go.Figure(go.Heatmap(z=matrix.T, x=[f"{i + 1}" for i in range(matrix.shape[0])], y=names,
                               colorscale="RdBu", zmid=0, zmin=-1, zmax=1,
                               hovertemplate=per + " %{x}, %{y}: %{z:.2f}<extra></extra>"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=f"latent {per}")
    return fig
