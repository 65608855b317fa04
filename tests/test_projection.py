"""The latent map: every line of its sources, stored compactly without pickle, properties, regions,
search, stable placement of new codes, and what generated lines recall."""

import gzip
import json

import numpy as np
import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core import syllables
from vae_core.evaluate import unigram_f1
from vae_core.projection import META, TENSORS, LineSearch, MapConfig, Projection, build, main, source_files

from .conftest import POETRY, tiny_data

SMALL = MapConfig(neighbours=5, regions=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("map-data"), n_train=150, n_valid=30, n_test=20)


@pytest.fixture(scope="module")
def projection(vae, corpus):
    return build(vae, source_files(corpus), SMALL, progress=False)


@pytest.fixture(scope="module")
def saved(projection, tmp_path_factory):
    directory = tmp_path_factory.mktemp("map")
    projection.save(directory)
    return directory


def test_every_line_of_every_split_is_mapped(projection, corpus):
    lines = [line for name in ("test", "train", "valid") for line in (corpus / f"{name}.txt").read_text().splitlines()]
    assert projection.lines == lines and projection.xy.shape == (200, 2) and torch.isfinite(projection.xy).all()
    splits = projection.names["split"]
    counts = {splits[i]: int(c) for i, c in enumerate(np.bincount(projection.fields["split"]))}
    assert counts == {"train": 150, "valid": 30, "test": 20}
    for name, values in projection.fields.items():
        assert len(values) == 200, name


def test_fields_measure_the_lines(projection, vae):
    f = projection.fields
    assert (f["words"] == [len(line.split()) for line in projection.lines]).mean() > 0.9
    assert f["syllables"].tolist() == [syllables.count(line) for line in projection.lines]
    decoded = vae.greedy(vae.mu(projection.lines[:20]))
    assert np.allclose(f["recon_f1"][:20], [unigram_f1(a, b) for a, b in zip(projection.lines, decoded)], atol=1e-6)
    assert np.allclose(f["code_norm"], projection.codes.norm(dim=1).numpy(), atol=1e-4)
    assert set(np.unique(f["region"])) == {0, 1, 2} and all(projection.region_words)
    first = projection.names["first_word"]
    assert len(first) <= 13 and "other" in first


def test_stored_without_pickle_or_text_and_loaded_back(projection, saved, corpus):
    assert sorted(p.name for p in saved.iterdir()) == [META, TENSORS]
    meta = (saved / META).read_text()
    assert projection.lines[0] not in meta  # lines are read back from the sources, not copied
    assert all(not s["path"].startswith("/") for s in json.loads(meta)["sources"])  # relative to the map
    again = Projection.load(saved)
    assert again.lines == projection.lines and again.region_words == projection.region_words
    step = (projection.codes.max(0).values - projection.codes.min(0).values) / 254
    assert ((again.codes - projection.codes).abs() <= step / 2 + 1e-5).all()  # 8-bit codes
    assert torch.allclose(again.xy, projection.xy, atol=2e-3, rtol=1e-3)  # float16 layout
    for name, values in projection.fields.items():
        assert np.allclose(again.fields[name], values, atol=1e-3), name


def test_maps_of_the_same_files_share_their_lines_and_word_index(projection, saved, vae, tmp_path):
    import gc
    import weakref

    other = tmp_path / "other"
    projection.save(other)  # a second checkpoint's map of the same files
    a, b = Projection.load(saved), Projection.load(other)
    assert a.lines is b.lines and a.word_index is b.word_index
    assert a.search("the").tolist() == b.search("the").tolist() and len(a.search("the"))
    data = tiny_data(tmp_path / "data", n_train=40, n_valid=10, n_test=10)
    small = build(vae, source_files(data), MapConfig(neighbours=5, regions=2, reconstruct=False), progress=False)
    small.save(tmp_path / "small")
    loaded = Projection.load(tmp_path / "small")
    assert loaded.corpus is small.corpus is not a.corpus and len(loaded.word_index) == 60
    freed = weakref.ref(small.corpus)
    del small, loaded
    gc.collect()
    assert freed() is None  # freed with the last map that used it


def test_a_changed_or_missing_source_is_refused(vae, tmp_path):
    data = tiny_data(tmp_path / "data", n_train=40, n_valid=10, n_test=10)
    out = tmp_path / "map"
    build(vae, source_files(data), MapConfig(neighbours=5, regions=2, reconstruct=False), progress=False).save(out)
    assert len(Projection.load(out)) == 60
    (data / "valid.txt").write_text("another line\n" * 10)
    with pytest.raises(ckpt.CheckpointError, match="changed since the map was built"):
        Projection.load(out)
    (data / "valid.txt").unlink()
    with pytest.raises(ckpt.CheckpointError, match="missing"):
        Projection.load(out)
    with pytest.raises(ckpt.CheckpointError, match="missing"):
        Projection.load(tmp_path / "nowhere")


def test_a_field_naming_a_category_the_map_lacks_is_refused(projection, tmp_path):
    projection.save(tmp_path / "map")
    tensors = ckpt.read_tensors(tmp_path / "map" / TENSORS)
    for value in (len(projection.names["rhyme"]), -1):  # hand-edited past the names, or below them
        tensors["field.rhyme"][0] = value
        ckpt.write_tensors(tmp_path / "map" / TENSORS, tensors)
        with pytest.raises(ckpt.CheckpointError, match="the field 'rhyme' names categories the map does not hold"):
            Projection.load(tmp_path / "map")


def test_corpus_codes_land_on_their_own_points_and_placing_moves_nothing(projection, vae):
    assert torch.allclose(projection.place(projection.codes[:10]), projection.xy[:10], atol=1e-3)
    before = projection.xy.clone()
    placed = projection.place(vae.prior(50, seed=0))
    assert placed.shape == (50, 2) and torch.isfinite(placed).all() and torch.equal(projection.xy, before)
    assert torch.equal(projection.place(vae.prior(50, seed=0)), placed)  # deterministic
    low, high = projection.xy.min(dim=0).values, projection.xy.max(dim=0).values
    assert ((placed >= low - 1e-4) & (placed <= high + 1e-4)).all()


def test_a_layout_fitted_on_a_sample_places_the_rest(vae, corpus):
    sampled = build(vae, source_files(corpus), MapConfig(neighbours=5, regions=2, fit_lines=80, reconstruct=False),
                    progress=False)
    assert sampled.xy.shape == (200, 2) and torch.isfinite(sampled.xy).all()
    assert "recon_f1" not in sampled.fields


def test_recall_of_corpus_lines_and_of_a_paraphrase(projection, vae):
    line = projection.lines[7]
    words = line.split()
    paraphrase = " ".join(words[:-1] + ["moonlight"]) if len(words) > 3 else line + " moonlight"
    found = projection.recall(vae, [line.capitalize(), paraphrase, ""])
    assert found["in corpus"] == [True, False, False]
    assert found["most words shared with"][0] == line and found["words shared"][0] == 1.0
    assert found["most words shared with"][1] == line
    assert found["nearest in the latent space"][0] in projection.lines and -1 <= found["cosine"][0] <= 1
    assert found["nearest in the latent space"][2] == "" and np.isnan(found["cosine"][2])


def test_search_by_word_phrase_and_pattern():
    lines = ["the sea is calm", "a season of mists", "Sea and sky", "by the calm sea", "o wild west wind"]
    search = LineSearch(lines)
    assert search("sea").tolist() == [0, 2, 3]  # whole words, any case: not "season"
    assert search("calm  sea").tolist() == [3]
    assert search("^o ", regex=True).tolist() == [4] and search("sea$", regex=True).tolist() == [3]
    assert search("sea(son)?", regex=True).tolist() == [0, 1, 2, 3]
    assert search("   ").tolist() == [] and search("nightingale").tolist() == []
    assert LineSearch(["İİ by the sea", "a wild west"])("west").tolist() == [1]  # lower-casing lengthens İ
    with pytest.raises(ValueError, match="not a valid regular expression"):
        search("(unclosed", regex=True)


def nearest(points: torch.Tensor, k: int) -> torch.Tensor:
    """The indices of each point's ``k`` nearest other points, ``[N, k]``."""
    distance = torch.cdist(points, points).fill_diagonal_(float("inf"))
    return distance.topk(k, largest=False).indices


def test_the_command_maps_a_file_of_lines(tiny_checkpoint, vae, tmp_path, capsys):
    lines = (POETRY / "valid.txt").read_text().splitlines()[:60]
    (tmp_path / "mine.txt").write_text("\n".join(lines) + "\n\n")
    out = tmp_path / "maps"
    assert main(["--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "mine.txt"), "--out", str(out),
                 "--neighbours", "5", "--regions", "2", "--no-reconstruct"]) == 0
    assert "mapped 60 lines" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [META, TENSORS]
    mapped = Projection.load(out)
    assert mapped.lines == lines and mapped.names["split"] == ["lines"]
    assert mapped.xy.shape == (60, 2) and len(mapped.codes) == 60 and torch.isfinite(mapped.xy).all()
    mu = vae.mu(lines)  # one point per line, at that line's own code
    assert ((mapped.codes - mu).abs() <= (mu.max(0).values - mu.min(0).values) / 254 + 1e-4).all()
    # The layout keeps neighbourhoods: a line's nearest lines on the map are largely its nearest codes
    # (a layout that ignored the codes would share 5 of 59 others, under 9%, by chance).
    k = 5
    shared = [len(set(a) & set(b)) / k for a, b in zip(nearest(mu, k).tolist(), nearest(mapped.xy, k).tolist())]
    assert np.mean(shared) > 0.3


@pytest.mark.parametrize("argv, message", [
    (["--neighbours", "1"], "--neighbours must be at least 2"),
    (["--min-dist", "2"], "--min-dist within"),
])
def test_the_command_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_the_command_reports_missing_data(tiny_checkpoint, tmp_path, capsys):
    assert main(["--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "none.txt")]) == 2
    assert "no lines to map" in capsys.readouterr().err


def test_the_shipped_map_holds_the_whole_corpus():
    shipped = Projection.load(ckpt.SHIPPED)
    assert len(shipped) == 95_000
    counts = dict(zip(shipped.names["split"], np.bincount(shipped.fields["split"]).tolist()))
    assert counts == {"train": 85_000, "valid": 5_000, "test": 5_000}
    # The map's reconstruction field agrees with the model card's test figure (greedy of the mean).
    card = json.loads((ckpt.SHIPPED / "evaluation.json").read_text())["test"]["recon_f1"]
    test = shipped.fields["split"] == shipped.names["split"].index("test")
    assert abs(float(shipped.fields["recon_f1"][test].mean()) - card) < 0.01
    assert len(shipped.region_words) == shipped.settings["regions"] and all(shipped.region_words)


def test_a_large_map_stores_its_approximate_index_and_word_counts(vae, tmp_path, monkeypatch):
    from vae_core import recall

    monkeypatch.setattr(recall, "APPROXIMATE_ABOVE", 50)  # 60 lines count as a large corpus here
    data = tiny_data(tmp_path / "data", n_train=40, n_valid=10, n_test=10)
    built = build(vae, source_files(data), MapConfig(neighbours=5, regions=2, reconstruct=False), progress=False)
    assert built.lists is not None and len(built.lists.assignment) == 60
    built.save(tmp_path / "map")
    stored = (tmp_path / "map" / TENSORS).read_bytes()
    raw = gzip.decompress(stored)
    assert len(stored) >= len(raw) > len(gzip.compress(raw))  # kept uncompressed: it opens sooner
    again = Projection.load(tmp_path / "map")
    assert torch.equal(again.lists.assignment, built.lists.assignment)
    assert again.code_index.lists is again.lists  # opening the map builds no index
    with monkeypatch.context() as patched:
        patched.setattr(recall, "word_counts", None)  # nor counts the words again: they are stored
        found = again.recall(vae, [again.lines[3]])
    assert found["nearest in the latent space"][0] == again.lines[3] and found["in corpus"][0]
    stored, fresh = again.word_index, recall.WordIndex(again.lines)
    assert (stored.weights != fresh.weights).nnz == 0 and list(stored.vocabulary) == list(fresh.vocabulary)
    queries = [again.lines[5], "the night and the sea", again.lines[7].upper()]
    assert [a.tolist() for a in stored.best(queries)] == [b.tolist() for b in fresh.best(queries)]
    tensors = ckpt.read_tensors(tmp_path / "map" / TENSORS)
    tensors["words.words"][0] = 10**6  # a hand-edited map
    ckpt.write_tensors(tmp_path / "map" / TENSORS, tensors)
    with pytest.raises(ckpt.CheckpointError, match="word counts are inconsistent"):
        Projection.load(tmp_path / "map")
    tensors["words.words"][0], tensors["words.counts"][0] = 0, 0  # a word that a line holds no times
    ckpt.write_tensors(tmp_path / "map" / TENSORS, tensors)
    with pytest.raises(ckpt.CheckpointError, match="word counts are inconsistent"):
        Projection.load(tmp_path / "map")
