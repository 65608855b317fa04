"""Plotly figure builders: training curves, KL per dimension, and each dimension's correlation with each
property. (The latent map is drawn in the browser: see ``map_frontend``.)"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from vae_core.card import lost_stages, stages

STAGE_COLOURS = ["#6a4c93", "#1982c4", "#2a9d8f", "#e76f51", "#8ac926", "#ff595e"]  # one a training stage


def training_curves(rows: list[dict]) -> go.Figure:
    """Validation -ELBO, reconstruction, KL and active units from ``metrics.jsonl``, by epoch counted over
    every training stage and then the variance head's (``--spread-epochs``): a colour a stage, and a line,
    with its name, where each later stage begins (saying which earlier stages left no log)."""
    trained, head = [r for r in rows if "spread" not in r], [r for r in rows if "spread" in r]
    lost = lost_stages(trained)
    groups = [(stage, f"stage {stage}", part, "epoch") for stage, part in stages(trained).items()]
    if head:
        groups.append((None, "variance head", head, "spread"))
    panels = [("valid_elbo", "-ELBO (nats/line)"), ("valid_rec", "reconstruction"), ("valid_kl", "KL"),
              ("valid_active_units", "active units")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in panels])
    done, previous = 0, 0  # epochs drawn so far, the stage before
    label_heights = [1.0, 0.9, 0.8, 0.7]  # stage names take turns at these heights, so close stages' do not overlap
    for n, (stage, name, part, counter) in enumerate(groups):
        colour, x = STAGE_COLOURS[n % len(STAGE_COLOURS)], list(range(done + 1, done + len(part) + 1))
        epochs = [r[counter] for r in part]  # within the stage, shown on hover
        hover = f"{name}, epoch %{{customdata}}: %{{y:.4g}}<extra></extra>"
        for p, (key, _) in enumerate(panels):
            cell = dict(row=p // 2 + 1, col=p % 2 + 1)
            fig.add_trace(go.Scatter(x=x, y=[r.get(key) for r in part], mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=p == 0, line=dict(color=colour),
                                     customdata=epochs, hovertemplate=hover), **cell)
            train_key = {"valid_elbo": "train_loss", "valid_rec": "train_rec"}.get(key)
            if train_key:
                fig.add_trace(go.Scatter(x=x, y=[r.get(train_key) for r in part], mode="lines",
                                         name=f"{name} (train)", legendgroup=name, showlegend=False,
                                         line=dict(color=colour, dash="dot"), opacity=0.5, customdata=epochs,
                                         hovertemplate="train, " + hover), **cell)
        if done:
            missing = [str(s) for s in lost if stage and previous < s < stage]
            label = name + (f" (stage {', '.join(missing)}: no log)" if missing else "")
            fig.add_vline(x=done + 0.5, line=dict(color="#999999", dash="dash", width=1))
            fig.add_annotation(x=done + 0.5, xref="x", y=label_heights[(n - 1) % len(label_heights)], yref="y domain",
                               text=label, showarrow=False, xanchor="left" if done < len(rows) / 2 else "right",
                               yanchor="top", font=dict(size=11, color="#666666"))
        done, previous = done + len(part), stage or previous
    fig.update_yaxes(rangemode="tozero", row=2, col=2)  # active units: a count out of nz
    fig.update_layout(height=560, showlegend=len(groups) > 1, legend=dict(orientation="h", y=-0.12),
                      margin=dict(l=10, r=10, t=40, b=10))
    # a fixed range, or the stage names' text would widen the first panel's axis to fit it
    fig.update_xaxes(title_text="epoch (over all stages)" if len(groups) > 1 else "epoch",
                     range=[0.5, len(rows) + 0.5])
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
