"""The VRNN: its terms against their definitions, generation, reconstruction, checkpoints and the CLIs."""

import json
import math
import re
import shutil
import subprocess
import sys

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import vae_core
from vae_core import checkpoint as ckpt
from vae_core.data import Corpus, read_lines
from vae_core.evaluate import elbo_terms, iw_nll, unigram_f1
from vae_core.sampler import SequenceSampler
from vae_core.tokenizer import BOS, EOS
from vae_core.train import TrainConfig, train
from vae_core.train_config import parse_args
from vae_core.vrnn import VRNN, VRNNConfig, gaussian_kl

from .conftest import POETRY, ROOT

TINY_VRNN = dict(model="vrnn", emb_dim=32, dec_hidden=64, nz=8, batch_size=32, dropout=0.0, threads=1)
SHIPPED_VRNN = ROOT / "checkpoints" / "poetry-vrnn"
WORD = re.compile(r"[a-z]+")


@pytest.fixture(scope="module")
def tiny_vrnn(tmp_path_factory, data_dir):
    """A tiny VRNN trained for a few epochs, with its model card."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny-vrnn"
    return train(TrainConfig(data=str(data_dir), out=str(out), epochs=4, card_iw_samples=3, **TINY_VRNN))


@pytest.fixture(scope="module")
def vrnn(tiny_vrnn) -> SequenceSampler:
    return vae_core.load(tiny_vrnn)


@pytest.fixture(scope="module")
def valid_corpus(vrnn):
    lines = (POETRY / "valid.txt").read_text().splitlines()[:40]
    return Corpus.from_lines(lines, vrnn.tokenizer)


def untrained(seed=0) -> VRNN:
    torch.manual_seed(seed)
    return VRNN(VRNNConfig(emb_dim=16, hidden=24, nz=4, dropout=0.0)).eval()


def rows(*lines: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[BOS] pieces [EOS]`` rows padded with EOS, and their lengths."""
    lengths = torch.tensor([len(line) + 1 for line in lines])
    tokens = torch.full((len(lines), int(lengths.max()) + 1), EOS)
    tokens[:, 0] = BOS
    for i, line in enumerate(lines):
        tokens[i, 1 : len(line) + 1] = torch.tensor(line)
    return tokens, lengths


# ---- training and checkpoints ----------------------------------------------------------
def test_training_lowers_the_loss(tiny_vrnn):
    metrics = ckpt.read_metrics(tiny_vrnn)
    assert len(metrics) == 4
    assert metrics[-1]["train_rec"] < metrics[0]["train_rec"] - 5
    assert metrics[-1]["valid_elbo"] < metrics[0]["valid_elbo"]
    assert {"valid_rec", "valid_kl", "valid_elbo"} <= set(metrics[-1]) and "valid_mi" not in metrics[-1]
    config = json.loads((tiny_vrnn / "config.json").read_text())
    assert config["kind"] == "vrnn" and config["model"]["hidden"] == 64
    assert config["valid"]["elbo"] == pytest.approx(min(r["valid_elbo"] for r in metrics))


def test_resume_continues_like_a_run_that_never_stopped(data_dir, tmp_path):
    base = dict(data=str(data_dir), max_lines=100, card_iw_samples=0, **TINY_VRNN)
    train(TrainConfig(out=str(tmp_path / "run"), epochs=1, **base))
    train(TrainConfig(out=str(tmp_path / "run"), epochs=2, resume=True, **base))
    train(TrainConfig(out=str(tmp_path / "straight"), epochs=2, **base))
    timing = {"seconds", "lines_per_s"}
    resumed, straight = (ckpt.read_metrics(tmp_path / name) for name in ("run", "straight"))
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in timing} for r in straight]


def test_save_load_round_trip_is_bit_exact(vrnn, tmp_path):
    out = tmp_path / "saved"
    ckpt.save_model(out, vrnn.model, {"kind": "vrnn"})
    ckpt.copy_tokenizer(vrnn.directory / "tokenizer", out)
    again = vae_core.load(out)
    assert isinstance(again, SequenceSampler)
    for (name, a), (_, b) in zip(vrnn.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert again.sample(8, seed=0) == vrnn.sample(8, seed=0)
    assert again.reconstruct(["the sea is calm tonight"]) == vrnn.reconstruct(["the sea is calm tonight"])


@pytest.fixture
def copy(tiny_vrnn, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_vrnn, target)
    return target


def test_missing_or_corrupt_weights_are_checkpoint_errors(copy):
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(vae_core.CheckpointError, match="corrupt weights"):
        vae_core.load(copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(vae_core.CheckpointError, match=r"model\.safetensors"):
        vae_core.load(copy)


def test_config_that_does_not_match_the_weights(copy):
    config = json.loads((copy / "config.json").read_text())
    config["model"]["hidden"] += 1
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(vae_core.CheckpointError, match="shape"):
        vae_core.load(copy)
    config["model"]["enc_hidden"] = 32  # a sentence VAE's option
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(vae_core.CheckpointError, match="enc_hidden"):
        vae_core.load(copy)


def test_model_card(tiny_vrnn):
    card = (tiny_vrnn / "README.md").read_text()
    for heading in ("VRNN", "## Settings", "## Test metrics", "## Samples (temperature 0.8)",
                    "## Teacher-forced reconstructions"):
        assert heading in card
    assert "Homotopies" not in card
    samples = card.split("## Samples (temperature 0.8)")[1].split("##")[0]
    assert samples.count("\n- ") == 20


def test_sentence_vae_options_are_refused(capsys):
    for option in (["--aggressive"], ["--pretrain-epochs", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["--model", "vrnn", *option])
        assert exit_info.value.code == 2
        assert "for --model vrnn" in capsys.readouterr().err


def kl_per_step(sampler: SequenceSampler, corpus: Corpus) -> float:
    """The mean KL of a step (nats, summed over its dimensions) over ``corpus``'s lines, with one seeded
    trajectory of latents from q."""
    with torch.no_grad():
        terms = sampler.model.eval().terms(corpus.tokens, corpus.lengths, generator=torch.Generator().manual_seed(0))
    return float(terms.kl.sum() / corpus.lengths.sum())


def test_the_kl_floor_holds_per_step(data_dir, tmp_path, vrnn, valid_corpus):
    """A tiny VRNN trained with a floor of 1 nat a step keeps at least about that much on held-out lines
    (the last epoch's weights: the floor costs ELBO, so the best epoch by ELBO would be an early one)."""
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "floored"), epochs=8, lr=3e-3, free_bits=1.0,
                            keep="last", card_iw_samples=0, **TINY_VRNN))
    floored = kl_per_step(vae_core.load(out), valid_corpus)
    assert floored >= 0.9  # at least the floor, up to the spread between lines
    assert kl_per_step(vrnn, valid_corpus) < floored / 10  # without the floor the latents carry almost nothing
    rows = ckpt.read_metrics(out)
    steps = sum(len(line) + 1 for line in vrnn.tokenizer.encode(read_lines(data_dir / "train.txt")))
    assert rows[-1]["train_kl"] * 400 / steps >= 0.9  # the training batches' KL sits at the floor too


@pytest.mark.parametrize("call, message", [
    (lambda v: v.sample(2, fixed=2), "fixed latents need the line"),
    (lambda v: v.sample(2, line="the sea", fixed=-1), "fixed must be"),
    (lambda v: v.sample(2, line="the sea", fixed=99), "fixed must be"),
    (lambda v: v.sample(2, line="   ", fixed=2), "empty"),
    (lambda v: v.reconstruct(["the sea"], latents="mean"), "latents must be one of"),
])
def test_bad_latent_options_are_clear_value_errors(vrnn, call, message):
    with pytest.raises(ValueError, match=message):
        call(vrnn)


# ---- the terms -------------------------------------------------------------------------
def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p, lv_q, lv_p = (torch.randn(6, 5, generator=g) for _ in range(4))
    expected = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_p, lv_p), expected, atol=1e-5)
    assert torch.equal(gaussian_kl(mu_q, lv_q, mu_q, lv_q), torch.zeros(6))


def test_kl_is_zero_when_posterior_equals_prior():
    model = untrained()
    tokens, lengths = rows([5, 6, 7], [8, 9])
    with torch.no_grad():
        for net in (model.prior, model.encoder):  # both give the same constant Gaussian
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.linspace(-1, 1, net[-1].bias.numel()))
        assert torch.equal(model.terms(tokens, lengths).kl, torch.zeros(2))
        model.encoder[-1].bias.add_(0.3)
        assert (model.terms(tokens, lengths).kl > 0).all()


def test_padding_does_not_change_a_lines_terms():
    model = untrained()
    alone = model.terms(*rows([5, 6, 7]), sample=False)
    tokens, lengths = rows([5, 6, 7], [8, 9, 10, 11, 12, 13])
    tokens[0, 5:] = torch.tensor([40, 41, 42])  # whatever sits in the padding is never read
    batched = model.terms(tokens, lengths, sample=False)
    for a, b in zip(alone, batched):
        assert torch.allclose(a[0], b[0], atol=1e-5)
    assert torch.equal(model.reconstruct(*rows([5, 6, 7]))[0], model.reconstruct(tokens, lengths)[0, :4])


def test_iw_nll_with_one_sample_is_the_elbo_in_expectation(vrnn, valid_corpus):
    g = torch.Generator().manual_seed(1)
    one = torch.stack([iw_nll(vrnn.model, valid_corpus, samples=1, generator=g).mean() for _ in range(20)]).mean()
    elbo = sum(elbo_terms(vrnn.model, valid_corpus, generator=g)["elbo"] for _ in range(20)) / 20
    assert float(one) == pytest.approx(elbo, rel=0.01)


def test_iw_nll_is_tighter_than_the_elbo(vrnn, valid_corpus):
    g = torch.Generator().manual_seed(2)
    elbo = sum(elbo_terms(vrnn.model, valid_corpus, generator=g)["elbo"] for _ in range(5)) / 5
    nll = float(iw_nll(vrnn.model, valid_corpus, samples=30, generator=g).mean())
    assert 0 < nll <= elbo + 0.05


# ---- generation and reconstruction -----------------------------------------------------
def test_seeded_generation_reproduces(vrnn):
    assert vrnn.sample(8, seed=3) == vrnn.sample(8, seed=3)
    assert vrnn.sample(8, seed=3) != vrnn.sample(8, seed=4)


def test_low_temperature_approaches_the_argmax_path(vrnn):
    greedy = vrnn.sample(32, temperature=0, seed=2)
    assert vrnn.sample(32, temperature=1e-4, seed=2) == greedy
    hot = vrnn.sample(32, temperature=5.0, seed=2)
    assert sum(a != b for a, b in zip(hot, greedy)) > 16


def test_tiny_positive_temperature_is_the_argmax_path(vrnn):
    """However small, a positive temperature samples from a finite softmax, like temperature 0 (as Sampler.sample)."""
    assert vrnn.sample(16, temperature=1e-45, seed=2) == vrnn.sample(16, temperature=0, seed=2)


def test_generation_stops_at_eos_and_respects_max_len(vrnn):
    ids = vrnn.model.generate(64, 6, generator=torch.Generator().manual_seed(0))
    assert ids.shape[0] == 64 and ids.shape[1] <= 6
    ended = (ids == EOS).cumsum(dim=1) > 0
    assert (ids[ended] == EOS).all()  # nothing after a row's end of line
    long = vrnn.model.generate(64, 200, generator=torch.Generator().manual_seed(0))
    assert (long == EOS).any(dim=1).all() and long.shape[1] < 200
    assert (long[:, -1] == EOS).all() and not (long[:, -2] == EOS).all()  # stops when the last row ends
    assert all(len(line.split()) <= 2 for line in vrnn.sample(16, seed=0, max_len=2))  # a piece is part of a word


def test_reconstruct_gives_one_line_per_input(vrnn):
    lines = ["the sea is calm tonight", "a", "and all the birds of heaven sang"]
    assert len(vrnn.reconstruct(lines)) == 3
    assert vrnn.reconstruct("the sea") == vrnn.reconstruct(["the sea"])
    assert vrnn.reconstruct([]) == [] and vrnn.sample(0) == []


@pytest.mark.parametrize("call", [
    lambda v: v.reconstruct([""]),
    lambda v: v.reconstruct(["fine", "  \n"]),
    lambda v: v.reconstruct(["fine", 3]),
    lambda v: v.sample(-1),
    lambda v: v.sample(2.5),
    lambda v: v.sample(2, temperature=-1),
    lambda v: v.sample(2, temperature=math.nan),
    lambda v: v.sample(2, max_len=0),
    lambda v: v.sample(2, max_len=10**9),
    lambda v: v.sample(2, seed="x"),
    lambda v: v.sample(2, seed=2**64),
    lambda v: v.reconstruct(["\u200b\x00"]),
    lambda v: v.reconstruct(None),
])
def test_bad_input_is_a_clear_value_error(vrnn, call):
    with pytest.raises(ValueError):
        call(vrnn)


@pytest.mark.parametrize("name", ["mu", "z", "posterior", "encode", "prior", "interpolate", "neighbours",
                                  "greedy", "beam", "decode"])
def test_sentence_code_operations_refuse(vrnn, name):
    with pytest.raises(ValueError, match="latent per step and no sentence code"):
        getattr(vrnn, name)(torch.zeros(1, vrnn.nz))


def test_latent_kinds(vrnn, shipped):
    assert vrnn.latent == "sequence" and vrnn.nz == 8 and vrnn.condition == "" and vrnn.max_len == 48
    assert shipped.latent == "gaussian"


# ---- evaluation ------------------------------------------------------------------------
def test_evaluate_cli_prints_the_vrnn_metrics(tiny_vrnn, data_dir):
    result = subprocess.run([sys.executable, "-m", "vae_core.evaluate", "--checkpoint", str(tiny_vrnn), "--data",
                             str(data_dir / "test.txt"), "--json", "--iw-samples", "5", "--max-lines", "30"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("n_lines", "elbo", "rec", "kl", "iw_nll", "ppl", "iw_samples", "recon_f1"):
        assert key in metrics
    assert "mi" not in metrics and "active_units" not in metrics
    assert metrics["n_lines"] == 30 and metrics["iw_samples"] == 5
    assert metrics["elbo"] == pytest.approx(metrics["rec"] + metrics["kl"])
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["iw_nll"] * 30 / metrics["n_pieces"]))


# ---- the shipped VRNN ------------------------------------------------------------------
def test_shipped_vrnn_generates_verse():
    vrnn = vae_core.load(SHIPPED_VRNN)
    vocabulary = set(WORD.findall((POETRY / "train.txt").read_text(encoding="utf-8")))
    lines = vrnn.sample(8, temperature=0.8, seed=0)
    words = [w for line in lines for w in WORD.findall(line.lower())]
    assert len(lines) == 8 and all(line.strip() for line in lines)
    assert sum(w in vocabulary for w in words) / len(words) >= 0.85  # mostly real words
    test = json.loads((SHIPPED_VRNN / "evaluation.json").read_text())["test"]
    assert test["n_lines"] == 5000
    assert {"elbo", "rec", "kl", "iw_nll", "ppl", "recon_f1"} <= set(test)
    assert 0 < test["iw_nll"] <= test["elbo"] + 0.05
    baseline = json.loads((SHIPPED_VRNN / "evaluation.json").read_text())["baseline"]
    assert test["kl"] >= 5 and test["iw_nll"] <= 1.02 * baseline["nll"]  # latents in use, within 2% of the LM


def test_the_shipped_vrnns_latents_carry_its_lines():
    """Teacher-forced along 200 test lines, the pieces' own latents bring back far more of each line's
    words than the prior's latents do."""
    vrnn = vae_core.load(SHIPPED_VRNN)
    lines = (POETRY / "test.txt").read_text(encoding="utf-8").splitlines()[:200]

    def f1(decoded):
        return sum(unigram_f1(a, b) for a, b in zip(lines, decoded)) / len(lines)

    own, prior = f1(vrnn.reconstruct(lines)), f1(vrnn.reconstruct(lines, latents="prior"))
    assert own > prior + 0.04, (own, prior)  # 0.144 against 0.082 when it shipped
