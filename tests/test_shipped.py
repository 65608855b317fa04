"""The shipped poetry checkpoint: it loads, it decodes verse, its latent space is in use."""

import json
import re
import subprocess
import sys

import pytest

from vae_core import checkpoint as ckpt
from vae_core.data import read_lines
from vae_core.evaluate import active_units, evaluate, unigram_f1

from .conftest import POETRY, ROOT

WORD = re.compile(r"[a-z]+")


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


def test_latent_space_is_in_use(shipped, test_lines):
    q = shipped.posterior(test_lines[:1000])
    assert active_units(q.mean) >= 16
    assert q.kl().sum(dim=1).mean() >= 8


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


def test_recorded_test_metrics():
    """The card's figures on the whole test split meet the bar: no posterior collapse, likelihood within 3% of
    the LM's (the bound from fitted proposals, tighter than the encoder's), reconstructions that keep over a
    third of a line's words."""
    evaluation = json.loads((ckpt.SHIPPED / "evaluation.json").read_text())
    test, baseline = evaluation["test"], evaluation["baseline"]
    assert test["n_lines"] == 5000 and test["iw_samples"] == 100 and test["fit_steps"] > 0
    assert test["kl"] >= 8 and test["active_units"] >= 16
    assert test["iw_nll"] <= 1.03 * baseline["nll"]
    assert test["iw_nll"] < test["iw_nll_encoder"]
    assert test["recon_f1"] >= 0.35


def test_the_recorded_figures_are_reproduced_on_part_of_the_test_split(test_lines):
    """The evaluator on the first 200 test lines agrees with the card's whole-split figures."""
    part = evaluate(ckpt.SHIPPED, test_lines[:200], iw_samples=10)
    card = json.loads((ckpt.SHIPPED / "evaluation.json").read_text())["test"]
    assert part["iw_nll"] < part["iw_nll_encoder"]
    assert part["kl"] == pytest.approx(card["kl"], rel=0.1)
    assert part["recon_f1"] == pytest.approx(card["recon_f1"], abs=0.05)


def test_demo_runs_on_the_shipped_model():
    result = subprocess.run([sys.executable, "-m", "vae_core.demo"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "== homotopy" in result.stdout and "== from the prior" in result.stdout
