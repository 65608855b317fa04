"""Batched decoding from latent codes: greedy search, temperature sampling, beam search.

Every function decodes all rows of the decoder's code ``z [N, code_dim]`` at once (z, with the
condition appended for a conditioned model, see ``SentenceVAE.code``; ``z=None`` with ``n`` rows
for the plain LM) and returns piece ids ``[N, T]``, each row ending in EOS or cut at ``max_len`` (rows that
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
        log_probs, state = model.step(tokens, z, state, ranked)
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
            z = z[going] if z is not None else None
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
        outside[:, 0] = False  # a top_p below float32's smallest number would otherwise cut them all
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(outside, float("-inf")))
    return logits


def draw(log_probs: torch.Tensor, temperature: float, generator: torch.Generator | None = None,
         top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """One column per row ``[N]`` drawn from the softmax of ``log_probs / temperature``, cut to ``top_k`` /
    ``top_p``; temperature 0 takes the most likely column. Each row's best is shifted to 0 before
    dividing, so however small a positive temperature, the softmax stays finite (it tends to the argmax)."""
    if temperature < torch.finfo(log_probs.dtype).tiny:  # 0, or below float32: the best would get 0 / 0
        return log_probs.argmax(dim=-1)
    logits = (log_probs - log_probs.amax(dim=-1, keepdim=True)) / temperature
    probs = filter_logits(logits, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def sample(model: SentenceVAE, z, n: int, max_len: int, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw each piece from the softmax at ``temperature`` (0: greedy, see ``draw``)."""
    return _decode(model, z, n, max_len, lambda log_probs: draw(log_probs, temperature, generator, top_k, top_p))


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
    finished = torch.zeros(n, W, dtype=torch.bool, device=device)
    lengths = torch.zeros(n, W, device=device)
    stay = torch.arange(W, device=device).expand(n, W)  # where rows that left keep their hypotheses
    origins, pieces = [], []  # per step and row: each hypothesis's parent and its new piece, [n, W]
    live = torch.arange(n, device=device)  # rows with an unfinished hypothesis
    zz = z.repeat_interleave(W, dim=0) if z is not None else None
    tokens = torch.full((n * W,), BOS, dtype=torch.long, device=device)
    state = None
    for _ in range(max_len):
        hidden, state = model.cell(tokens, zz, state)
        L = len(live)
        values, ranks = (x.view(L, W, W) for x in model.top_log_probs(hidden, W))  # each hypothesis's best W
        done = finished[live]
        if done.any():  # a finished hypothesis continues with EOS only, at no cost
            values[done] = float("-inf")
            values[..., 0].masked_fill_(done, 0.0)
            ranks[..., 0].masked_fill_(done, eos)
        values += scores[live].unsqueeze(-1)
        top, flat = values.view(L, W * W).topk(W, dim=1)
        origin, piece = flat // W, piece_of[ranks.view(L, W * W).gather(1, flat)]
        origins.append(stay.clone())
        pieces.append(torch.full((n, W), EOS, dtype=torch.long, device=device))
        origins[-1][live], pieces[-1][live] = origin, piece
        was_finished = done.gather(1, origin)
        lengths[live] = lengths[live].gather(1, origin) + (~was_finished).float()
        finished[live] = was_finished | (piece == EOS)
        scores[live] = top
        going = ~finished[live].all(dim=1)
        rows = (origin + torch.arange(L, device=device).unsqueeze(1) * W)[going].view(-1)
        state, tokens = tuple(s[:, rows] for s in state), piece[going].view(-1)
        if not going.all():
            live = live[going]
            if len(live) == 0:
                break
            zz = zz.view(L, W, -1)[going].flatten(0, 1) if zz is not None else None
    # Follow the winners' parents back from the last step.
    hyp = (scores / lengths.clamp(min=1) ** length_penalty).argmax(dim=1)
    rows, out = torch.arange(n, device=device), []
    for origin, piece in zip(reversed(origins), reversed(pieces)):
        out.append(piece[rows, hyp])
        hyp = origin[rows, hyp]
    return torch.stack(out[::-1], dim=1) if out else torch.empty(n, 0, dtype=torch.long, device=device)
