"""The public latent API and its answers to bad input."""

import math

import numpy as np
import pytest
import torch


def test_z_and_mu_shapes(vae):
    lines = ["the sea is calm tonight", "i wandered lonely as a cloud", "o rose thou art sick"]
    assert vae.mu(lines).shape == (3, vae.nz)
    assert vae.z(lines, seed=0).shape == (3, vae.nz)
    assert torch.equal(vae.z(lines, seed=3), vae.z(lines, seed=3))
    assert not torch.equal(vae.z(lines, seed=3), vae.mu(lines))


def test_encoding_is_batched_consistently(vae):
    lines = ["the sea is calm tonight", "a"]
    both = vae.mu(lines)
    assert torch.allclose(both[1], vae.mu(["a"])[0], atol=1e-5)


def test_interpolation_endpoints_equal_the_inputs(vae):
    a, b = vae.prior(2, seed=1)
    for method in ("linear", "slerp"):
        path = vae.interpolate(a, b, steps=7, method=method)
        assert path.shape == (8, vae.nz)
        assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    linear = vae.interpolate(a, b, steps=2)
    assert torch.allclose(linear[1], (a + b) / 2)


def test_slerp_keeps_the_norm_between_the_endpoints(vae):
    a, b = vae.prior(2, seed=2)
    norms = vae.interpolate(a, b, steps=10, method="slerp").norm(dim=1)
    assert norms.min() >= min(a.norm(), b.norm()) - 1e-4
    assert norms.max() <= max(a.norm(), b.norm()) + 1e-4


def test_neighbours(vae):
    z = vae.prior(1, seed=3)
    assert torch.equal(vae.neighbours(z, n=5, noise=0.0), z.expand(5, -1))
    near = vae.neighbours(z, n=2000, noise=0.5, seed=1)
    assert abs(float((near - z).std()) - 0.5) < 0.02
    assert torch.equal(vae.neighbours(z, n=3, noise=0.2, seed=9), vae.neighbours(z, n=3, noise=0.2, seed=9))
    std = torch.full((vae.nz,), 0.1)
    scaled = vae.neighbours(z, n=2000, noise=1.0, seed=1, std=std)
    assert abs(float((scaled - z).std()) - 0.1) < 0.005


def test_prior_is_standard_normal_and_seeded(vae):
    z = vae.prior(5000, seed=0)
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1) < 0.02
    assert torch.equal(vae.prior(3, seed=1), vae.prior(3, seed=1))


def test_empty_inputs_give_empty_results(vae):
    assert vae.mu([]).shape == (0, vae.nz)
    assert vae.greedy(torch.empty(0, vae.nz)) == []
    assert vae.beam(torch.empty(0, vae.nz)) == []
    assert vae.prior(0).shape == (0, vae.nz)


@pytest.mark.parametrize("lines", [[""], ["   \t "], ["fine", "\n"], ["\x00"], ["\u200b"], ["\x1b"], ["\ufeff"],
                                   ["fine", " \u200b\x1b\ufeff "]])
def test_empty_lines_are_refused(vae, lines):
    """Emptiness is decided after the tokenizer's clean-up: control and zero-width characters alone are empty."""
    with pytest.raises(ValueError, match=f"line {len(lines) - 1} is empty"):
        vae.mu(lines)


@pytest.mark.parametrize("lines", [None, 5])
def test_lines_that_are_not_strings_are_refused(vae, lines):
    with pytest.raises(ValueError, match="lines must be a string or a list of strings"):
        vae.mu(lines)


def test_odd_and_huge_lines_encode(vae):
    lines = ["🌞🌙✨", "日本語の詩を書く", "\x00\x07 bell \x1b", "word " * 5000]
    with pytest.warns(UserWarning, match="truncated"):
        z = vae.mu(lines)
    assert z.shape == (4, vae.nz) and torch.isfinite(z).all()
    assert len(vae.greedy(z)) == 4


def test_a_single_string_is_one_line(vae):
    assert vae.mu("the sea").shape == (1, vae.nz)


@pytest.mark.parametrize("z", [torch.zeros(3), torch.zeros(2, 3), torch.zeros(2, 8, 1), [[math.nan] * 8]])
def test_bad_z_is_refused(vae, z):
    with pytest.raises(ValueError, match="z "):
        vae.greedy(z)


@pytest.mark.parametrize("z", [None, {"a": 1}, "abc", torch.zeros(1, 8, dtype=torch.complex64)])
def test_z_that_is_not_a_real_array_is_refused(vae, z):
    with pytest.raises(ValueError, match=r"z must be a real \[N, 8\] tensor or array"):
        vae.greedy(z)


@pytest.mark.parametrize("std, message", [(torch.ones(2, 8), "std must be one scale per dimension"),
                                          (torch.ones(3), "std must have shape"),
                                          (-torch.ones(8), "std must be non-negative")])
def test_bad_std_has_its_own_message(vae, std, message):
    with pytest.raises(ValueError, match=message):
        vae.neighbours(vae.prior(1, seed=0)[0], n=3, std=std)


def test_tiny_and_zero_temperatures_decode_greedily(vae):
    z = vae.prior(4, seed=5)
    assert vae.sample(z, temperature=1e-45, seed=0) == vae.greedy(z)
    assert vae.sample(z, temperature=0, top_p=0.5, seed=0) == vae.greedy(z)


def test_beam_width_is_bounded(vae):
    with pytest.raises(ValueError, match="width must be an integer from 1 to 100"):
        vae.beam(vae.prior(1, seed=0), width=101)


@pytest.mark.parametrize("seed", [2**64, -1, True, 1.0])
def test_bad_seeds_are_refused(vae, seed):
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 18446744073709551615"):
        vae.sample(vae.prior(1, seed=0), seed=seed)


def test_numpy_integers_count_as_integers(vae):
    z = vae.prior(2, seed=0)
    assert vae.sample(z, seed=np.int64(3)) == vae.sample(z, seed=3)
    assert vae.beam(z, width=np.int32(2)) == vae.beam(z, width=2)
    assert torch.equal(vae.prior(np.int64(3), seed=np.uint64(2**64 - 1)), vae.prior(3, seed=2**64 - 1))


def test_a_single_code_decodes_as_one_row(vae):
    assert len(vae.greedy(torch.zeros(vae.nz))) == 1


@pytest.mark.parametrize("call", [
    lambda v, z: v.sample(z, temperature=-1),
    lambda v, z: v.sample(z, top_p=1.5),
    lambda v, z: v.sample(z, top_k=0),
    lambda v, z: v.beam(z, width=0),
    lambda v, z: v.greedy(z, max_len=0),
    lambda v, z: v.greedy(z, max_len=10**9),
    lambda v, z: v.decode(z, method="nucleus"),
    lambda v, z: v.decode(z, method="beam", temperature=0.5),
    lambda v, z: v.interpolate(z, z, steps=0),
    lambda v, z: v.interpolate(z, z, method="cubic"),
    lambda v, z: v.neighbours(z, noise=-1),
    lambda v, z: v.neighbours(z, n=-2),
    lambda v, z: v.prior(10**12),
    lambda v, z: v.z(["a"], seed="x"),
])
def test_bad_options_are_clear_value_errors(vae, call):
    with pytest.raises(ValueError):
        call(vae, vae.prior(1, seed=0))


def test_decode_dispatches_with_options(vae):
    z = vae.prior(3, seed=1)
    assert vae.decode(z, "beam", width=2) == vae.beam(z, width=2)
    assert vae.decode(z, "sample", temperature=0.7, seed=4) == vae.sample(z, temperature=0.7, seed=4)


def test_language_model_has_no_latent(tiny_lm):
    import vae_core

    lm = vae_core.load(tiny_lm)
    assert lm.nz == 0
    with pytest.raises(ValueError, match="language model"):
        lm.mu(["the sea"])
    lines = lm.sample(lm.prior(4, seed=0), seed=0)
    assert len(lines) == 4
