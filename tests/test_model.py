"""The model's pieces against their definitions."""

import dataclasses
import math

import pytest
import torch

from vae_core.latent import Gaussian, log_normal
from vae_core.model import Dropout, ModelConfig, SentenceVAE
from vae_core.tokenizer import BOS

SMALL = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, dropout=0.0)


def batch(n=5, length=7, vocab=10000, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, vocab, (n, length + 2), generator=g)
    tokens[:, 0] = BOS
    lengths = torch.randint(2, length + 2, (n,), generator=g)
    return tokens, lengths


@pytest.mark.parametrize("z_skip, z_gate", [(False, False), (True, False), (True, True)])
def test_step_by_step_decoding_matches_teacher_forcing(z_skip, z_gate):
    torch.manual_seed(0)
    model = SentenceVAE(dataclasses.replace(SMALL, z_skip=z_skip, z_gate=z_gate)).eval()
    if z_skip:
        torch.nn.init.normal_(model.z_to_out.weight)  # it starts at zero, which would test nothing
    if z_gate:
        torch.nn.init.normal_(model.z_gate.weight)
    tokens, lengths = batch()
    z = torch.randn(5, 4)
    with torch.no_grad():
        forced = model.reconstruction(tokens, lengths, z)
        state, total = None, torch.zeros(5)
        for t in range(tokens.size(1) - 1):
            log_probs, state = model.step(tokens[:, t], z, state)
            picked = log_probs.gather(1, tokens[:, t + 1 : t + 2])[:, 0]
            total -= torch.where(t < lengths, picked, torch.zeros(5))
    assert torch.allclose(forced, total, atol=1e-4)


def test_log_probs_are_a_distribution_over_all_pieces():
    model = SentenceVAE(SMALL).eval()
    with torch.no_grad():
        log_probs, _ = model.step(torch.tensor([BOS, BOS]), torch.randn(2, 4), None)
    assert log_probs.shape == (2, 10000)
    assert torch.allclose(log_probs.exp().sum(dim=1), torch.ones(2), atol=1e-4)


def test_piece_order_puts_frequent_pieces_in_the_head():
    model = SentenceVAE(SMALL)
    counts = torch.zeros(10000)
    counts[[42, 7, 9000]] = torch.tensor([5.0, 50.0, 500.0])
    model.set_piece_order(counts)
    assert model.rank_of[[9000, 7, 42]].tolist() == [0, 1, 2]
    assert sorted(model.rank_of.tolist()) == list(range(10000))


def test_language_model_has_no_encoder_and_scores_lines():
    lm = SentenceVAE(ModelConfig(emb_dim=16, dec_hidden=24, nz=0)).eval()
    assert lm.is_lm and not hasattr(lm, "encoder")
    tokens, lengths = batch()
    with torch.no_grad():
        nll = lm.reconstruction(tokens, lengths, None)
    assert nll.shape == (5,) and (nll > 0).all()


def test_bn_posterior_means_have_the_fixed_scale():
    model = SentenceVAE(ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, bn_gamma=0.7)).train()
    tokens, lengths = batch(n=64)
    mu = model.posterior(tokens, lengths).mean
    assert torch.allclose(mu.std(dim=0, unbiased=False), torch.full((4,), 0.7), atol=0.02)  # up to BN eps


def test_matched_prior_codes_spread_like_the_prior():
    """With ``match_prior`` every posterior has variance 1 - gamma^2, so over a batch the codes have the
    prior's unit variance in every dimension; the encoder outputs only means."""
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, bn_gamma=0.8,
                                    match_prior=True)).train()
    assert model.to_posterior.out_features == 4
    tokens, lengths = batch(n=64)
    q = model.posterior(tokens, lengths)
    assert torch.allclose(q.std, torch.full((64, 4), 0.6))
    spread = q.mean.var(dim=0, unbiased=False) + q.std.pow(2).mean(dim=0)
    assert torch.allclose(spread, torch.ones(4), atol=0.03)
    codes = q.sample(200, generator=torch.Generator().manual_seed(0)).reshape(-1, 4)
    assert torch.allclose(codes.var(dim=0), torch.ones(4), atol=0.05)


def test_a_spread_head_starts_as_the_matched_prior_and_sets_each_line_s_variances():
    """A zero spread head gives the matched prior's variance; trained, it moves each line's variances and
    never its means. ``fit_weights`` gives a model without the head a zero one, and drops it for a model
    that has none."""
    torch.manual_seed(0)
    matched = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, bn_gamma=0.8, match_prior=True)
    plain = SentenceVAE(matched).eval()
    model = SentenceVAE(dataclasses.replace(matched, spread=True)).eval()
    model.load_state_dict(model.fit_weights(plain.state_dict()))
    tokens, lengths = batch(n=8)
    with torch.no_grad():
        q, before = model.posterior(tokens, lengths), plain.posterior(tokens, lengths)
        assert torch.equal(q.mean, before.mean) and torch.allclose(q.std, torch.full((8, 4), 0.6))
        torch.nn.init.normal_(model.to_spread.weight)
        moved = model.posterior(tokens, lengths)
    assert torch.equal(moved.mean, before.mean)
    assert moved.std.std(dim=0).min() > 1e-3  # the lines' variances now differ
    assert not any(k.startswith("to_spread") for k in plain.fit_weights(model.state_dict()))
    with pytest.raises(ValueError, match="spread adjusts the matched prior's variances"):
        ModelConfig(nz=4, spread=True)


@pytest.mark.parametrize("options", [dict(bn_gamma=0.0), dict(bn_gamma=1.0), dict(bn_gamma=0.5, latent="bernoulli")])
def test_matched_prior_needs_a_gaussian_bn_scale_below_one(options):
    with pytest.raises(ValueError, match="match_prior needs a Gaussian latent and bn_gamma in"):
        ModelConfig(nz=4, match_prior=True, **options)


def test_word_dropout_changes_training_loss_only():
    config = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, dropout=0.0, word_dropout=0.9)
    model = SentenceVAE(config)
    plain = SentenceVAE(dataclasses.replace(config, word_dropout=0.0)).eval()
    plain.load_state_dict(model.state_dict())
    tokens, lengths = batch()
    z = torch.randn(5, 4)
    with torch.no_grad():
        expected = plain.reconstruction(tokens, lengths, z)
        assert torch.equal(model.eval().reconstruction(tokens, lengths, z), expected)
        torch.manual_seed(0)
        assert not torch.allclose(model.train().reconstruction(tokens, lengths, z), expected)


def test_one_direction_encoder_reads_each_line_to_its_end_only():
    """The padded run gives the same posterior as a packed one, and padding cannot change it."""
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, dropout=0.0,
                                    bidirectional=False)).eval()
    tokens, lengths = batch(n=8)
    with torch.no_grad():
        q = model.posterior(tokens, lengths)
        packed = torch.nn.utils.rnn.pack_padded_sequence(model.embed(tokens[:, 1:]), lengths, batch_first=True,
                                                         enforce_sorted=False)
        _, (h, _) = model.encoder(packed)
        assert torch.allclose(q.mean, model.to_posterior(h[0]).chunk(2, dim=-1)[0], atol=1e-6)
        padded = torch.cat([tokens, torch.randint(3, 10000, (8, 5))], dim=1)
        assert torch.allclose(model.posterior(padded, lengths).mean, q.mean, atol=1e-6)


def test_dropout_zeroes_a_share_p_and_keeps_the_expectation():
    drop = Dropout(0.3)
    x = torch.full((200, 500), 2.0, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(2.0 / (1 - 77 / 256)))  # p is rounded to 1/256
    assert abs(y.mean().item() - 2.0) < 0.02
    y.sum().backward()
    assert torch.equal(x.grad, (y / 2.0))  # the gradient passes through the same mask and scale
    assert drop.eval()(x) is x
    assert torch.equal(Dropout(0.999)(x), torch.zeros_like(x))  # p rounds to 1: all dropped, no division by 0


def test_gaussian_helpers():
    mu, logvar = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    q = Gaussian(mu, logvar)
    assert torch.allclose(q.kl(), torch.tensor([[0.0, 0.5 * (1 + 4 - math.log(4) - 1)]]))
    z = q.sample(samples=20000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 20000, 2)
    assert torch.allclose(z[0].std(dim=0), torch.tensor([1.0, 2.0]), atol=0.05)
    expected = -0.5 * (2 * math.log(2 * math.pi))
    assert torch.allclose(log_normal(torch.zeros(2), torch.zeros(2), torch.zeros(2)), torch.tensor(expected))


@pytest.mark.parametrize("before, after, new", [({}, {"z_skip": True}, "z_to_out"),
                                               ({"z_skip": True}, {"z_skip": True, "z_gate": True}, "z_gate")])
def test_a_new_skip_or_gate_starts_as_the_model_without_it(before, after, new):
    """A zero-initialised skip adds nothing and a zero gate passes the skip unchanged, so ``--init`` can
    add either to a trained model."""
    torch.manual_seed(0)
    old = SentenceVAE(dataclasses.replace(SMALL, **before)).eval()
    if old.z_to_out is not None:
        torch.nn.init.normal_(old.z_to_out.weight)  # a trained skip, for the gate to pass on
    model = SentenceVAE(dataclasses.replace(SMALL, **after)).eval()
    missing, unexpected = model.load_state_dict(old.state_dict(), strict=False)
    assert sorted(missing) == [f"{new}.bias", f"{new}.weight"] and not unexpected
    tokens, lengths = batch()
    z = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.equal(model.reconstruction(tokens, lengths, z), old.reconstruction(tokens, lengths, z))
        torch.nn.init.normal_(getattr(model, new).weight, std=0.1)
        assert not torch.allclose(model.reconstruction(tokens, lengths, z), old.reconstruction(tokens, lengths, z))


def test_a_z_gate_scales_each_unit_s_skip_between_0_and_2_step_by_step():
    torch.manual_seed(0)
    gated = SentenceVAE(dataclasses.replace(SMALL, z_skip=True, z_gate=True)).eval()
    torch.nn.init.normal_(gated.z_to_out.weight)
    torch.nn.init.normal_(gated.z_gate.weight, std=0.1)
    out, z = torch.randn(5, 7, SMALL.dec_hidden), torch.randn(5, 4)
    with torch.no_grad():
        share = (gated.skip(out, z) - out) / gated.z_to_out(z).unsqueeze(1)
    assert share.min() > 0 and share.max() < 2 and share.std(dim=1).min() > 0.01  # differs along the line


def test_a_z_gate_needs_the_skip():
    with pytest.raises(ValueError, match="z_skip"):
        dataclasses.replace(SMALL, z_gate=True)


def test_bag_of_words_scores_a_line_s_pieces_in_any_order():
    torch.manual_seed(0)
    model = SentenceVAE(dataclasses.replace(SMALL, bow=True))
    tokens, lengths = batch()
    z = torch.randn(5, 4)
    bow = model.bag_of_words(tokens, lengths, z)
    log_probs = torch.log_softmax(model.bow(z), dim=-1)
    for row in range(5):
        pieces = tokens[row, 1 : lengths[row]]  # the line's pieces; the end-of-line is not scored
        assert bow[row].item() == pytest.approx(-log_probs[row, pieces].sum().item(), rel=1e-5)
    shuffled = tokens.clone()
    shuffled[0, 1 : lengths[0]] = tokens[0, 1 : lengths[0]].flip(0)
    assert model.bag_of_words(shuffled, lengths, z)[0].item() == pytest.approx(bow[0].item(), rel=1e-6)
    assert SentenceVAE(SMALL).bow is None  # off by default: checkpoints without the head load as before
