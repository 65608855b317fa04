"""Regions of the map: deterministic k-means clusters named by their c-TF-IDF words."""

import numpy as np
import pytest

from vae_core import regions

from .conftest import POETRY


def test_clusters_are_found_and_reproducible():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    points = np.repeat(centres, 50, axis=0) + rng.standard_normal((150, 2))
    labels = regions.cluster(points, 3, seed=0)
    assert labels.shape == (150,) and set(labels.tolist()) == {0, 1, 2}
    assert all(len(set(labels[i : i + 50].tolist())) == 1 for i in (0, 50, 100))  # one cluster per blob
    assert (regions.cluster(points, 3, seed=0) == labels).all()
    assert len(set(regions.cluster(rng.standard_normal((200, 8)), 4).tolist())) == 4  # codes [N, nz] too


def test_a_planted_lantern_cluster_is_named_lantern():
    verse = (POETRY / "valid.txt").read_text(encoding="utf-8").splitlines()[:600]
    adjectives = ["old", "red", "dim", "pale", "iron", "brass"]
    places = ["oak", "barn", "inn", "stone", "hall", "church", "gate", "pier", "mill", "shore"]
    planted = [f"the {adjectives[i % 6]} lantern by the {places[i % 10]}" for i in range(30)]
    labels = np.r_[np.arange(600) % 5, np.full(30, 5)]
    named = regions.label(verse + planted, labels, top=3)
    assert len(named) == 6 and all(len(words) == 3 for words in named)
    assert named[5][0][0] == "lantern"
    assert all(word not in ("the", "by") and len(word) >= 3 for words in named for word, _ in words)
    assert all(a[1] >= b[1] for words in named for a, b in zip(words, words[1:]))


def test_c_tf_idf_scores():
    lines = ["lantern lantern moon", "moon sea", "sea sea sea"]
    named = regions.label(lines, [0, 0, 1], top=5)
    # class 0: lantern 2, moon 2, sea 1 of 5 words; class 1: sea 3 of 3; A = 8 / 2 words per class
    lantern_or_moon, sea = pytest.approx(2 / 5 * np.log1p(4 / 2)), pytest.approx(1 / 5 * np.log1p(4 / 4))
    assert named[0] == [("lantern", lantern_or_moon), ("moon", lantern_or_moon), ("sea", sea)]
    assert named[1] == [("sea", pytest.approx(np.log1p(4 / 4)))]
    assert regions.label(["o thou", "the"], [0, 2]) == [[], [], []]


@pytest.mark.parametrize("call, message", [
    (lambda: regions.cluster(np.zeros((5, 2)), 0), "k must"),
    (lambda: regions.cluster(np.zeros((5, 2)), 6), "k must"),
    (lambda: regions.cluster(np.zeros(5), 2), "shape"),
    (lambda: regions.cluster(np.full((5, 2), np.nan), 2), "NaN"),
    (lambda: regions.label(["a line"], [0, 1]), "one cluster number per line"),
    (lambda: regions.label(["a line"], [-1]), "non-negative"),
    (lambda: regions.label(["a line"], [0], top=0), "top"),
])
def test_bad_input_is_a_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
