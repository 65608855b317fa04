"""Line corpora: reading files, turning them into one padded tensor, and length-bucketed batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .tokenizer import Tokenizer


def read_lines(path: str | Path) -> list[str]:
    """Non-empty lines of a text file, or of every ``*.txt`` file in a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ValueError(f"no .txt files in {path}")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"data not found: {path}")
    lines = []
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as f:
            lines.extend(line.strip() for line in f if line.strip())
    return lines


def split_paths(data: str | Path) -> dict[str, Path]:
    """``train``/``valid``/``test`` files of a data folder that has them; a plain file is ``train``."""
    data = Path(data)
    if data.is_file():
        return {"train": data}
    splits = {name: data / f"{name}.txt" for name in ("train", "valid", "test")}
    if not splits["train"].is_file():
        raise ValueError(f"{data} has no train.txt (give a folder with train.txt/valid.txt or a file of lines)")
    return {name: p for name, p in splits.items() if p.is_file()}


@dataclass
class Corpus:
    """Lines encoded once: ``tokens [N, T]`` rows ``BOS pieces EOS (padding)`` and ``lengths [N]``
    (pieces + EOS, the number of prediction targets)."""

    tokens: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def from_lines(cls, lines: list[str], tokenizer: Tokenizer) -> Corpus:
        return cls(*tokenizer.batch(tokenizer.encode(lines)))

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``index`` trimmed to their longest line."""
        lengths = self.lengths[index]
        return self.tokens[index, : int(lengths.max()) + 1], lengths

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        """Index tensors of about ``batch_size`` lines of near-equal length (little padding).

        With ``shuffle`` the lines within a length and the order of batches are random.
        """
        n = len(self)
        jitter = torch.rand(n, generator=generator) if shuffle else torch.arange(n) / max(n, 1)
        order = torch.argsort(self.lengths.double() + jitter * 0.5, stable=True)
        chunks = list(order.split(batch_size))
        if shuffle:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator)]
        return chunks

    def piece_counts(self, vocab_size: int) -> torch.Tensor:
        """How often each piece id is a prediction target (EOS included)."""
        mask = torch.arange(self.tokens.size(1) - 1) < self.lengths.unsqueeze(1)
        return torch.bincount(self.tokens[:, 1:][mask], minlength=vocab_size)
