"""Syllable counts and the VAE conditioned on them."""

import statistics

import pytest
import torch

import vae_core
from vae_core import syllables
from vae_core.evaluate import evaluate, syllable_error

from .conftest import ROOT


def test_lines_are_counted_from_the_dictionary():
    assert syllables.count("i wandered lonely as a cloud") == 8
    assert syllables.count("Shall I compare thee to a summer's day?") == 10
    assert syllables.count("") == 0 and syllables.count("123 -- !!") == 0


def test_unknown_words_are_counted_by_rule():
    assert syllables.count("o'er the hills belov'd") == 5  # neither elision is in the dictionary
    assert [syllables.rule_syllables(w) for w in ("stone", "table", "walked", "wanted", "xyz")] == [1, 2, 1, 2, 1]


def test_the_conditioned_model_records_its_condition(tiny_syllable_vae, data_dir):
    config = tiny_syllable_vae.model.config
    counts = [syllables.count(line) for line in (data_dir / "train.txt").read_text().splitlines()]
    assert tiny_syllable_vae.condition == "syllables"
    assert config.cond_mean == pytest.approx(statistics.mean(counts))
    assert config.cond_std == pytest.approx(statistics.stdev(counts), rel=1e-5)


def test_decoding_takes_requested_syllable_counts(tiny_syllable_vae):
    vae = tiny_syllable_vae
    z = vae.prior(16, seed=0)
    short, long = vae.greedy(z, syllables=3), vae.greedy(z, syllables=14)
    assert len(short) == len(long) == 16 and short != long  # the condition reaches the decoder
    per_row = vae.beam(z[:2], width=2, syllables=[3, 14])
    assert per_row == [vae.beam(z[:1], width=2, syllables=3)[0], vae.beam(z[1:2], width=2, syllables=14)[0]]
    assert len(vae.sample(z, syllables=8, seed=0)) == 16 and len(vae.greedy(z)) == 16  # default: mean count


@torch.no_grad()
def test_the_encoder_sees_the_line_s_own_count(tiny_syllable_vae):
    """The same pieces with another count get another code; a line's code is the one for its own count."""
    vae, line = tiny_syllable_vae, "the sea is calm tonight"
    tokens, lengths = vae.tokenizer.batch(vae.tokenizer.encode([line, line]))
    q = vae.model.posterior(tokens, lengths, torch.tensor([3.0, 14.0]))
    assert (q.mean[0] - q.mean[1]).abs().max() > 1e-3
    own = vae.model.posterior(tokens[:1], lengths[:1], torch.tensor([float(syllables.count(line))]))
    assert torch.allclose(vae.mu([line]), own.mean, atol=1e-6)
    assert not torch.allclose(own.mean[0], q.mean[0], atol=1e-3)  # 5 syllables, not 3


@pytest.mark.parametrize("bad", [-1, 1000, float("nan"), [3, 4, 5], "ten"])
def test_bad_syllable_counts_are_clear_errors(tiny_syllable_vae, bad):
    with pytest.raises(ValueError):
        tiny_syllable_vae.greedy(tiny_syllable_vae.prior(2, seed=0), syllables=bad)


def test_an_unconditioned_model_refuses_syllables(vae):
    with pytest.raises(ValueError, match="not conditioned"):
        vae.greedy(vae.prior(1, seed=0), syllables=8)


def test_the_conditioned_model_is_evaluated(tiny_syllable_vae, data_dir):
    lines = (data_dir / "test.txt").read_text().splitlines()[:20]
    result = evaluate(tiny_syllable_vae.directory, lines, iw_samples=3)
    assert result["n_lines"] == 20 and result["elbo"] == pytest.approx(result["rec"] + result["kl"])
    assert result["iw_nll"] < result["elbo"] + 0.5  # the importance-weighted bound, up to sampling noise
    assert "mi" in result and "active_units" in result


def test_a_conditioned_run_resumes(data_dir, tmp_path):
    from vae_core import checkpoint as ckpt
    from vae_core.train import TrainConfig, train

    from .conftest import TINY

    base = dict(data=str(data_dir), out=str(tmp_path / "run"), model="syllable-vae", max_lines=100,
                **{**TINY, "card_iw_samples": 0})
    train(TrainConfig(epochs=1, **base))
    train(TrainConfig(epochs=2, resume=True, **base))
    assert [r["epoch"] for r in ckpt.read_metrics(tmp_path / "run")] == [1, 2]


def test_the_card_reports_syllable_control(tiny_syllable_vae, tiny_checkpoint, data_dir):
    from vae_core.card import write_card

    lines = (data_dir / "test.txt").read_text().splitlines()
    evaluation = write_card(tiny_syllable_vae.directory, lines, iw_samples=2, unconditioned=tiny_checkpoint)
    control = evaluation["syllables"]
    assert control["n_lines"] == len(lines) and control["unconditioned"] == str(tiny_checkpoint)
    # measured on the test lines' own counts, for this model and for the unconditioned one
    requested = [syllables.count(line) for line in lines]
    assert control["mae"] == pytest.approx(syllable_error(tiny_syllable_vae, requested))
    assert control["mae_unconditioned"] == pytest.approx(syllable_error(vae_core.load(tiny_checkpoint), requested))
    card = (tiny_syllable_vae.directory / "README.md").read_text()
    assert "## Syllable control" in card and "conditioned on syllables" in card


SHIPPED_SYLLABLES = ROOT / "checkpoints" / "poetry-syllables"


def test_the_shipped_syllable_model_follows_the_requested_count():
    import vae_core
    from vae_core import checkpoint as ckpt

    control = ckpt.read_json(SHIPPED_SYLLABLES / "evaluation.json")["syllables"]
    assert control["mae"] < control["mae_unconditioned"]  # recorded on 500 prior codes
    vae = vae_core.load(SHIPPED_SYLLABLES)
    z = vae.prior(40, seed=0)
    counts = {n: [syllables.count(line) for line in vae.beam(z, syllables=n)] for n in (5, 12)}
    assert sum(counts[12]) / 40 - sum(counts[5]) / 40 > 4  # the same codes, longer lines on request
    assert all(line.strip() for line in vae.beam(z, syllables=8))
