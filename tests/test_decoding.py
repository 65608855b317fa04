"""Batched decoding against its definitions, on the tiny model trained in the session."""

import torch

from vae_core import decoding
from vae_core.tokenizer import EOS


@torch.no_grad()
def sequence_log_prob(model, z, ids):
    """log p(ids | z) summed up to and including the first EOS, one row at a time (reference)."""
    totals = []
    for row in range(len(ids)):
        state, token, total = None, torch.tensor([1]), 0.0
        for piece in ids[row].tolist():
            log_probs, state = model.step(token, z[row : row + 1], state)
            total += float(log_probs[0, piece])
            token = torch.tensor([piece])
            if piece == EOS:
                break
        totals.append(total)
    return torch.tensor(totals)


def test_beam_width_one_equals_greedy(vae):
    z = vae.prior(24, seed=1)
    greedy = decoding.greedy(vae.model, z, 24, 20)
    beam = decoding.beam(vae.model, z, 24, 20, width=1)
    assert torch.equal(greedy, beam[:, : greedy.size(1)])
    assert vae.greedy(z) == vae.beam(z, width=1)


def test_low_temperature_approaches_greedy(vae):
    z = vae.prior(32, seed=2)
    assert vae.sample(z, temperature=1e-4, seed=0) == vae.greedy(z)
    hot = vae.sample(z, temperature=5.0, seed=0)
    assert sum(a != b for a, b in zip(hot, vae.greedy(z))) > 16


def test_top_k_one_is_greedy(vae):
    z = vae.prior(16, seed=3)
    assert vae.sample(z, temperature=1.0, top_k=1, seed=5) == vae.greedy(z)


def test_filter_logits_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(decoding.filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(decoding.filter_logits(logits, top_k=3))
    assert kept.tolist() == [[True, True, True, False]]
    kept = torch.isfinite(decoding.filter_logits(logits, top_p=0.01))
    assert kept.tolist() == [[True, False, False, False]]


def test_sampling_is_reproducible_with_a_seed(vae):
    z = vae.prior(8, seed=4)
    assert vae.sample(z, seed=11) == vae.sample(z, seed=11)
    assert vae.sample(z, seed=11) != vae.sample(z, seed=12)


def test_beam_finds_a_likely_line(vae):
    """Without length normalisation, beam 8 scores at least as well as greedy on most rows."""
    z = vae.prior(16, seed=6)
    model = vae.model
    greedy = decoding.greedy(model, z, 16, 30)
    beam = decoding.beam(model, z, 16, 30, width=8, length_penalty=0.0)
    better = sequence_log_prob(model, z, beam) >= sequence_log_prob(model, z, greedy) - 1e-4
    assert better.float().mean() >= 0.9


def test_beam_rows_are_independent_of_the_batch(vae):
    """Decoding a row alone or inside a batch gives the same line."""
    z = vae.prior(6, seed=7)
    together = vae.beam(z, width=4)
    alone = [vae.beam(z[i : i + 1], width=4)[0] for i in range(6)]
    assert together == alone


def test_decoding_respects_max_len(vae):
    z = vae.prior(4, seed=8)
    ids = decoding.sample(vae.model, z, 4, 5, temperature=3.0)
    assert ids.size(1) <= 5
    assert all(len(line.split()) <= 5 for line in vae.sample(z, temperature=3.0, max_len=5, seed=1))


def test_batched_beam_matches_the_classic_one(vae):
    import sys

    from .conftest import ROOT

    sys.path.insert(0, str(ROOT / "bench"))
    from classic_beam import classic_beam

    z = vae.prior(12, seed=9)
    batched = [vae.tokenizer.decode(row) for row in decoding.beam(vae.model, z, 12, 25, width=4).tolist()]
    classic = [vae.tokenizer.decode(ids) for ids in classic_beam(vae.model, z, 25, width=4)]
    assert batched == classic


def test_top_log_probs_are_the_top_of_the_full_table(vae):
    model = vae.model
    hidden, _ = model.cell(torch.full((64,), 1), vae.prior(64, seed=10), None)
    values, ranks = model.top_log_probs(hidden, 5)
    full = model.log_probs(hidden, ranked=True)
    assert torch.equal(values, full.topk(5, dim=-1).values)
    assert torch.equal(full.gather(1, ranks), values)
    assert torch.equal(model.piece_of()[ranks[:, 0]], model.log_probs(hidden).argmax(dim=-1))


@torch.no_grad()
def test_top_log_probs_skip_only_clusters_that_cannot_place_a_piece(shipped):
    """On the shipped model's states over real lines some rows skip each tail cluster and some do
    not; the best pieces are those of the full table either way."""
    model, lines = shipped.model, ["the sea is calm tonight", "o rose thou art sick", "and zephyrs whispered"]
    tokens = shipped.tokenizer.batch(shipped.tokenizer.encode(lines))[0]
    hidden, _ = model.decode(tokens[:, :-1], shipped.mu(lines), None)
    hidden = hidden.flatten(0, 1)
    head = torch.log_softmax(model.out.head(hidden), dim=-1)
    kth = head[:, : model.out.shortlist_size].topk(4, dim=-1).values[:, -1]
    for i in range(len(model.out.tail)):
        skipped = head[:, model.out.shortlist_size + i] < kth
        assert 0 < int(skipped.sum()) < len(hidden)
    values, ranks = model.top_log_probs(hidden, 4)
    full = model.log_probs(hidden, ranked=True)
    best = full.topk(4, dim=-1)
    assert torch.equal(ranks, best.indices)  # the same pieces, their log-probabilities to rounding
    torch.testing.assert_close(values, best.values, rtol=0, atol=1e-5)


def test_batched_greedy_matches_decoding_one_line_at_a_time(vae):
    """Rows leave the batch as they finish; every line is still the one decoded on its own."""
    z = vae.prior(20, seed=11)
    batched = decoding.greedy(vae.model, z, 20, 30)
    for row in range(20):
        alone = decoding.greedy(vae.model, z[row : row + 1], 1, 30)[0]
        assert torch.equal(batched[row, : alone.size(0)], alone)
        assert (batched[row, alone.size(0) :] == EOS).all()
