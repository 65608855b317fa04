"""The Model tab: the model beside the LM baseline in words and figures, and training curves over every
stage (AppTest on the shipped checkpoint; the chart builder on its own)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from explorer_app.charts import training_curves
from vae_core import checkpoint as ckpt

from .conftest import ROOT

APP = str(ROOT / "explorer_app" / "app.py")


def elbo_traces(fig):
    """The validation -ELBO panel's traces (the first subplot's, training curves left out)."""
    return [t for t in fig.data if t.xaxis == "x" and t.yaxis == "y" and "(train)" not in t.name]


def test_the_curves_draw_each_stage_on_one_epoch_axis():
    rows = [{"epoch": 1, "valid_elbo": 70.0}, {"epoch": 2, "valid_elbo": 66.0},  # no stage: the first run's
            {"stage": 1, "epoch": 3, "valid_elbo": 65.0},
            {"stage": 2, "epoch": 1, "valid_elbo": 64.0}, {"stage": 2, "epoch": 2, "valid_elbo": 63.5},
            {"stage": 4, "epoch": 1, "valid_elbo": 63.0}]
    fig = training_curves(rows)
    traces = elbo_traces(fig)
    assert [t.name for t in traces] == ["stage 1", "stage 2", "stage 4"]
    assert [list(t.x) for t in traces] == [[1, 2, 3], [4, 5], [6]]
    assert [list(t.y) for t in traces] == [[70.0, 66.0, 65.0], [64.0, 63.5], [63.0]]
    assert len({t.line.color for t in traces}) == 3
    labels = [a.text for a in fig.layout.annotations if a.text.startswith("stage")]
    assert labels == ["stage 2", "stage 4 (stage 3: no log)"]
    assert sorted({shape.x0 for shape in fig.layout.shapes}) == [3.5, 5.5]  # where stages 2 and 4 begin
    assert fig.layout.showlegend


def test_the_variance_head_is_drawn_after_the_stages():
    rows = [{"stage": 1, "epoch": 1, "valid_elbo": 70.0}, {"stage": 2, "epoch": 1, "valid_elbo": 66.0},
            {"stage": 2, "epoch": 2, "valid_elbo": 65.5}, {"stage": 2, "spread": 1, "valid_elbo": 63.0}]
    fig = training_curves(rows)
    traces = elbo_traces(fig)
    assert [(t.name, list(t.x), list(t.customdata)) for t in traces] == [
        ("stage 1", [1], [1]), ("stage 2", [2, 3], [1, 2]), ("variance head", [4], [1])]
    assert [a.text for a in fig.layout.annotations if a.text.startswith(("stage", "variance"))] == [
        "stage 2", "variance head"]


def test_one_stage_draws_one_curve_without_stage_lines():
    fig = training_curves([{"epoch": e, "valid_elbo": 70.0 - e} for e in (1, 2, 3)])
    assert [list(t.x) for t in elbo_traces(fig)] == [[1, 2, 3]]
    assert not fig.layout.shapes and not fig.layout.showlegend


@pytest.fixture(scope="module")
def model_tab(tmp_path_factory):
    """The app's Model tab opened on the shipped model."""
    root = tmp_path_factory.mktemp("checkpoints")
    (root / "poetry").symlink_to(ckpt.SHIPPED, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LATENT_VERSE_CHECKPOINTS", str(root))
        at = AppTest.from_file(APP, default_timeout=180).run()
        at.session_state["tab"] = "Model"
        at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_model_tab_compares_the_model_with_the_lm(model_tab):
    at = model_tab
    said = " ".join(m.value for m in at.markdown)
    assert ("On 5,000 held-out lines this model's likelihood bound is 57.17 nats a line, 1.2% above a plain "
            "language model (56.52): the code costs little.") in said
    assert "Greedy decoding of a line's code gets back about a half (46%) of its words (unigram F1 0.46)." in said
    table = next(df.value for df in at.dataframe if "LM baseline" in df.value.columns).set_index("metric")
    assert table.loc["likelihood bound on -log p(x) (nats)"].tolist() == ["57.17", "56.52"]
    assert table.loc["lines", "this model"] == "5,000"
    assert table.loc["perplexity (a piece)"].tolist() == ["102.05", "96.82"]
    shown = [e.value for kind in ("markdown", "caption", "subheader", "dataframe") for e in getattr(at, kind)]
    assert not any("cceptance" in (v if isinstance(v, str) else v.to_string()) for v in shown)
    assert not any("was not kept" in c.value for c in at.caption)  # every stage's epochs are in the log


def test_the_model_tab_draws_the_whole_training_history(model_tab):
    chart = next(c for c in model_tab.get("plotly_chart") if "model.curves" in c.proto.id)
    figure = json.loads(chart.proto.spec)
    stages = [t["name"] for t in figure["data"] if t.get("xaxis", "x") == "x" and "(train)" not in t["name"]]
    assert stages == ["stage 1", "stage 2", "stage 3", "stage 4", "stage 5", "variance head"]
    logged = sum(1 for _ in (ckpt.SHIPPED / "metrics.jsonl").open())
    assert max(max(t["x"]) for t in figure["data"]) == logged  # x counts epochs over all stages
