"""Directions through the latent space: the moves along them, what they find, and bad input."""

import math

import numpy as np
import pytest
import torch

import vae_core
from vae_core import directions as D
from vae_core.checkpoint import SHIPPED
from vae_core.data import read_lines
from vae_core.syllables import count, words

from .conftest import POETRY


def unit(i: int, nz: int = 8) -> torch.Tensor:
    return torch.eye(nz)[i]


def synthetic(n: int = 2000, nz: int = 8, seed: int = 0) -> D.Corpus:
    """Random codes whose properties are planted: ``size`` grows with dimension 5, ``mark`` is "!" for
    codes high on dimension 1, and the lines with "night" are shifted along dimension 3."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randn(n, nz, generator=g)
    night = torch.rand(n, generator=g) < 0.2
    codes[night, 3] += 2.5
    size = 3 * codes[:, 5] + 0.1 * torch.randn(n, generator=g)
    mark = (codes[:, 1] > 0.5).long().numpy()
    lines = [("the night is long" if is_night else "the day is long") for is_night in night.tolist()]
    fields = {"size": size.numpy(), "mark": mark, "noise": torch.randn(n, generator=g).numpy()}
    return D.Corpus(lines, codes, fields, {"mark": [".", "!"]})


@pytest.fixture(autouse=True)
def seeded():
    """Every test draws the same random codes."""
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def corpus(shipped) -> D.Corpus:
    return D.Corpus.encode(shipped, read_lines(POETRY / "train.txt")[:3000])


@pytest.fixture(scope="module")
def test_codes(shipped) -> torch.Tensor:
    return shipped.mu(read_lines(POETRY / "test.txt")[:100])


# ---- the moves -----------------------------------------------------------------------------
def test_analogy_of_equal_codes_is_c():
    a, c = torch.randn(8), torch.randn(8)
    assert torch.allclose(D.analogy(a, a, c), c.unsqueeze(0))
    assert torch.allclose(D.analogy(a, a, c, keep_norm=True), c.unsqueeze(0), atol=1e-6)
    b = a + 3 * unit(2)
    moved = D.analogy(a, b, c)
    assert torch.allclose(moved, (c + 3 * unit(2)).unsqueeze(0))
    kept = D.analogy(a, b, c, keep_norm=True)
    assert math.isclose(float(kept.norm()), float(c.norm()), rel_tol=1e-5)
    assert float(torch.cosine_similarity(kept, moved)) > 0.999  # the same direction, c's norm
    a_rows, b_rows = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.allclose(D.analogy(a_rows, b_rows, c), c + b_rows - a_rows)  # row by row, c broadcast


def test_traverse_sets_one_dimension():
    z = torch.randn(8)
    assert torch.equal(D.traverse(z, 3, [float(z[3])]), z.unsqueeze(0))
    path = D.traverse(z, 3, [-2.0, 0.0, 2.0])
    assert path.shape == (3, 8)
    assert path[:, 3].tolist() == [-2.0, 0.0, 2.0]
    others = [i for i in range(8) if i != 3]
    assert torch.equal(path[:, others], z[others].expand(3, -1))


def test_dimension_spread_is_each_dimensions_std():
    codes = torch.randn(5000, 4) * torch.tensor([0.0, 0.5, 1.0, 2.0])
    assert torch.allclose(D.dimension_spread(codes), torch.tensor([0.0, 0.5, 1.0, 2.0]), atol=0.05)


def test_circle_starts_at_a_passes_b_and_comes_back():
    a, b = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    for steps in (2, 5, 24):
        path = D.circle(a, b, steps)
        assert path.shape == (steps, 8)
        assert torch.equal(path[0], a)
        assert any(torch.equal(row, b) for row in path)
    path = D.circle(a, b, 24)
    u = a / a.norm()
    v = (b - (b @ u) * u) / (b - (b @ u) * u).norm()
    assert torch.allclose(path, (path @ u).unsqueeze(1) * u + (path @ v).unsqueeze(1) * v, atol=1e-5)  # planar
    angle = torch.atan2(path @ v, path @ u)
    angle = torch.where(angle < -1e-4, angle + 2 * math.pi, angle)  # from 0 (z_a) towards 2 pi
    assert abs(float(angle[0])) < 1e-4
    assert (angle.diff() > 0).all()  # once round, never back
    closing = 2 * math.pi - angle[-1]  # the last step back to z_a, as long as the far arc's other steps
    assert torch.allclose(closing, angle[-1] - angle[-2], atol=1e-4)
    norms = path.norm(dim=1)
    assert norms.min() >= min(a.norm(), b.norm()) - 1e-4 and norms.max() <= max(a.norm(), b.norm()) + 1e-4


def test_steer_moves_in_spreads_along_the_unit_vector():
    direction = D.Direction(unit(4), spread=0.5, score=1.0, score_name="AUC")
    z = torch.randn(8)
    path = D.steer(z, direction, [0, 1, -2])
    assert path.shape == (3, 8)
    assert torch.equal(path[0], z)
    assert torch.allclose(path[1] - z, 0.5 * unit(4))
    assert torch.allclose(path[2] - z, -1.0 * unit(4))


# ---- finding directions --------------------------------------------------------------------
@pytest.mark.parametrize("probe", [False, True])
def test_direction_separates_planted_clusters_and_not_random_ones(probe):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 3 * unit(2)
    found = D.direction(a, b, probe=probe)
    assert found.score_name == "AUC" and found.score > 0.95
    assert float(found.vector @ unit(2)) > 0.9  # from a towards b
    assert math.isclose(float(found.vector.norm()), 1.0, rel_tol=1e-5)
    assert math.isclose(found.spread, float((torch.cat([a, b]) @ found.vector).std()), rel_tol=1e-5)
    corpus = torch.randn(1000, 8, generator=g) * 2
    assert D.direction(a, b, probe=probe, corpus_codes=corpus).spread > 1.5
    same = torch.randn(600, 8, generator=g)
    chance = D.direction(same[:300], same[300:], probe=probe)
    assert 0.4 < chance.score < 0.6


def test_direction_for_a_numeric_property_recovers_its_dimension():
    corpus = synthetic()
    found = D.direction_for(corpus, "size")
    assert found.score_name == "R^2" and found.score > 0.95
    assert float(found.vector @ unit(5)) > 0.9
    assert 0.8 < found.spread < 1.2  # the codes' std along dimension 5
    sampled = D.direction_for(corpus, "size", max_lines=500, seed=3)
    assert float(sampled.vector @ unit(5)) > 0.9
    assert D.direction_for(corpus, "noise").score < 0.05  # nothing to find: no held-out R^2


@pytest.mark.parametrize("probe", [False, True])
def test_direction_for_a_category_and_a_word(probe):
    corpus = synthetic()
    mark = D.direction_for(corpus, "mark", "!", probe=probe)
    assert mark.score > 0.95 and float(mark.vector @ unit(1)) > 0.8
    night = D.direction_for(corpus, "word", "Night", probe=probe)
    assert night.score > 0.9 and float(night.vector @ unit(3)) > 0.9
    assert "night" in night.name


def test_dimension_correlations_find_the_planted_dimensions():
    matrix, props = D.dimension_correlations(synthetic())
    assert matrix.shape == (8, 3) and props == ["size", "mark", "noise"]
    size, mark, noise = (matrix[:, props.index(p)] for p in ("size", "mark", "noise"))
    assert size[5] > 0.99 and np.abs(np.delete(size, 5)).max() < 0.1
    assert mark[1] > 0.6 and (mark >= 0).all() and np.delete(mark, 1).max() < 0.1
    assert np.abs(noise).max() < 0.1


# ---- the shipped model ---------------------------------------------------------------------
def mean_per_amount(sampler, codes, direction, measure) -> list[float]:
    """The mean ``measure`` of the lines greedily decoded from every code steered by -2, 0 and +2."""
    amounts = [-2.0, 0.0, 2.0]
    steered = torch.cat([D.steer(z, direction, amounts) for z in codes])  # rows: code by code, amount by amount
    lines = np.array(sampler.greedy(steered)).reshape(len(codes), len(amounts))
    return [float(np.mean([measure(line) for line in lines[:, j]])) for j in range(len(amounts))]


def test_steering_along_length_and_syllables_changes_decoded_lines(shipped, corpus, test_codes):
    low, same, high = mean_per_amount(shipped, test_codes, D.direction_for(corpus, "words"), lambda s: len(words(s)))
    assert low < same < high, (low, same, high)
    low, same, high = mean_per_amount(shipped, test_codes, D.direction_for(corpus, "syllables"), count)
    assert low < same < high, (low, same, high)


def test_probe_table_beats_the_baselines_on_length(corpus):
    table = {row["property"]: row for row in D.probe_table(corpus)}
    assert set(table) == set(corpus.fields)
    length = table["words"]
    assert length["measure"] == "R^2" and abs(length["baseline"]) < 0.05
    assert length["probe"] > length["baseline"] + 0.1
    assert table["pieces"]["length_only"] > 0.99  # the piece count predicts itself
    punct = table["final_punct"]
    assert punct["measure"] == "accuracy" and punct["probe"] > punct["baseline"] + 0.2


def test_dimension_effects_decode_the_whole_grid(shipped, test_codes):
    z = test_codes[0]
    effects = D.dimension_effects(shipped, z, [-3.0, 3.0], dims=[0, 7])
    assert effects.base == shipped.greedy(z)[0]
    assert len(effects.lines) == 2 and all(len(row) == 2 for row in effects.lines)
    for i, d in enumerate(effects.dims):
        assert effects.lines[i] == shipped.greedy(D.traverse(z, d, effects.values))
    moved = [any(line != effects.base for line in row) for row in effects.lines]
    assert ((effects.change > 0) == moved).all() and (effects.change <= 1).all()  # a change only where a line changed
    unmoved = D.dimension_effects(shipped, z, [float(z[4])], dims=[4])
    assert unmoved.lines == [[unmoved.base]] and unmoved.change.tolist() == [0.0]
    every = D.dimension_effects(shipped, z, [-3.0, 3.0])
    assert every.dims == list(range(shipped.nz)) and every.change.max() > 0
    centre, scale = torch.linspace(-0.5, 0.5, shipped.nz), torch.linspace(0.5, 1.5, shipped.nz)
    spreads = D.dimension_effects(shipped, z, [-2.0, 1.0], dims=[3], centre=centre, scale=scale)
    moved = [float(centre[3] + v * scale[3]) for v in (-2.0, 1.0)]  # values in spreads from the centre
    assert spreads.lines[0] == shipped.greedy(D.traverse(z, 3, moved)) and spreads.values == [-2.0, 1.0]


def test_bit_codes_work_per_bit():
    bits = vae_core.load(SHIPPED.parent / "poetry-bits")
    p = bits.mu(["the sea is calm tonight"])[0]
    effects = D.dimension_effects(bits, p, [0.0, 1.0], dims=[0, 1, 2])
    for i, d in enumerate(effects.dims):
        assert effects.lines[i] == bits.greedy(D.traverse(p, d, [0.0, 1.0]))
        assert effects.lines[i][int(p[d] >= 0.5)] == effects.base  # setting a bit to its likelier value moves nothing
    assert torch.equal(D.traverse(p, 2, [1.0])[0, 2], torch.tensor(1.0))
    with pytest.raises(ValueError, match="probabilities"):
        D.dimension_effects(bits, p, [2.0])


# ---- bad input -----------------------------------------------------------------------------
def bad_inputs():
    corpus, z, direction = synthetic(200), torch.zeros(8) + 1, D.Direction(unit(0), 1.0, 1.0, "AUC")
    a = torch.randn(10, 8)
    return [
        (lambda: D.direction(torch.empty(0, 8), a), "one or more codes"),
        (lambda: D.direction(a[:1], a), "at least 2 codes"),
        (lambda: D.direction(a, torch.randn(10, 5)), "width 5, expected 8"),
        (lambda: D.direction(a, a), "same mean code"),
        (lambda: D.direction(a, a + 1, corpus_codes=a[:1]), "do not spread"),
        (lambda: D.direction(a, a * float("nan")), "NaN"),
        (lambda: D.direction_for(corpus, "colour"), "unknown property 'colour'"),
        (lambda: D.direction_for(corpus, "word", "dawn"), "no line of the corpus contains"),
        (lambda: D.direction_for(corpus, "word", "the night"), "one word"),
        (lambda: D.direction_for(corpus, "word"), "one word"),
        (lambda: D.direction_for(corpus, "mark", "?"), "not a category of 'mark'"),
        (lambda: D.direction_for(corpus, "size", "big"), "takes no value"),
        (lambda: D.direction_for(corpus, "size", max_lines=3), "max_lines must be"),
        (lambda: D.direction_for(D.Corpus(["a"] * 5, torch.randn(5, 8), {"size": np.ones(5)}), "size"),
         "at least 10 lines"),
        (lambda: D.direction_for(D.Corpus(["a"] * 20, torch.randn(20, 8), {"size": np.ones(20)}), "size"),
         "same value on every line"),
        (lambda: D.direction_for(D.Corpus(["a"] * 20, torch.randn(20, 8), {"size": np.ones(3)}), "size"),
         "one value per code"),
        (lambda: D.steer(z, direction, [1.0, float("inf")]), "finite"),
        (lambda: D.steer(z, direction, []), "at least one"),
        (lambda: D.steer(torch.zeros(5), direction, [1.0]), "width 5, expected 8"),
        (lambda: D.steer(torch.zeros(2, 8), direction, [1.0]), "one code"),
        (lambda: D.analogy(a[:2], a[:3], z), "same number of rows"),
        (lambda: D.traverse(z, 8, [0.0]), "dim must be an integer from 0 to 7"),
        (lambda: D.traverse(z, -1, [0.0]), "dim must be"),
        (lambda: D.traverse(z, 1, [float("nan")]), "finite"),
        (lambda: D.circle(z, -z, 8), "one line through the origin"),
        (lambda: D.circle(torch.zeros(8), z, 8), "non-zero"),
        (lambda: D.circle(z, unit(1), 1), "steps must be an integer from 2 to 100000"),
        (lambda: D.circle(z, torch.zeros(6), 8), "width 6"),
        (lambda: D.dimension_spread(z), "at least 2 codes"),
        (lambda: D.probe_table(D.Corpus(corpus.lines, corpus.codes, {"size": corpus.fields["size"]})), "pieces"),
        (lambda: D.dimension_correlations(D.Corpus(corpus.lines, corpus.codes, {})), "no properties"),
        (lambda: D.direction("codes", a), "real codes"),
    ]


@pytest.mark.parametrize("case", range(len(bad_inputs())))
def test_bad_input_is_a_value_error(case):
    call, message = bad_inputs()[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_dimension_effects_bad_input(shipped):
    z = torch.zeros(shipped.nz)
    with pytest.raises(ValueError, match="dim must be"):
        D.dimension_effects(shipped, z, [0.0], dims=[shipped.nz])
    with pytest.raises(ValueError, match="at least one dimension"):
        D.dimension_effects(shipped, z, [0.0], dims=[])
    with pytest.raises(ValueError, match="one code"):
        D.dimension_effects(shipped, torch.zeros(2, shipped.nz), [0.0])
    with pytest.raises(ValueError, match="finite"):
        D.dimension_effects(shipped, z, [float("nan")])


def test_steer_counts_move_the_asked_count_in_corpus_spreads():
    lines = [f"line {i}" for i in range(10)]
    corpus = D.Corpus(lines, torch.zeros(10, 4), {"syllables": np.array([6, 10] * 5)})  # spread 2
    assert D.steer_counts(8, corpus, [-2.0, -0.5, 0.0, 1.0, 60.0]) == [4, 7, 8, 10, 100]
    assert D.steer_counts(1, corpus, [-3.0]) == [1]  # never below one syllable
    for bad in (-1, 101, 2.5, True):
        with pytest.raises(ValueError, match="count"):
            D.steer_counts(bad, corpus, [1.0])
    with pytest.raises(ValueError, match="amounts"):
        D.steer_counts(8, corpus, [float("nan")])


def test_the_syllable_conditioned_model_gains_syllables_along_its_direction():
    """Asked for the count moved with the code, the syllable-conditioned model's decodings along the
    syllable direction gain syllables, as the plain model's do (see the test above)."""
    sampler = vae_core.load(SHIPPED.parent / "poetry-syllables")
    corpus = D.Corpus.encode(sampler, read_lines(POETRY / "train.txt")[:3000])
    lines = read_lines(POETRY / "test.txt")[:50]
    amounts = [-2.0, 0.0, 2.0]
    steered = torch.cat([D.steer(z, D.direction_for(corpus, "syllables"), amounts) for z in sampler.mu(lines)])
    asked = [c for line in lines for c in D.steer_counts(count(line), corpus, amounts)]
    decoded = np.array(sampler.greedy(steered, syllables=asked)).reshape(len(lines), len(amounts))
    low, same, high = (float(np.mean([count(line) for line in decoded[:, j]])) for j in range(len(amounts)))
    assert low + 1 < same < high - 1, (low, same, high)
