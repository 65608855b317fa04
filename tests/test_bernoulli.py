"""The bit-vector latent: its distribution, its gradient estimators, training,
evaluation and the sampler's operations on bits."""

import json
import math
import subprocess
import sys

import pytest
import torch
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import kl_divergence

import vae_core
from vae_core import checkpoint as ckpt
from vae_core.data import read_lines
from vae_core.latent import Bernoulli
from vae_core.model import Baseline, ModelConfig, SentenceVAE
from vae_core.projection import Projection
from vae_core.tokenizer import BOS
from vae_core.train import TrainConfig, train

from .conftest import POETRY, ROOT, TINY

SHIPPED_BITS = ROOT / "checkpoints" / "poetry-bits"


def test_kl_and_log_probs_match_torch_even_when_saturated():
    logits = torch.tensor([[-60.0, -2.0, 0.0, 3.0, 60.0]])
    for prior_p in (0.5, 0.2):
        q = Bernoulli(logits, torch.logit(torch.tensor(prior_p)).item())
        expected = kl_divergence(TorchBernoulli(logits=logits), TorchBernoulli(probs=torch.full_like(logits, prior_p)))
        assert torch.isfinite(q.kl()).all()
        assert torch.allclose(q.kl(), expected, atol=1e-5)
    z = torch.tensor([[[0.0, 1.0, 1.0, 0.0, 1.0]]])
    q = Bernoulli(logits)
    assert torch.allclose(q.log_prob(z), TorchBernoulli(logits=logits).log_prob(z[0]).sum(-1))
    assert torch.allclose(q.log_prior(z), torch.tensor([[5 * torch.log(torch.tensor(0.5))]]))
    assert torch.allclose(q.entropy(), TorchBernoulli(logits=logits).entropy().sum(-1))


def test_straight_through_bits_are_hard_forward_and_carry_gradients():
    logits = torch.randn(64, 8, requires_grad=True)
    z = Bernoulli(logits).straight_through(tau=0.5, generator=torch.Generator().manual_seed(0))
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    (z * torch.arange(8.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    # the relaxed draw is 1 about as often as the bit's probability says
    many = Bernoulli(torch.full((20000, 1), 1.0)).straight_through(generator=torch.Generator().manual_seed(1))
    assert float(many.mean()) == pytest.approx(float(torch.sigmoid(torch.tensor(1.0))), abs=0.02)


def test_score_function_gradient_is_unbiased():
    """The encoder's gradient from the surrogate loss, averaged over many draws (rows of one batch),
    matches the exact gradient of E_q[rec] found by summing over all 2^3 codes."""
    torch.manual_seed(0)
    config = ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=16, nz=3, dropout=0.0, latent="bernoulli")
    model = SentenceVAE(config).eval()  # no dropout: rec depends on the code only
    with torch.no_grad():
        model.z_to_state.weight.mul_(30)  # let the code matter to the decoder
    tokens, lengths = torch.tensor([[BOS, 5, 6, 7, 2]]), torch.tensor([4])
    bias = model.to_posterior.bias

    q = model.posterior(tokens, lengths)
    codes = torch.tensor([[i >> k & 1 for k in range(3)] for i in range(8)], dtype=torch.float32)
    weights = q.log_prob(codes.unsqueeze(0)).exp()[0]  # q(code) for each of the 8 codes
    recs = model.reconstruction(tokens.expand(8, -1), lengths.expand(8), model.code(codes, None)).detach()
    (exact,) = torch.autograd.grad((weights * recs).sum(), bias)
    assert exact.abs().max() > 0.01

    baseline = Baseline()
    baseline.per_piece = float((weights * recs).sum().detach()) / 4
    draws = 20000
    torch.manual_seed(1)
    loss, _ = model.loss((tokens.expand(draws, -1), lengths.expand(draws), None), beta=0.0, estimator="score",
                         baseline=baseline)
    (estimate,) = torch.autograd.grad(loss, bias)
    assert torch.allclose(estimate, exact, atol=0.1 * exact.abs().max())


def test_both_estimators_train(bits_vae, data_dir, tmp_path):
    rows = ckpt.read_metrics(bits_vae.directory)
    assert rows[-1]["train_rec"] < rows[0]["train_rec"] - 5
    # the bits stay away from the prior (validation uses BN's running statistics, which 52 steps of
    # a tiny model have not settled, so the training figure is the one to read here)
    assert rows[-1]["train_kl"] > 0.5
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "gumbel"), model="bernoulli-vae",
                            estimator="gumbel", epochs=2, **{**TINY, "card_iw_samples": 0}))
    rows = ckpt.read_metrics(out)
    assert rows[-1]["train_rec"] < rows[0]["train_rec"]
    assert json.loads((out / "config.json").read_text())["model"]["latent"] == "bernoulli"


def test_codes_are_bits(bits_vae):
    lines = ["the sea is calm tonight", "and all the birds of heaven sang"]
    assert bits_vae.latent == "bernoulli"
    p = bits_vae.mu(lines)
    assert p.shape == (2, 8) and not torch.equal((p[0] >= 0.5), (p[1] >= 0.5))  # two lines, two codes
    z = bits_vae.z(lines, seed=0)
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(z, bits_vae.z(lines, seed=0))
    prior = bits_vae.prior(500, seed=0)
    assert set(prior.unique().tolist()) <= {0.0, 1.0}
    assert float(prior.mean()) == pytest.approx(0.5, abs=0.03)
    # a probability vector decodes as its most likely bits
    bits = (p >= 0.5).float()
    assert bits_vae.greedy(p) == bits_vae.greedy(bits)
    assert bits_vae.beam(bits, width=1) == bits_vae.greedy(bits)


def test_bit_flip_neighbours(bits_vae):
    p = bits_vae.mu(["the sea is calm tonight"])
    bits = (p >= 0.5).float()
    assert torch.equal(bits_vae.neighbours(p, n=4, noise=0.0, seed=0), bits.expand(4, -1))
    assert torch.equal(bits_vae.neighbours(p, n=4, noise=1.0, seed=0), (1 - bits).expand(4, -1))
    flipped = (bits_vae.neighbours(p, n=2000, noise=0.25, seed=0) != bits).float().mean()
    assert float(flipped) == pytest.approx(0.25, abs=0.02)
    with pytest.raises(ValueError, match="flip probability"):
        bits_vae.neighbours(p, noise=1.5)


def test_interpolation_between_probability_vectors(bits_vae):
    p = bits_vae.mu(["the sea is calm tonight", "and all the birds of heaven sang"])
    path = bits_vae.interpolate(p[0], p[1], steps=4)
    assert torch.equal(path[0], p[0]) and torch.equal(path[-1], p[1])
    assert torch.allclose(path[2], (p[0] + p[1]) / 2)
    with pytest.raises(ValueError, match="linear"):
        bits_vae.interpolate(p[0], p[1], method="slerp")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        bits_vae.greedy(torch.full((1, 8), 2.0))


def test_evaluate_cli_reports_the_importance_sampled_perplexity(bits_vae, data_dir):
    result = subprocess.run([sys.executable, "-m", "vae_core.evaluate", "--checkpoint", str(bits_vae.directory),
                             "--data", str(data_dir / "test.txt"), "--json", "--iw-samples", "20"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("elbo", "rec", "kl", "iw_nll", "ppl", "mi", "active_units", "recon_f1"):
        assert key in metrics
    assert metrics["iw_nll"] <= metrics["elbo"] + 0.5
    assert metrics["kl"] <= 8 * math.log(2) + 1e-4  # at most log 2 per bit


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="prior_p in"):
        ModelConfig(latent="bernoulli", prior_p=1.0)
    with pytest.raises(ValueError, match="latent must be"):
        ModelConfig(latent="poisson")
    assert TrainConfig(model="bernoulli-vae").model_config().latent == "bernoulli"


def test_batch_normalised_logits_keep_every_bit_informative():
    model = SentenceVAE(ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, latent="bernoulli",
                                    bn_gamma=2.0)).train()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, 10000, (64, 9), generator=g)
    tokens[:, 0] = BOS
    q = model.posterior(tokens, torch.randint(2, 9, (64,), generator=g))
    assert torch.allclose(q.logits.std(dim=0, unbiased=False), torch.full((4,), 2.0), atol=0.02)
    assert (q.kl().mean(dim=0) > 0.2).all()  # far from the prior on average, whatever the weights


def test_shipped_bit_vector_model():
    """The shipped bit-vector model: its card's metrics, and codes whose bits matter to the lines."""
    vae = vae_core.load(SHIPPED_BITS)
    assert vae.latent == "bernoulli" and vae.nz == 32
    test = json.loads((SHIPPED_BITS / "evaluation.json").read_text())["test"]
    assert test["n_lines"] == 5000 and test["active_units"] >= 16 and test["kl"] > 1.0
    lines = read_lines(POETRY / "test.txt")[:32]
    p = vae.mu(lines)
    own = vae.greedy(p)
    words = " ".join(own).lower().split()
    assert len(words) > 32 * 3
    flipped = vae.greedy(1 - (p >= 0.5).float())  # every bit of every code flipped
    assert sum(a != b for a, b in zip(own, flipped, strict=True)) >= 24
    assert len(Projection.load(SHIPPED_BITS)) == 95_000  # its map holds the whole corpus
