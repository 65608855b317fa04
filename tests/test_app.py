"""The Streamlit explorer, driven headlessly with AppTest on the shipped checkpoint."""

import gzip
import io
import json
import shutil
import threading
import time

import numpy as np
import pandas as pd
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest, app_test

import vae_core
from explorer_app.cache import RECALL, RowMemo
from vae_core import checkpoint as ckpt
from vae_core.sampler import Sampler
from vae_core.train import TrainConfig, train

from .conftest import ROOT, TINY

APP = str(ROOT / "explorer_app" / "app.py")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A checkpoints folder with the shipped model and a corrupt one beside it."""
    root = tmp_path_factory.mktemp("checkpoints")
    (root / "poetry").symlink_to(ckpt.SHIPPED, target_is_directory=True)
    broken = root / "broken"
    shutil.copytree(ckpt.SHIPPED, broken, ignore=shutil.ignore_patterns("projection*", "resume"))
    (broken / "model.safetensors").write_bytes(b"garbage")
    return root


@pytest.fixture
def app(checkpoints, monkeypatch):
    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(checkpoints))
    return AppTest.from_file(APP, default_timeout=120)


def frames(at):
    return [df.value for df in at.dataframe]


def open_tab(at, name):
    """Open tab ``name`` as a click on it does (only the open tab runs)."""
    at.session_state["tab"] = name
    return at.run()


def map_args(at) -> dict:
    """What the app sent the browser's map this run."""
    return json.loads(at.get("component_instance")[-1].proto.json_args)


def map_traces(at):
    """Names of the map's layers, the corpus first."""
    return ["corpus"] + [layer["name"] for layer in map_args(at)["layers"]]


def gunzip(path) -> bytes:
    """A map file as the browser reads it (the server keeps them gzipped)."""
    return gzip.decompress(path.read_bytes())


def no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


def live(at) -> list[str]:
    """The line a tab's slider or toggles decoded, shown large."""
    return [m.value for m in at.markdown if m.value.startswith("> ###")]


def beam(sampler, z) -> list[str]:
    """What the app decodes with its default settings (beam 4, at most 32 pieces)."""
    return sampler.beam(z, width=4, max_len=32)


@pytest.fixture
def served(monkeypatch):
    """The files each run of an AppTest serves, by URL: AppTest keeps them in a media store it makes
    for each run, so the store is recorded as it is made."""
    stores = []

    class Recorded(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recorded)
    return lambda url: stores[-1].get_file(url.rsplit("/", 1)[-1])


def download(at, served, key):
    """The file name and parsed CSV behind the download button ``key``."""
    button = next(b for b in at.get("download_button") if b.key == key)
    file = served(button.proto.url)
    assert file.mimetype == "text/csv"
    return file.filename, pd.read_csv(io.BytesIO(file.content), keep_default_na=False)


def click_row(at, key, row):
    """Click row ``row`` of the table ``key``: AppTest has no row clicks, so the next run gets the
    selection a browser sends, beside the state of every other widget."""
    table = next(df for df in at.dataframe if df.key == key)
    states = at._tree.get_widget_states()
    selection = {"selection": {"rows": [row], "columns": [], "cells": []}}
    states.widgets.append(WidgetState(id=table.proto.id, string_value=json.dumps(selection)))
    return at._run(states)


def test_opens_on_the_shipped_model(app):
    at = app.run()
    no_exceptions(at)
    lines = frames(at)[0]
    assert list(lines.columns) == ["input", "reconstruction", *RECALL]
    assert len(lines) == 3 and all(lines["reconstruction"].str.len() > 0)
    assert all(lines["most words shared with"].str.len() > 0) and lines["cosine"].between(-1, 1).all()
    assert map_args(at)["status"] == "All 95,000 corpus lines drawn (train 85,000 · test 5,000 · valid 5,000)."
    assert [t.label for t in at.tabs] == ["Lines", "Interpolate", "Neighbours", "Sample", "Directions",
                                         "Model"]


def test_typed_lines_are_reconstructed(app, shipped):
    at = app.run()
    typed = [f"line {i} of the evening and the morning" for i in range(10)]
    at.text_area(key="lines.text").set_value("\n".join(typed)).run()
    no_exceptions(at)
    table = frames(at)[0]
    assert table["input"].tolist() == typed
    assert table["reconstruction"].tolist() == beam(shipped, shipped.mu(typed))


@pytest.mark.parametrize("text, notice, inputs", [
    ("", "Type a line", None),
    ("\n".join(f"line {i}" for i in range(1000)), "Only the first 200", [f"line {i}" for i in range(200)]),
    ("word " * 2000, "cut to 1000 characters", ["word " * 200]),
], ids=["empty", "1000 lines", "10000 characters"])
def test_bad_input_gets_a_message(app, text, notice, inputs):
    at = app.run()
    at.text_area(key="lines.text").set_value(text).run()
    no_exceptions(at)
    assert any(notice in i.value for i in at.info), [i.value for i in at.info]
    if inputs is None:  # nothing to encode: no table
        assert not [df for df in at.dataframe if df.key == "lines.table"]
    else:  # the lines kept, as the notice says
        assert frames(at)[0]["input"].tolist() == inputs


def test_odd_characters_are_encoded(app, shipped):
    at = app.run()
    odd = "🌞🌙 the moon ✨\n日本語の詩\n\u200b\x00\nbell \x07 and \x1b escape"
    at.text_area(key="lines.text").set_value(odd).run()
    no_exceptions(at)
    assert not at.error
    table = frames(at)[0]  # the line of only invisible characters is skipped like a blank one
    assert table["input"].tolist() == ["🌞🌙 the moon ✨", "日本語の詩", "bell \x07 and \x1b escape"]
    # control characters are read as spaces: the last line decodes as its plain words do
    assert table["reconstruction"].iloc[2] == beam(shipped, shipped.mu(["bell and escape"]))[0]


def test_interpolation_slider_decodes_the_point(app, shipped):
    at = open_tab(app.run(), "Interpolate")
    a, b = at.text_input(key="interp.a").value, at.text_input(key="interp.b").value
    mu = shipped.mu([a, b])
    middle = shipped.interpolate(mu[0], mu[1], 100, "slerp")[50:51]  # the default t = 0.5 on the slerp path
    assert at.slider(key="interp.t").value == 0.5 and live(at) == [f"> ### {beam(shipped, middle)[0]}"]
    at.slider(key="interp.t").set_value(0.0).run()
    homotopy = frames(at)[0]
    assert homotopy["line"].tolist() == beam(shipped, shipped.interpolate(mu[0], mu[1], 10, "slerp"))
    assert live(at) == [f"> ### {homotopy['line'].iloc[0]}"]  # t = 0 is the first step of the homotopy
    at.slider(key="interp.t").set_value(1.0).run()
    assert live(at) == [f"> ### {homotopy['line'].iloc[-1]}"]


def test_homotopy_steps_and_distinct_lines(app):
    at = open_tab(app.run(), "Interpolate")
    at.number_input(key="interp.steps").set_value(20).run()
    full = frames(at)[0]
    assert full["step"].tolist() == list(range(21))
    at.toggle(key="interp.distinct").set_value(True).run()
    distinct = frames(at)[0]
    assert distinct["line"].is_unique and distinct["line"].tolist() == list(dict.fromkeys(full["line"]))
    assert distinct["step"].iloc[0] == 0


def test_neighbours_noise(app, shipped):
    at = open_tab(app.run(), "Neighbours")
    at.number_input(key="neigh.count").set_value(6).run()
    at.slider(key="neigh.noise").set_value(0.0).run()
    source = at.text_input(key="neigh.source").value
    still = frames(at)[0]
    assert still["variation"].tolist() == beam(shipped, shipped.mu([source])) * 6  # the line's own code six times
    at.slider(key="neigh.noise").set_value(2.0).run()
    q = shipped.posterior([source])
    assert frames(at)[0]["variation"].tolist() == beam(shipped, shipped.neighbours(q.mean, 6, 2.0, seed=0))
    at.toggle(key="neigh.by_std").set_value(True).run()
    no_exceptions(at)
    scaled = shipped.neighbours(q.mean, 6, 2.0, seed=0, std=q.std)
    assert frames(at)[0]["variation"].tolist() == beam(shipped, scaled)  # the noise times the line's σ


def test_neighbours_distinct_lines_count_their_variations(app):
    at = open_tab(app.run(), "Neighbours")
    all_of_them = frames(at)[0]["variation"].tolist()  # the default line's 16, some decoded alike
    assert len(set(all_of_them)) < len(all_of_them)
    at.toggle(key="neigh.distinct").set_value(True).run()
    no_exceptions(at)
    distinct = frames(at)[0]
    assert distinct["variation"].tolist() == list(dict.fromkeys(all_of_them))  # once each, as they first came
    assert distinct["times"].tolist() == [all_of_them.count(line) for line in distinct["variation"]]
    assert {"in corpus", "most words shared with"} <= set(distinct.columns)  # what each one recalls, as before


def test_prior_samples_redraw(app, shipped):
    at = open_tab(app.run(), "Sample")
    at.slider(key="sample.count").set_value(5).run()
    first = frames(at)[0]["line"].tolist()
    assert first == beam(shipped, shipped.prior(5, seed=0))  # the sidebar's seed
    at.button(key="sample.redraw").click().run()
    assert frames(at)[0]["line"].tolist() == beam(shipped, shipped.prior(5, seed=1)) != first  # the next draw


def test_sampling_settings_apply(app, shipped):
    at = app.run()
    lines = frames(at)[0]["input"].tolist()
    mu = shipped.mu(lines)
    assert at.slider(key="settings.temperature").disabled and not at.slider(key="settings.width").disabled
    at.radio(key="settings.method").set_value("sample").run()
    at.slider(key="settings.temperature").set_value(1.5).run()
    no_exceptions(at)
    assert not at.slider(key="settings.temperature").disabled and at.slider(key="settings.width").disabled
    assert frames(at)[0]["reconstruction"].tolist() == shipped.sample(mu, temperature=1.5, top_p=0.9, seed=0,
                                                                      max_len=32)
    at.radio(key="settings.method").set_value("greedy").run()
    no_exceptions(at)
    assert frames(at)[0]["reconstruction"].tolist() == shipped.greedy(mu, max_len=32)


def test_model_tab_shows_metrics_and_charts(app):
    """The tab's sections (what they say is tested in test_model_tab)."""
    at = open_tab(app.run(), "Model")
    assert {"Test metrics", "Training", "KL per latent dimension"} <= {s.value for s in at.subheader}
    test = json.loads((ckpt.SHIPPED / "evaluation.json").read_text())["test"]
    [metrics] = frames(at)
    assert list(metrics.columns) == ["metric", "this model", "LM baseline"] and len(metrics) == len(test)
    assert [chart.proto.id.rsplit("-", 1)[-1] for chart in at.get("plotly_chart")] == ["model.curves", "model.kl"]


def test_a_corrupt_checkpoint_is_reported_and_the_others_stay_usable(app):
    at = app.run()
    assert at.selectbox(key="settings.checkpoint").options == ["broken", "poetry"]
    at.selectbox(key="settings.checkpoint").set_value("broken").run()
    no_exceptions(at)
    assert any("corrupt weights" in e.value for e in at.error)
    at.selectbox(key="settings.checkpoint").set_value("poetry").run()
    no_exceptions(at)
    assert not at.error and len(frames(at)[0]) == 3


def test_the_url_reopens_a_view(app, shipped):
    app.query_params["lines.text"] = "o rose thou art sick"
    app.query_params["settings.method"] = "greedy"
    at = app.run()
    assert frames(at)[0]["input"].tolist() == ["o rose thou art sick"]
    assert at.radio(key="settings.method").value == "greedy"
    assert frames(at)[0]["reconstruction"].tolist() == shipped.greedy(shipped.mu(["o rose thou art sick"]),
                                                                      max_len=32)


@pytest.mark.parametrize("tab, view, table, file_name", [
    ("Lines", None, "lines.table", "reconstructions.csv"),
    ("Interpolate", None, "interp.table", "homotopy.csv"),
    ("Neighbours", None, "neigh.table", "neighbours.csv"),
    ("Sample", None, "sample.table", "samples.csv"),
    ("Directions", "Steer", "dir.table", "steer.csv"),
    ("Directions", "Analogy", "dir.analogy_table", "analogy.csv"),
    ("Directions", "Sweep the dimensions", "dir.sweep_table", "dimensions.csv"),
    ("Directions", "What the code knows", "dir.probes", "probes.csv"),
])
def test_each_table_downloads_as_the_csv_of_its_rows(app, served, tab, view, table, file_name):
    at = open_tab(app.run(), tab)
    if view:
        at.radio(key="dir.view").set_value(view).run()
    no_exceptions(at)
    [shown] = frames(at)  # the open tab's one table
    name, csv = download(at, served, f"{table}.csv")
    assert name == file_name and list(csv.columns) == list(shown.columns) and len(csv) == len(shown) > 0
    for column in shown:
        if pd.api.types.is_float_dtype(shown[column]):
            assert np.allclose(pd.to_numeric(csv[column], errors="coerce"), shown[column], equal_nan=True), column
        else:
            assert csv[column].astype(str).tolist() == shown[column].astype(str).tolist(), column


def test_a_clicked_row_becomes_the_current_line(app, shipped):
    at = app.run()
    chosen = frames(at)[0]["reconstruction"].iloc[1]
    at = click_row(at, "lines.table", 1)
    no_exceptions(at)
    assert at.session_state["walk"] == [chosen]
    assert at.text_area(key="lines.text").value.splitlines()[-1] == chosen  # added to the typed lines
    assert frames(at)[0]["input"].iloc[-1] == chosen
    at = open_tab(at, "Neighbours")
    assert at.text_input(key="neigh.source").value == chosen
    at = open_tab(at, "Interpolate")
    assert at.text_input(key="interp.b").value == chosen and frames(at)[0]["line"].iloc[-1] == beam(
        shipped, shipped.mu([chosen]))[0]  # the homotopy now ends at the chosen line


def test_the_pick_boxes_choose_the_ends_of_the_homotopy(app, shipped):
    typed = ["o rose thou art sick", "the woods are lovely dark and deep", "and miles to go before i sleep"]
    at = app.run()
    at.text_area(key="lines.text").set_value("\n".join(typed)).run()
    at = open_tab(at, "Interpolate")
    assert at.selectbox(key="interp.pick_a").options == ["", *typed]
    at.selectbox(key="interp.pick_a").set_value(typed[2]).run()
    at.selectbox(key="interp.pick_b").set_value(typed[0]).run()
    no_exceptions(at)
    assert at.text_input(key="interp.a").value == typed[2] and at.text_input(key="interp.b").value == typed[0]
    ends = beam(shipped, shipped.mu([typed[2], typed[0]]))
    homotopy = frames(at)[0]["line"]
    assert [homotopy.iloc[0], homotopy.iloc[-1]] == ends


def test_the_row_memo_computes_unseen_rows_once_and_forgets_the_oldest():
    memo, calls = RowMemo(capacity=3), []

    def compute(keys):
        calls.append(keys)
        return [10 * key for key in keys]

    assert memo([1, 2, 1], compute) == [10, 20, 10] and calls == [[1, 2]]
    assert memo([2, 3, 4], compute) == [20, 30, 40] and calls[-1] == [3, 4]
    assert memo([4, 2], compute) == [40, 20] and len(calls) == 2  # all seen: nothing computed
    assert memo([1], compute) == [10] and calls[-1] == [1]  # the oldest, 1, was dropped past capacity


def test_the_row_memo_waits_for_a_row_another_session_is_computing():
    memo, calls, results = RowMemo(), [], {}

    def compute(keys):
        calls.append(keys)
        while len(calls) < 2 and not release.is_set():  # both sessions are inside a computation at once
            time.sleep(0.01)
        return [10 * key for key in keys]

    release = threading.Event()
    first = threading.Thread(target=lambda: results.update(first=memo([1, 2], compute)))
    first.start()
    while not calls:
        time.sleep(0.01)
    second = threading.Thread(target=lambda: results.update(second=memo([2, 3], compute)))
    second.start()
    second.join(5)
    release.set()
    first.join(5)
    assert results == {"first": [10, 20], "second": [20, 30]}
    assert calls == [[1, 2], [3]]  # row 2 was computed once, by the session that asked first


def test_editing_a_poem_decodes_only_the_new_line(app, shipped, monkeypatch):
    decoded_rows = []
    decode = Sampler.decode

    def counting(self, z, method="greedy", **options):
        decoded_rows.append(len(z))
        return decode(self, z, method, **options)

    monkeypatch.setattr(Sampler, "decode", counting)
    poem = [f"line {i} of the evening and the morning" for i in range(12)]
    at = app.run()
    at.text_area(key="lines.text").set_value("\n".join(poem)).run()
    decoded_rows.clear()
    poem.append("and rain upon the quiet hills")
    at.text_area(key="lines.text").set_value("\n".join(poem)).run()
    no_exceptions(at)
    assert decoded_rows == [1]
    assert frames(at)[0]["reconstruction"].tolist() == shipped.beam(shipped.mu(poem), width=4, max_len=32)


def test_only_the_open_tab_runs_and_the_map_shows_its_points(app):
    at = app.run()
    assert len(at.dataframe) == 1 and map_traces(at) == ["corpus", "your lines", "reconstructions"]
    at = open_tab(at, "Interpolate")
    assert list(frames(at)[0].columns)[:3] == ["step", "t", "line"] and len(at.dataframe) == 1
    assert map_traces(at) == ["corpus", "homotopy", "slider"]
    at = open_tab(at, "Model")
    assert map_traces(at) == ["corpus"]
    assert at.query_params["tab"] == "Model"  # a shared link reopens the tab


def test_settings_survive_a_visit_to_another_tab(app):
    at = open_tab(app.run(), "Neighbours")
    at.slider(key="neigh.noise").set_value(1.25).run()
    at.number_input(key="neigh.count").set_value(5).run()
    at = open_tab(open_tab(at, "Model"), "Neighbours")
    no_exceptions(at)
    assert at.slider(key="neigh.noise").value == 1.25 and len(frames(at)[0]) == 5


@pytest.mark.parametrize("tab, opened, shown", [("Sample", "Sample", "line"), ("nonsense", "Lines", "input")])
def test_the_url_opens_a_tab(app, tab, opened, shown):
    app.query_params["tab"] = tab
    at = app.run()
    no_exceptions(at)
    assert at.session_state["tab"] == opened and shown in frames(at)[0].columns

def test_breadcrumbs_walk_back_to_a_line(app):
    at = app.run()
    at.session_state["walk"] = ["o rose thou art sick", "the woods are lovely dark and deep"]
    at.run()
    at.button(key="walk.0").click().run()
    no_exceptions(at)
    assert at.session_state["neigh.source"] == "o rose thou art sick"
    assert at.session_state["interp.b"] == "o rose thou art sick"
    assert "o rose thou art sick" in frames(at)[0]["input"].tolist()
    assert at.session_state["walk"] == ["o rose thou art sick", "the woods are lovely dark and deep"]
    at.button(key="walk.clear").click().run()
    assert at.session_state["walk"] == []


def test_a_syllable_conditioned_model_gets_a_syllable_slider(tiny_syllable_vae, tmp_path, monkeypatch):
    (tmp_path / "poetry").symlink_to(ckpt.SHIPPED, target_is_directory=True)
    (tmp_path / "syllables").symlink_to(tiny_syllable_vae.directory, target_is_directory=True)
    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert at.slider(key="settings.syllables").disabled  # the shipped model is not conditioned
    at.selectbox(key="settings.checkpoint").set_value("syllables").run()
    no_exceptions(at)
    assert not at.slider(key="settings.syllables").disabled
    at.radio(key="settings.method").set_value("greedy").run()
    recon = {}
    for n in (3, 14):
        at.slider(key="settings.syllables").set_value(n).run()
        no_exceptions(at)
        recon[n] = list(frames(at)[0]["reconstruction"])
    assert recon[3] != recon[14]  # the slider steers the decoded lines
    at = open_tab(at, "Model")
    assert any("Syllable control" in s.value for s in at.subheader)  # from the model card's evaluation


def test_a_bit_vector_model_flips_bits(bits_vae, tmp_path, monkeypatch):
    (tmp_path / "bits").symlink_to(bits_vae.directory, target_is_directory=True)
    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(tmp_path))
    at = open_tab(AppTest.from_file(APP, default_timeout=120).run(), "Interpolate")
    no_exceptions(at)
    assert not [r for r in at.radio if r.key == "interp.method"]  # bits interpolate linearly only
    assert any("bit probabilities" in c.value for c in at.caption)
    at = open_tab(at, "Neighbours")
    at.number_input(key="neigh.count").set_value(6).run()
    at.slider(key="neigh.flip").set_value(0.0).run()
    assert frames(at)[0]["variation"].nunique() == 1  # no flips: the line's own code six times
    own = at.session_state["neigh.bits"]
    code = bits_vae.mu([at.session_state["neigh.source"]])[0]
    assert own == [i for i in range(8) if code[i] >= 0.5]
    flipped = sorted(set(range(8)) - set(own))  # every bit flipped
    at.session_state["neigh.bits"] = flipped
    at.run()
    no_exceptions(at)
    assert any("8 bit(s) flipped" in c.value for c in at.caption)
    toggled = [1.0 if i in flipped else 0.0 for i in range(8)]
    line = bits_vae.beam([toggled], width=4, max_len=32)[0]
    assert any(line in m.value for m in at.markdown if m.value.startswith("> ###"))



def test_a_vrnn_offers_sampling_and_reconstruction(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "checkpoints" / "vrnn"
    train(TrainConfig(data=str(data_dir), out=str(out), model="vrnn", epochs=4, **{**TINY, "card_iw_samples": 3}))
    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(out.parent))
    at = AppTest.from_file(APP, default_timeout=120).run()
    no_exceptions(at)
    lines = frames(at)[0]
    assert list(lines.columns) == ["input", "latents", "reconstruction"] and len(lines) == 6  # two rows a line
    vrnn = vae_core.load(out)
    typed = list(lines["input"])[::2]
    assert list(lines["input"])[1::2] == typed and list(lines["latents"][:2]) == ["own", "prior"]
    assert list(lines["reconstruction"])[::2] == vrnn.reconstruct(typed)
    assert list(lines["reconstruction"])[1::2] == vrnn.reconstruct(typed, latents="prior")
    assert at.radio(key="settings.method").disabled  # sentence-VAE decoding does not apply
    for tab in ("Interpolate", "Neighbours", "Directions"):  # each says why it is not offered, and so does the map
        at = open_tab(at, tab)
        no_exceptions(at)
        assert len([i for i in at.info if "VRNN" in i.value]) == 2
    at = open_tab(at, "Sample")
    samples = frames(at)[0]["line"].tolist()
    assert samples == vrnn.sample(12, temperature=0.8, seed=0, max_len=32)
    at.slider(key="sample.temperature").set_value(0.05).run()
    no_exceptions(at)
    assert frames(at)[0]["line"].tolist() != samples
    at.text_input(key="sample.line").set_value("the sea is calm tonight")
    at.slider(key="sample.fixed").set_value(3).run()
    no_exceptions(at)
    assert frames(at)[0]["line"].tolist() == vrnn.sample(12, temperature=0.05, seed=0, max_len=32,
                                                         line="the sea is calm tonight", fixed=3)
    assert any("first 3 pieces of “the sea is calm tonight”" in c.value for c in at.caption)


def shipped_map():
    from vae_core.projection import Projection

    return Projection.load(ckpt.SHIPPED)


def test_the_map_places_lines_where_the_projection_does(app, shipped):
    """The placements kept per row come back for the right rows: typed lines (one of them twice, and
    one placed on an earlier run) land where ``Projection.place`` puts their codes."""
    at = app.run()
    typed = ["the moon is up", "o western wind", "the moon is up", "the sea is calm tonight"]
    at.text_area(key="lines.text").set_value("\n".join(typed)).run()
    layer = [layer for layer in map_args(at)["layers"] if layer["name"] == "your lines"][0]
    expected = shipped_map().place(shipped.mu(typed)).numpy()
    assert layer["lines"] == typed
    assert np.allclose(layer["x"], expected[:, 0], atol=1e-3) and np.allclose(layer["y"], expected[:, 1], atol=1e-3)


def test_a_reconstruction_that_is_a_corpus_line_is_recognised(app, shipped):
    from vae_core.properties import normalise

    corpus = shipped_map().lines
    known = {normalise(line) for line in corpus}
    decoded = shipped.beam(shipped.mu(corpus[:300]), width=4, max_len=32)
    exact = next(line for line, out in zip(corpus, decoded) if normalise(line) == normalise(out))
    inexact = next(line for line, out in zip(corpus, decoded) if normalise(out) not in known)
    at = app.run()
    at.text_area(key="lines.text").set_value(f"{exact}\n{inexact}").run()
    table = frames(at)[0]
    assert table["in corpus"].tolist() == [True, False]
    assert table["most words shared with"].iloc[0] == exact and table["words shared"].iloc[0] == 1.0


def test_colour_by_sends_a_field_the_browser_reads(app):
    from explorer_app import cache

    at = app.run()
    assert at.selectbox(key="map.colour").options[0] == "nothing"
    at.selectbox(key="map.colour").set_value("syllables").run()
    no_exceptions(at)
    sent = map_args(at)
    assert sent["colour"] == "syllables"
    folder, projection = cache.frontend_dir(), cache.load_projection(cache.checkpoint_path("poetry"))
    field = json.loads((folder / f"{sent['corpus']}.field.syllables.json").read_text())
    values = np.frombuffer(gunzip(folder / f"{sent['corpus']}.field.syllables.bin.gz"), dtype=np.float32)
    assert field["kind"] == "numeric" and values.tolist() == projection.fields["syllables"].tolist()
    at.selectbox(key="map.colour").set_value("rhyme").run()
    rhyme = json.loads((folder / f"{sent['corpus']}.field.rhyme.json").read_text())
    assert rhyme["kind"] == "categorical" and rhyme["names"][-1] == "other" and len(rhyme["names"]) == 13
    codes = np.frombuffer(gunzip(folder / f"{sent['corpus']}.field.rhyme.bin.gz"), dtype=np.uint16)
    assert len(codes) == 95_000 and codes.max() == 12 and np.bincount(codes).tolist() == rhyme["counts"]
    named = [rhyme["names"][c] for c in codes[:2000]]
    truth = [projection.names["rhyme"][r] or "(unknown)" for r in projection.fields["rhyme"][:2000]]
    assert all(shown == (true if true in rhyme["names"] else "other") for shown, true in zip(named, truth))
    assert at.query_params["map.colour"] == "rhyme"  # a shared link keeps the colouring


def test_a_map_beyond_the_drawn_points_sends_only_their_lines(app, monkeypatch):
    from explorer_app import cache, latent_map

    monkeypatch.setattr(latent_map, "MAX_POINTS", 10_000)
    at = app.run()
    no_exceptions(at)
    sent = map_args(at)
    assert sent["step"] == 10
    assert sent["status"].startswith("9,500 of 95,000 corpus lines drawn as points (every 10th)")
    lines = gunzip(cache.frontend_dir() / f"{sent['corpus']}.lines.txt.gz")
    corpus = cache.load_projection(cache.checkpoint_path("poetry")).lines
    assert lines.decode("utf-8").split("\n") == corpus[::10]  # the drawn points' lines, in order
    xy = np.frombuffer(gunzip(cache.frontend_dir() / f"{sent['corpus']}.xy.bin.gz"), dtype=np.float32)
    assert len(xy) == 2 * 95_000  # every line's place still goes, for the density beneath


def test_search_highlights_counts_and_offers_its_matches(app):
    import base64

    import numpy as np

    at = app.run()
    at.text_input(key="map.search").set_value("nightingale").run()
    no_exceptions(at)
    expected = shipped_map().search("nightingale")
    assert any(f"{len(expected):,} corpus lines match" in m.value for m in at.markdown)
    mask = np.unpackbits(np.frombuffer(base64.b64decode(map_args(at)["highlight"]), dtype=np.uint8))[:95_000]
    assert np.flatnonzero(mask).tolist() == expected.tolist()
    at.button(key="map.match.0").click().run()
    assert "nightingale" in at.session_state["neigh.source"].lower()  # used as an input, like a click


def test_an_invalid_expression_is_explained(app):
    at = app.run()
    at.toggle(key="map.regex").set_value(True).run()
    at.text_input(key="map.search").set_value("(night").run()
    no_exceptions(at)
    assert any("not a valid regular expression" in e.value for e in at.error)
    assert map_args(at)["highlight"] is None and len(frames(at)[0]) == 3  # the rest of the page works


def test_regions_are_named_and_can_be_opened(app):
    at = app.run()
    sent = map_args(at)["regions"]
    projection = shipped_map()
    assert len(sent) == len(projection.region_words) and all(r["label"] for r in sent)
    biggest = projection.region_table()[0]
    at.selectbox(key="map.region").set_value(biggest["region"]).run()
    no_exceptions(at)
    assert any(f"{biggest['lines']:,} lines in this region" in c.value for c in at.caption)
    assert map_args(at)["highlight_name"] == "region"
    at.toggle(key="map.labels").set_value(False).run()
    assert map_args(at)["regions"] == []


@pytest.mark.parametrize("name, data, message", [
    ("empty.txt", b"", "has no lines"),
    ("blank.txt", b"\n \n\t\n", "has no lines"),
    ("image.txt", bytes(range(256)) * 4, "is not a text file"),
    ("latin.txt", "caf\xe9 au lait".encode("latin-1"), "is not a text file"),
])
def test_an_unusable_upload_is_explained(app, name, data, message):
    at = app.run()
    at.file_uploader(key="map.upload").set_value((name, data, "text/plain")).run()
    no_exceptions(at)
    assert any(message in e.value for e in at.error)
    assert "your file" not in map_traces(at)


def test_an_uploaded_file_is_placed_searchable_and_usable(app):
    at = app.run()
    mine = ["the lantern swings above the harbour", "a lantern in the rain", "my own small song"]
    at.file_uploader(key="map.upload").set_value(("mine.txt", "\n".join(mine).encode(), "text/plain")).run()
    no_exceptions(at)
    layer = [layer for layer in map_args(at)["layers"] if layer["name"] == "your file"][0]
    assert layer["lines"] == mine and len(layer["x"]) == 3
    assert any("3 lines placed on the map" in c.value for c in at.caption)
    at.text_input(key="map.search").set_value("lantern").run()
    assert any("and **2** of your file's" in m.value for m in at.markdown)
    at.button(key="map.match.0").click().run()
    assert at.session_state["neigh.source"] == mine[0]


def test_steering_a_line_along_length(app, shipped):
    from vae_core.properties import words

    at = open_tab(app.run(), "Directions")
    no_exceptions(at)
    table = frames(at)[0]
    assert table["amount"].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert table["longer lines (words)"].tolist() == [len(words(line)) for line in table["line"]]
    at.slider(key="dir.amount").set_value(-3.0).run()
    shorter = live(at)[0]
    at.slider(key="dir.amount").set_value(3.0).run()
    assert live(at)[0] != shorter and live(at)[0].endswith(table["line"].iloc[-1])
    assert "steered" in map_traces(at) and at.query_params["dir.amount"] == "3.0"


def test_steering_towards_a_word_and_between_two_sets(app):
    at = open_tab(app.run(), "Directions")
    at.selectbox(key="dir.towards").set_value("word").run()
    at.text_input(key="dir.word").set_value("night").run()
    no_exceptions(at)
    from vae_core.properties import words

    table = frames(at)[0]
    assert table["has 'night'"].tolist() == ["night" in words(line) for line in table["line"]]
    at.text_input(key="dir.word").set_value("zqxjv").run()
    assert any("zqxjv" in e.value for e in at.error)  # a word in no line is explained
    at.selectbox(key="dir.towards").set_value("sets").run()
    assert any("at least two lines on each side" in i.value for i in at.info)
    at.text_area(key="dir.set_a").set_value("the day is bright\nthe sun is high\nmorning light").run()
    at.text_area(key="dir.set_b").set_value("the night is dark\nthe moon is low\nevening shade").run()
    no_exceptions(at)
    assert any("your two sets" in c.value for c in at.caption) and len(frames(at)[0]) == 7


def test_an_analogy_with_a_equal_to_b_answers_c(app, shipped):
    at = open_tab(app.run(), "Directions")
    at.radio(key="dir.view").set_value("Analogy").run()
    at.text_input(key="dir.b").set_value(at.session_state["dir.a"]).run()
    no_exceptions(at)
    c = at.session_state["dir.c"]
    assert live(at)[0] == f"> ### is to {shipped.beam(shipped.mu([c]), width=4, max_len=32)[0]}"
    assert len(frames(at)[0]) == 5 and "answer" in map_traces(at)
    at.text_input(key="dir.a").set_value("").run()
    assert any("Give three lines" in i.value for i in at.info)


def test_sweeping_the_dimensions_orders_them_by_change(app):
    at = open_tab(app.run(), "Directions")
    at.radio(key="dir.view").set_value("Sweep the dimensions").run()
    no_exceptions(at)
    grid = frames(at)[0]
    assert len(grid) == 8 and list(grid.columns[2:]) == ["-3", "-2", "-1", "+0", "+1", "+2", "+3"]
    assert grid["change"].is_monotonic_decreasing and grid["change"].iloc[0] > 0


def test_what_the_code_knows_beats_knowing_nothing_for_length(app):
    at = open_tab(app.run(), "Directions")
    at.radio(key="dir.view").set_value("What the code knows").run()
    no_exceptions(at)
    table = frames(at)[0].set_index("property")
    assert table.loc["words", "probe"] > table.loc["words", "baseline"] + 0.1
    assert len(at.get("plotly_chart")) == 1  # the correlation heatmap


def test_directions_work_per_bit_on_the_bit_vector_model(tmp_path, monkeypatch):
    (tmp_path / "poetry-bits").symlink_to(ckpt.SHIPPED.parent / "poetry-bits", target_is_directory=True)
    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(tmp_path))
    at = open_tab(AppTest.from_file(APP, default_timeout=120).run(), "Directions")
    at.slider(key="dir.amount").set_value(3.0).run()  # far enough to push probabilities past 1: clipped
    no_exceptions(at)
    assert not at.error and len(frames(at)[0]) == 7
    at.radio(key="dir.view").set_value("Sweep the dimensions").run()
    assert list(frames(at)[0].columns[2:]) == ["0", "1"] and any("0 or 1" in c.value for c in at.caption)


def test_steering_a_syllable_model_moves_the_count_it_asks_for(monkeypatch):
    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(ckpt.SHIPPED.parent))
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in {"settings.checkpoint": "poetry-syllables", "tab": "Directions",
                       "dir.towards": "syllables"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception and not at.warning
    assert any("the count it is asked for moves with the code" in c.value for c in at.caption)
    [table] = [f for f in frames(at) if "syllables asked for" in f.columns]
    asked, measured = table["syllables asked for"].tolist(), table["more syllables"].tolist()
    assert asked == sorted(asked) and asked[0] < asked[-1]
    assert measured[0] < measured[3] < measured[-1], measured  # -3, 0 and +3 spreads
