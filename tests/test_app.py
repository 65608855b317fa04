"""The Streamlit explorer, driven headlessly with AppTest on the shipped checkpoint."""

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

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


def no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


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


def test_typed_lines_are_reconstructed(app):
    at = app.run()
    typed = [f"line {i} of the evening and the morning" for i in range(10)]
    at.text_area(key="lines.text").set_value("\n".join(typed)).run()
    no_exceptions(at)
    assert frames(at)[0]["input"].tolist() == typed


@pytest.mark.parametrize("text, notice", [
    ("", "Type a line"),
    ("\n".join(f"line {i}" for i in range(1000)), "Only the first 200"),
    ("word " * 2000, "cut to 1000 characters"),
], ids=["empty", "1000 lines", "10000 characters"])
def test_bad_input_gets_a_message(app, text, notice):
    at = app.run()
    at.text_area(key="lines.text").set_value(text).run()
    no_exceptions(at)
    assert any(notice in i.value for i in at.info), [i.value for i in at.info]


def test_odd_characters_are_encoded(app):
    at = app.run()
    odd = "🌞🌙 the moon ✨\n日本語の詩\n\u200b\x00\nbell \x07 and \x1b escape"
    at.text_area(key="lines.text").set_value(odd).run()
    no_exceptions(at)
    assert not at.error
    assert len(frames(at)[0]) == 3  # the line of only invisible characters is skipped like a blank one


def test_interpolation_slider_decodes_the_point(app):
    at = open_tab(app.run(), "Interpolate")
    live = [m.value for m in at.markdown if m.value.startswith("> ###")]
    at.slider(key="interp.t").set_value(0.0).run()
    start = [m.value for m in at.markdown if m.value.startswith("> ###")][0]
    homotopy = frames(at)[0]
    assert start.endswith(homotopy["line"].iloc[0])  # t = 0 is the first step of the homotopy
    at.slider(key="interp.t").set_value(1.0).run()
    end = [m.value for m in at.markdown if m.value.startswith("> ###")][0]
    assert end.endswith(homotopy["line"].iloc[-1])
    assert live


def test_homotopy_steps_and_distinct_lines(app):
    at = open_tab(app.run(), "Interpolate")
    at.number_input(key="interp.steps").set_value(20).run()
    full = frames(at)[0]
    assert full["step"].tolist() == list(range(21))
    at.toggle(key="interp.distinct").set_value(True).run()
    distinct = frames(at)[0]
    assert distinct["line"].is_unique and distinct["line"].tolist() == list(dict.fromkeys(full["line"]))
    assert distinct["step"].iloc[0] == 0


def test_neighbours_noise(app):
    at = open_tab(app.run(), "Neighbours")
    at.number_input(key="neigh.count").set_value(6).run()
    at.slider(key="neigh.noise").set_value(0.0).run()
    still = frames(at)[0]
    assert len(still) == 6 and still["variation"].nunique() == 1
    at.slider(key="neigh.noise").set_value(2.0).run()
    assert frames(at)[0]["variation"].nunique() > 1
    at.toggle(key="neigh.by_std").set_value(True).run()
    no_exceptions(at)


def test_prior_samples_redraw(app):
    at = open_tab(app.run(), "Sample")
    at.slider(key="sample.count").set_value(5).run()
    first = frames(at)[0]["line"].tolist()
    assert len(first) == 5
    at.button(key="sample.redraw").click().run()
    assert frames(at)[0]["line"].tolist() != first


def test_sampling_settings_apply(app):
    at = app.run()
    at.radio(key="settings.method").set_value("sample").run()
    at.slider(key="settings.temperature").set_value(1.5).run()
    no_exceptions(at)
    at.radio(key="settings.method").set_value("greedy").run()
    no_exceptions(at)


def test_model_tab_shows_metrics_and_charts(app):
    at = open_tab(app.run(), "Model")
    assert any("Test metrics" in s.value for s in at.subheader)
    assert any("KL per latent dimension" in s.value for s in at.subheader)
    metrics, bar = at.dataframe[-2].value, at.dataframe[-1].value
    assert metrics.set_index("metric").loc["n_lines", "this model"] == "5000"  # counts stay integers
    assert list(bar["criterion"])[:3] == ["kl >= 8.0", "active_units >= 16", "recon_f1 >= 0.35"]
    assert set(bar.iloc[:, 2]) <= {"met", "not met"}


def test_a_corrupt_checkpoint_is_reported_and_the_others_stay_usable(app):
    at = app.run()
    assert at.selectbox(key="settings.checkpoint").options == ["broken", "poetry"]
    at.selectbox(key="settings.checkpoint").set_value("broken").run()
    no_exceptions(at)
    assert any("corrupt weights" in e.value for e in at.error)
    at.selectbox(key="settings.checkpoint").set_value("poetry").run()
    no_exceptions(at)
    assert not at.error and len(frames(at)[0]) == 3


def test_the_url_reopens_a_view(app):
    app.query_params["lines.text"] = "o rose thou art sick"
    app.query_params["settings.method"] = "greedy"
    at = app.run()
    assert frames(at)[0]["input"].tolist() == ["o rose thou art sick"]
    assert at.radio(key="settings.method").value == "greedy"


def test_the_row_memo_computes_unseen_rows_once_and_forgets_the_oldest():
    memo, calls = RowMemo(capacity=3), []

    def compute(keys):
        calls.append(keys)
        return [10 * key for key in keys]

    assert memo([1, 2, 1], compute) == [10, 20, 10] and calls == [[1, 2]]
    assert memo([2, 3, 4], compute) == [20, 30, 40] and calls[-1] == [3, 4]
    assert memo([4, 2], compute) == [40, 20] and len(calls) == 2  # all seen: nothing computed
    assert memo([1], compute) == [10] and calls[-1] == [1]  # the oldest, 1, was dropped past capacity


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


@pytest.mark.parametrize("tab, shown", [("Sample", "line"), ("nonsense", "input")])
def test_the_url_opens_a_tab(app, tab, shown):
    app.query_params["tab"] = tab
    at = app.run()
    no_exceptions(at)
    assert shown in frames(at)[0].columns



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
    assert list(lines.columns) == ["input", "reconstruction"] and len(lines) == 3
    vrnn = vae_core.load(out)
    assert list(lines["reconstruction"]) == vrnn.reconstruct(list(lines["input"]))
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


def shipped_map():
    from vae_core.projection import Projection

    return Projection.load(ckpt.SHIPPED)


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
    field = json.loads((cache.frontend_dir() / f"{sent['corpus']}.field.syllables.json").read_text())
    assert field["kind"] == "numeric" and len(field["values"]) == 95_000
    rhyme = json.loads((cache.frontend_dir() / f"{sent['corpus']}.field.rhyme.json").read_text())
    assert rhyme["kind"] == "categorical" and rhyme["names"][-1] == "other" and len(rhyme["names"]) == 13
    assert max(rhyme["values"]) == 12
    assert at.query_params["map.colour"] == "syllables"  # a shared link keeps the colouring


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


def live(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("> ###")]


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
    assert "has 'night'" in frames(at)[0].columns
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
