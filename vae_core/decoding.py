"""Batched decoding from latent codes: greedy search, temperature sampling, beam search.

Every function decodes all rows of ``z [N, nz]`` at once (``z=None`` with ``n`` rows for the plain
LM) and returns piece ids ``[N, T]``, each row ending in EOS or cut at ``max_len`` (rows that
finish early are padded with EOS).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .model import SentenceVAE
from .tokenizer import BOS, EOS


@torch.no_grad()
def _decode(model: SentenceVAE, z, n: int, max_len: int, pick: Callable[[torch.Tensor], torch.Tensor],
            ranked: bool = False) -> torch.Tensor:
    """Decode step by step, choosing each row's next piece with ``pick(log_probs [N, V]) -> [N]``
    (columns in frequency-rank order when ``ranked``, see ``SentenceVAE.log_probs``).

    A row that has produced EOS leaves the batch, so a few long lines do not keep every row busy.
    """
    device = model.rank_of.device
    piece_of = model.piece_of() if ranked else None
    out = torch.full((n, max_len), EOS, dtype=torch.long, device=device)
    live = torch.arange(n, device=device)  # rows still decoding
    tokens = torch.full((n,), BOS, dtype=torch.long, device=device)
    state, steps = None, 0
    for t in range(max_len):
        log_probs, state = model.step(tokens, None if z is None else z[live], state, ranked)
        tokens = pick(log_probs)
        if ranked:
            tokens = piece_of[tokens]
        out[live, t] = tokens
        steps = t + 1
        going = tokens != EOS
        if not going.all():
            live, tokens, state = live[going], tokens[going], tuple(s[:, going] for s in state)
            if len(live) == 0:
                break
    return out[:, :steps]


def greedy(model: SentenceVAE, z, n: int, max_len: int) -> torch.Tensor:
    """The most likely piece at every step."""
    return _decode(model, z, n, max_len, lambda log_probs: log_probs.argmax(dim=-1), ranked=True)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Keep the ``top_k`` most likely pieces and/or the smallest set whose probability reaches
    ``top_p`` (nucleus); the rest get -inf. The most likely piece always survives."""
    if top_k is not None and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        outside = probs.cumsum(dim=-1) - probs >= top_p  # mass before this piece already reaches top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(outside, float("-inf")))
    return logits


def sample(model: SentenceVAE, z, n: int, max_len: int, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw each piece from the softmax at ``temperature`` (-> greedy as it falls to 0)."""

    def pick(log_probs):
        probs = filter_logits(log_probs / temperature, top_k, top_p).softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    return _decode(model, z, n, max_len, pick)


@torch.no_grad()
def beam(model: SentenceVAE, z, n: int, max_len: int, width: int = 4, length_penalty: float = 1.0) -> torch.Tensor:
    """Beam search keeping ``width`` hypotheses per row, all rows in one tensor batch.

    A finished hypothesis (it produced EOS) stays in the beam and can only be extended by EOS at
    no cost; a row whose hypotheses have all finished leaves the batch, and the search stops when
    none is left or at ``max_len``. The winner of each row maximises ``log p / length **
    length_penalty`` (length in pieces, EOS included).
    """
    device = model.rank_of.device
    W = width
    piece_of, eos = model.piece_of(), int(model.rank_of[EOS])  # the search runs in rank order
    scores = torch.full((n, W), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all hypotheses start identical: expand only the first
    history = torch.full((n, W, max_len), EOS, dtype=torch.long, device=device)
    finished = torch.zeros(n, W, dtype=torch.bool, device=device)
    lengths = torch.zeros(n, W, device=device)
    live = torch.arange(n, device=device)  # rows with an unfinished hypothesis
    zz = z.repeat_interleave(W, dim=0) if z is not None else None
    tokens = torch.full((n * W,), BOS, dtype=torch.long, device=device)
    state, steps = None, 0
    for t in range(max_len):
        log_probs, state = model.step(tokens, zz, state, ranked=True)
        L, V = len(live), log_probs.size(-1)
        log_probs = log_probs.view(L, W, V)
        done = finished[live]
        if done.any():  # a finished hypothesis continues with EOS only, at no cost
            log_probs[done] = float("-inf")
            log_probs[..., eos].masked_fill_(done, 0.0)
        log_probs += scores[live].unsqueeze(-1)
        top, flat = log_probs.view(L, W * V).topk(W, dim=1)
        origin, piece = flat // V, piece_of[flat % V]
        history[live] = history[live].gather(1, origin.unsqueeze(-1).expand(-1, -1, max_len))
        history[live, :, t] = piece
        was_finished = done.gather(1, origin)
        lengths[live] = lengths[live].gather(1, origin) + (~was_finished).float()
        finished[live] = was_finished | (piece == EOS)
        scores[live] = top
        rows = (origin + torch.arange(L, device=device).unsqueeze(1) * W).view(-1)
        state, tokens = tuple(s[:, rows] for s in state), piece.view(-1)
        steps = t + 1
        going = ~finished[live].all(dim=1)
        if not going.all():
            keep = going.repeat_interleave(W)
            live, tokens, state = live[going], tokens[keep], tuple(s[:, keep] for s in state)
            zz = zz[keep] if zz is not None else None
            if len(live) == 0:
                break
    best = (scores / lengths.clamp(min=1) ** length_penalty).argmax(dim=1)
    return history[torch.arange(n, device=device), best, :steps]
