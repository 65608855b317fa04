"""Beam search written the classic way, as the baseline for the batched one in ``vae_core.decoding``:
one line at a time, each hypothesis a Python object stepped through the model on its own.

Same algorithm and tie-breaking rules as the batched version (finished hypotheses stay in the beam,
length-normalised choice at the end), so both return the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vae_core.tokenizer import BOS, EOS


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float
    state: tuple | None
    finished: bool = False


@torch.no_grad()
def classic_beam(model, z: torch.Tensor, max_len: int, width: int = 4, length_penalty: float = 1.0) -> list[list[int]]:
    """Piece ids of the best hypothesis for each row of ``z``, decoded row by row."""
    results = []
    for row in range(len(z)):
        code = z[row : row + 1]
        beam = [Hypothesis([], 0.0, None)]
        for _ in range(max_len):
            candidates = []
            for hyp in beam:
                if hyp.finished:
                    candidates.append(hyp)
                    continue
                last = hyp.tokens[-1] if hyp.tokens else BOS
                log_probs, state = model.step(torch.tensor([last], device=z.device), code, hyp.state)
                top = log_probs[0].topk(width)
                for value, token in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                    candidates.append(Hypothesis(hyp.tokens + [token], hyp.score + value, state, token == EOS))
            beam = sorted(candidates, key=lambda h: h.score, reverse=True)[:width]
            if all(h.finished for h in beam):
                break
        best = max(beam, key=lambda h: h.score / max(len(h.tokens), 1) ** length_penalty)
        results.append(best.tokens)
    return results
