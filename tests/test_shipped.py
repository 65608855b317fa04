"""The shipped checkpoints: they load, decode verse, and measure as they did when they shipped."""

import math
import re
import subprocess
import sys

import pytest

from vae_core import checkpoint as ckpt
from vae_core.data import read_lines
from vae_core.evaluate import evaluate, unigram_f1

from .conftest import POETRY, ROOT

WORD = re.compile(r"[a-z]+")
SLICE = 200  # the first test lines every checkpoint is measured on
IW_SAMPLES = 10  # importance samples per line (the cards use 100 on the whole split)
ENCODER_ONLY = {"poetry-syllables"}  # proposals not fitted: its fitted bound would cost a minute more on two cores
# What each checkpoint measures on SLICE with IW_SAMPLES and seed 0. With fixed seeds the figures repeat
# bit for bit; another seed moves a bound by up to about 0.15 nats and MI by up to about 0.7.
REFERENCE = {
    "poetry": {"iw_nll": 56.7116, "iw_nll_encoder": 58.4796, "mi": 5.5406, "recon_f1": 0.4651},
    "poetry-syllables": {"iw_nll": 57.2678, "mi": 5.6120, "recon_f1": 0.2445},  # the encoder's q as it is
    "poetry-bits": {"iw_nll": 62.6849, "mi": 4.5440, "recon_f1": 0.1456},  # bits: the encoder's q, no fitting
    "poetry-vrnn": {"iw_nll": 55.9318, "recon_f1": 0.1437},  # no code for a line: no MI
}
TOLERANCE = {"iw_nll": 0.05, "iw_nll_encoder": 0.05, "mi": 0.05, "recon_f1": 0.005}


@pytest.fixture(scope="module")
def vocabulary():
    """Every word of the training corpus."""
    return set(WORD.findall((POETRY / "train.txt").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def test_lines():
    return read_lines(POETRY / "test.txt")


def test_ships_as_plain_files():
    files = {p.relative_to(ckpt.SHIPPED).as_posix() for p in ckpt.SHIPPED.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "evaluation.json", "README.md",
            "tokenizer/en/en.wiki.bpe.vs10000.model"} <= files
    assert not any(f.startswith("resume/") for f in files)


def test_prior_samples_read_as_verse(shipped, vocabulary):
    # 200 codes: among 40, one line of made-up Latin moves the share of real words by 3 points
    lines = shipped.beam(shipped.prior(200, seed=0), width=4)
    words = [w for line in lines for w in WORD.findall(line.lower())]
    assert len(set(lines)) >= 150  # varied, not one line over and over
    assert all(1 <= len(line.split()) <= 25 for line in lines)
    assert sum(w in vocabulary for w in words) / len(words) >= 0.97  # real words, not noise
    sampled = shipped.sample(shipped.prior(40, seed=1), temperature=0.8, seed=1)
    words = [w for line in sampled for w in WORD.findall(line.lower())]
    assert sum(w in vocabulary for w in words) / len(words) >= 0.9


def test_reconstructions_recall_their_line(shipped, test_lines):
    lines = test_lines[:200]
    decoded = shipped.greedy(shipped.mu(lines))
    f1 = sum(unigram_f1(a, b) for a, b in zip(lines, decoded, strict=True)) / len(lines)
    assert f1 >= 0.2
    shuffled = sum(unigram_f1(a, b) for a, b in zip(lines, decoded[1:] + decoded[:1], strict=True)) / len(lines)
    assert f1 > shuffled + 0.08  # the line itself, not generic verse


def test_homotopy_moves_from_one_line_to_the_other(shipped):
    a, b = "the sea is calm tonight", "and all the birds of heaven sang"
    mu = shipped.mu([a, b])
    path = shipped.beam(shipped.interpolate(mu[0], mu[1], steps=10), width=4)
    assert len(path) == 11 and len(set(path)) >= 3
    assert unigram_f1(a, path[0]) > unigram_f1(a, path[-1])
    assert unigram_f1(b, path[-1]) > unigram_f1(b, path[0])


def test_neighbours_stay_near_at_small_noise(shipped):
    mu = shipped.mu(["the sea is calm tonight"])
    near = shipped.greedy(shipped.neighbours(mu, n=16, noise=0.05, seed=0))
    far = shipped.greedy(shipped.neighbours(mu, n=16, noise=2.0, seed=0))
    base = shipped.greedy(mu)[0]
    assert sum(unigram_f1(base, line) for line in near) > sum(unigram_f1(base, line) for line in far)


@pytest.fixture(scope="module")
def measured(test_lines):
    """``evaluate`` of a shipped checkpoint on SLICE, run once per checkpoint."""
    results = {}

    def measure(name: str) -> dict:
        if name not in results:
            fitting = {"fit_steps": 0} if name in ENCODER_ONLY else {}
            results[name] = evaluate(ROOT / "checkpoints" / name, test_lines[:SLICE], iw_samples=IW_SAMPLES, seed=0,
                                     **fitting)
        return results[name]

    return measure


@pytest.mark.parametrize("name", list(REFERENCE))
def test_each_checkpoint_measures_as_recorded(measured, name):
    """The likelihood bounds (importance samples from proposals fitted to each line, and from the
    encoder's q as it is; one of them where the other does not apply or is too slow), MI and
    reconstruction F1 on the first 200 test lines with 10 importance samples a line, against the
    figures recorded for the checkpoint: a change to the weights, the tokenizer, decoding or the
    evaluator shows here."""
    found = measured(name)
    off = {key: (round(found[key], 4), value) for key, value in REFERENCE[name].items()
           if abs(found[key] - value) > TOLERANCE[key]}
    assert not off, f"measured, recorded: {off}"


def test_the_code_tells_lines_apart_and_fitted_proposals_tighten_the_bound(measured, test_lines):
    """The poetry model's own claims, on the same lines: its code carries about all a batch allows,
    the bound from fitted proposals is tighter than the encoder's, and both are close to the language
    model's likelihood (a model with no code)."""
    found = measured("poetry")
    # I(x; z) over a batch of N lines is at most about log N, reached when their codes do not overlap.
    assert found["mi"] > math.log(SLICE) - 1
    assert found["iw_nll"] < found["iw_nll_encoder"] - 1
    lm = evaluate(ROOT / "baselines" / "poetry-lm", test_lines[:SLICE])
    # 10 samples a line: the card's 100 give tighter bounds (1.2% and 2.6% over the LM on the test split)
    assert found["iw_nll"] <= 1.05 * lm["nll"] and found["iw_nll_encoder"] <= 1.07 * lm["nll"]


def test_demo_runs_on_the_shipped_model():
    result = subprocess.run([sys.executable, "-m", "vae_core.demo"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "== homotopy" in result.stdout and "== from the prior" in result.stdout
