"""The latent map: UMAP layout stored without pickle, stable placement of new codes, recall."""

import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core.projection import Projection, build, corpus_sample

from .conftest import POETRY


@pytest.fixture(scope="module")
def projection(vae):
    lines = corpus_sample((POETRY / "valid.txt").read_text().splitlines(), 120, seed=0)
    return build(vae, lines, neighbours=5)


def test_build_lays_out_every_line(projection):
    assert projection.xy.shape == (120, 2) and projection.mu.shape[0] == 120
    assert torch.isfinite(projection.xy).all()


def test_save_and_load_round_trip_without_pickle(projection, tmp_path):
    projection.save(tmp_path)
    again = Projection.load(tmp_path)
    assert again.lines == projection.lines
    assert torch.equal(again.xy, projection.xy) and torch.equal(again.mu, projection.mu)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projection.json", "projection.safetensors"]


def test_missing_or_inconsistent_map_is_a_checkpoint_error(projection, tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="missing"):
        Projection.load(tmp_path)
    projection.save(tmp_path)
    ckpt.write_json(tmp_path / "projection.json", {"lines": projection.lines[:-1]})
    with pytest.raises(ckpt.CheckpointError, match="inconsistent"):
        Projection.load(tmp_path)


def test_corpus_codes_land_on_their_own_points(projection):
    placed = projection.place(projection.mu[:10])
    assert torch.allclose(placed, projection.xy[:10], atol=1e-3)


def test_placing_new_points_never_moves_the_corpus(projection, vae):
    before = projection.xy.clone()
    placed = projection.place(vae.prior(50, seed=0))
    assert placed.shape == (50, 2) and torch.isfinite(placed).all()
    assert torch.equal(projection.xy, before)
    assert torch.equal(projection.place(vae.prior(50, seed=0)), placed)  # deterministic
    low, high = projection.xy.min(dim=0).values, projection.xy.max(dim=0).values
    assert ((placed >= low - 1e-4) & (placed <= high + 1e-4)).all()  # inside the corpus's hull box


def test_recall_finds_a_corpus_line_itself(projection, vae):
    nearest, distance = projection.recall(vae, projection.lines[:5] + ["", "the sea"])
    assert nearest[:5] == projection.lines[:5] and max(distance[:5]) < 1e-3
    assert nearest[5] == "" and distance[5] != distance[5]  # an empty line has no code: NaN
    assert nearest[6] in projection.lines and distance[6] >= 0


def test_corpus_sample_is_distinct_and_seeded():
    lines = ["a", "b", "a", "c", "d"]
    assert sorted(corpus_sample(lines, 10)) == ["a", "b", "c", "d"]
    assert corpus_sample(lines, 2, seed=1) == corpus_sample(lines, 2, seed=1)
