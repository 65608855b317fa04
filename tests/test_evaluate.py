"""The evaluator's metrics against their definitions."""

import json
import math
import subprocess
import sys

import pytest
import torch

from vae_core.data import Corpus, read_lines
from vae_core.evaluate import active_units, elbo_terms, evaluate, fit_proposal, iw_nll, main, mutual_info, unigram_f1
from vae_core.latent import Gaussian

from .conftest import ROOT


def test_unigram_f1():
    assert unigram_f1("The sea, the sea!", "the sea the sea") == 1.0
    assert unigram_f1("the sea", "a cloud") == 0.0
    assert unigram_f1("the dark sea", "the sea") == pytest.approx(0.8)
    assert unigram_f1("", "anything") == 0.0


def test_active_units_counts_varying_dimensions():
    mu = torch.zeros(100, 4)
    mu[:, 0] = torch.linspace(-1, 1, 100)  # variance ~0.34
    mu[:, 1] = torch.linspace(-0.05, 0.05, 100)  # variance ~0.0009
    assert active_units(mu) == 1


def test_mutual_info_is_zero_for_identical_posteriors_and_positive_for_separated_ones():
    g = torch.Generator().manual_seed(0)
    same = mutual_info(Gaussian(torch.zeros(8192, 4), torch.zeros(8192, 4)), generator=g)
    assert abs(same) < 0.05  # only sampling noise
    apart = mutual_info(Gaussian(torch.randn(256, 4, generator=g) * 5, torch.full((256, 4), -4.0)), generator=g)
    assert apart > 3.0
    assert apart <= math.log(256) + 0.1  # about log(batch size) at most, up to sampling noise


def test_iw_nll_is_tighter_than_the_elbo(vae):
    lines = (ROOT / "data/poetry/valid.txt").read_text().splitlines()[:40]
    corpus = Corpus.from_lines(lines, vae.tokenizer)
    g = torch.Generator().manual_seed(0)
    elbo = elbo_terms(vae.model, corpus, generator=g)["elbo"]
    nll = iw_nll(vae.model, corpus, samples=50, generator=g).mean()
    assert nll <= elbo + 0.05


def test_iw_nll_with_one_sample_is_the_elbo_in_expectation(vae):
    lines = (ROOT / "data/poetry/valid.txt").read_text().splitlines()[:40]
    corpus = Corpus.from_lines(lines, vae.tokenizer)
    g = torch.Generator().manual_seed(1)
    one = torch.stack([iw_nll(vae.model, corpus, samples=1, generator=g).mean() for _ in range(20)]).mean()
    elbo = elbo_terms(vae.model, corpus, generator=g)["elbo"]
    assert float(one) == pytest.approx(elbo, rel=0.01)


def mean_elbo(model, q, tokens, lengths, samples: int = 200) -> float:
    """The lines' mean ELBO under q, from ``samples`` posterior draws per line."""
    g = torch.Generator().manual_seed(2)
    z = q.sample(samples, generator=g)
    rep = torch.arange(len(tokens)).repeat_interleave(samples)
    rec = model.reconstruction(tokens[rep], lengths[rep], z.reshape(-1, z.size(-1))).view(-1, samples).mean(1)
    return float((rec + q.kl().sum(-1)).mean())


@torch.no_grad()
def test_fitting_the_proposal_raises_the_elbo_and_leaves_the_model_alone(vae):
    lines = (ROOT / "data/poetry/valid.txt").read_text().splitlines()[:40]
    tokens, lengths, _ = Corpus.from_lines(lines, vae.tokenizer).batch(torch.arange(40))
    before = {k: v.clone() for k, v in vae.model.state_dict().items()}
    q = vae.model.posterior(tokens, lengths)
    fitted = fit_proposal(vae.model, q, tokens, lengths, None, steps=30, generator=torch.Generator().manual_seed(0))
    assert mean_elbo(vae.model, fitted, tokens, lengths) < mean_elbo(vae.model, q, tokens, lengths)
    assert not fitted.mu.requires_grad and not torch.equal(fitted.mu, q.mu)
    assert all(torch.equal(before[k], v) for k, v in vae.model.state_dict().items())
    assert all(p.grad is None for p in vae.model.parameters())
    assert fit_proposal(vae.model, q, tokens, lengths, None, steps=0) is q


def test_a_fitted_proposal_gives_a_tighter_bound(vae):
    lines = (ROOT / "data/poetry/valid.txt").read_text().splitlines()[:40]
    corpus = Corpus.from_lines(lines, vae.tokenizer)
    as_is = iw_nll(vae.model, corpus, samples=20, generator=torch.Generator().manual_seed(0)).mean()
    fitted = iw_nll(vae.model, corpus, samples=20, fit_steps=30, generator=torch.Generator().manual_seed(0)).mean()
    assert fitted < as_is


def test_a_bit_vector_posterior_is_not_fitted(bits_vae):
    tokens, lengths = bits_vae.tokenizer.batch(bits_vae.tokenizer.encode(["the sea", "a cloud"]))
    q = bits_vae.model.posterior(tokens, lengths)
    assert fit_proposal(bits_vae.model, q, tokens, lengths, None, steps=5) is q
    metrics = evaluate(bits_vae.directory, ["the sea", "a cloud"], iw_samples=2)
    assert metrics["fit_steps"] == 0 and "iw_nll_encoder" not in metrics


def run_evaluate(*args):
    result = subprocess.run([sys.executable, "-m", "vae_core.evaluate", *map(str, args)], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    return result


def test_cli_prints_one_json_object(tiny_checkpoint, data_dir):
    result = run_evaluate("--checkpoint", tiny_checkpoint, "--data", data_dir / "test.txt", "--json",
                          "--iw-samples", 5, "--max-lines", 30)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("n_lines", "elbo", "rec", "kl", "iw_nll", "ppl", "mi", "active_units", "nz", "recon_f1"):
        assert key in metrics
    assert metrics["n_lines"] == 30 and metrics["nz"] == 8 and metrics["fit_steps"] == 30
    # both proposals bound the same -log p(x): neither is looser than the one-sample ELBO, up to noise
    assert max(metrics["iw_nll"], metrics["iw_nll_encoder"]) <= metrics["elbo"] + 0.5
    assert metrics["elbo"] == pytest.approx(metrics["rec"] + metrics["kl"])
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["iw_nll"] * 30 / metrics["n_pieces"]))


def test_cli_on_a_language_model(tiny_lm, data_dir):
    result = run_evaluate("--checkpoint", tiny_lm, "--data", data_dir / "test.txt", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) >= {"nll", "ppl"} and "kl" not in metrics
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["nll"] * metrics["n_lines"] / metrics["n_pieces"]))


def test_cli_errors_are_messages(tmp_path, tiny_checkpoint):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    one = tmp_path / "one.txt"
    one.write_text("the sea\n")
    for args, message in [
        (("--checkpoint", tmp_path / "none", "--data", one), "not found"),
        (("--checkpoint", tiny_checkpoint, "--data", empty), "no lines"),
        (("--checkpoint", tiny_checkpoint, "--data", tmp_path / "missing.txt"), "not found"),
    ]:
        result = run_evaluate(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert run_evaluate("--checkpoint", tiny_checkpoint, "--data", empty, "--iw-samples", 0).returncode == 2
    negative = run_evaluate("--checkpoint", tiny_checkpoint, "--data", one, "--fit-steps", "-1")
    assert negative.returncode == 2 and "must be a non-negative integer" in negative.stderr


def test_lines_of_only_control_characters_are_skipped_like_blank_ones(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("the sea\n\x00\n \u200b\x1b \n\ufeff\n\nhigh tide\n", encoding="utf-8")
    assert read_lines(path) == ["the sea", "high tide"]


def test_evaluate_refuses_lines_that_are_empty_after_cleaning(tiny_checkpoint):
    with pytest.raises(ValueError, match="line 1 is empty"):
        evaluate(tiny_checkpoint, ["the sea", "\u200b"], iw_samples=1)


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--batch-size", "-3"), ("--max-lines", "-1"),
                                           ("--max-lines", "0"), ("--iw-samples", "0")])
def test_cli_counts_must_be_positive(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path / "lines.txt"), option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}: must be a positive integer" in capsys.readouterr().err
