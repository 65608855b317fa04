"""Batched decoding from latent codes: greedy search, temperature sampling, beam search.

Every function decodes all rows of ``z [N, nz]`` at once (``z=None`` with ``n`` rows for the plain
LM) and returns piece ids ``[N, T]``, each row ending in EOS or cut at ``max_len`` (rows that
finish early are padded with EOS).
"""

from __future__ import annotations

from typing import Callable

import torch

from .model import SentenceVAE
from .tokenizer import BOS, EOS


@torch.no_grad()
def _decode(model: SentenceVAE, z, n: int, max_len: int, pick: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Decode step by step, choosing each row's next piece with ``pick(log_probs [N, V]) -> [N]``."""
    device = model.rank_of.device
    tokens = torch.full((n,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    state, out = None, []
    for _ in range(max_len):
        log_probs, state = model.step(tokens, z, state)
        tokens = pick(log_probs).masked_fill(finished, EOS)
        out.append(tokens)
        finished |= tokens == EOS
        if finished.all():
            break
    return torch.stack(out, dim=1) if out else torch.empty(n, 0, dtype=torch.long, device=device)


def greedy(model: SentenceVAE, z, n: int, max_len: int) -> torch.Tensor:
    """The most likely piece at every step."""
    return _decode(model, z, n, max_len, lambda log_probs: log_probs.argmax(dim=-1))


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
    no cost; the search stops when every hypothesis has finished or at ``max_len``. The winner of
    each row maximises ``log p / length ** length_penalty`` (length in pieces, EOS included).
    """
    device = model.rank_of.device
    W = width
    zz = z.repeat_interleave(W, dim=0) if z is not None else None
    scores = torch.full((n, W), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all hypotheses start identical: expand only the first
    tokens = torch.full((n * W,), BOS, dtype=torch.long, device=device)
    history = torch.empty(n, W, 0, dtype=torch.long, device=device)
    finished = torch.zeros(n, W, dtype=torch.bool, device=device)
    lengths = torch.zeros(n, W, device=device)
    offsets = (torch.arange(n, device=device) * W).unsqueeze(1)
    state = None
    for _ in range(max_len):
        log_probs, state = model.step(tokens, zz, state)
        V = log_probs.size(-1)
        log_probs = log_probs.view(n, W, V)
        eos_only = torch.full((V,), float("-inf"), device=device)
        eos_only[EOS] = 0.0
        log_probs = torch.where(finished.unsqueeze(-1), eos_only, log_probs)
        scores, flat = (scores.unsqueeze(-1) + log_probs).view(n, W * V).topk(W, dim=1)
        origin, token = flat // V, flat % V
        kept = history.gather(1, origin.unsqueeze(-1).expand(-1, -1, history.size(2)))
        history = torch.cat([kept, token.unsqueeze(-1)], dim=2)
        was_finished = finished.gather(1, origin)
        lengths = lengths.gather(1, origin) + (~was_finished).float()
        finished = was_finished | (token == EOS)
        rows = (origin + offsets).view(-1)
        state = tuple(s[:, rows] for s in state)
        tokens = token.view(-1)
        if finished.all():
            break
    best = (scores / lengths.clamp(min=1) ** length_penalty).argmax(dim=1)
    return history[torch.arange(n, device=device), best]
