"""Line corpora: reading files, turning them into one padded tensor, and length-bucketed batches (and
each training process's share of them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import syllables
from .tokenizer import Tokenizer, clean

CONDITIONS = ("syllables",)  # what a conditioned model can be conditioned on


def read_lines(path: str | Path) -> list[str]:
    """Non-empty lines of a text file, or of every ``*.txt`` file in a folder (sorted by name); a line
    of nothing but spaces and control characters counts as empty (see ``tokenizer.clean``)."""
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
            stripped = (line.strip() for line in f)
            # a line of printable characters keeps one after cleaning: only the others need cleaning to tell
            lines.extend(line for line in stripped if line and (line.isprintable() or clean(line)))
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


def splits(data: str | Path, max_lines: int = 0, valid_fraction: float = 0.05,
           seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Training, validation and test lines of ``data`` (see ``split_paths``): the first ``max_lines``
    training lines (0: all); without a valid.txt, a random ``valid_fraction`` of those held out for
    validation (drawn with ``seed``); no test lines without a test.txt."""
    paths = split_paths(data)
    train_lines = read_lines(paths["train"])
    if max_lines:
        train_lines = train_lines[:max_lines]
    if "valid" in paths:
        valid_lines = read_lines(paths["valid"])
    else:
        held = max(1, int(len(train_lines) * valid_fraction))
        if len(train_lines) <= held:
            raise ValueError(f"{data}: too few lines ({len(train_lines)}) to hold out a validation set")
        perm = torch.randperm(len(train_lines), generator=torch.Generator().manual_seed(seed)).tolist()
        valid_lines = [train_lines[i] for i in perm[:held]]
        train_lines = [train_lines[i] for i in perm[held:]]
    test_lines = read_lines(paths["test"]) if "test" in paths else []
    return train_lines, valid_lines, test_lines


def conditions(lines: list[str], condition: str) -> torch.Tensor | None:
    """Each line's value of ``condition`` as floats ``[N]`` (None when ``condition`` is empty)."""
    if not condition:
        return None
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: choose from {CONDITIONS}")
    return torch.tensor([float(syllables.count(line)) for line in lines])


def shard(batches: list[torch.Tensor], rank: int, world: int) -> list[torch.Tensor]:
    """Process ``rank``'s share of an epoch's ``batches`` when ``world`` processes train together: every
    ``world``-th batch from the ``rank``-th, after splitting the first of the largest batches in two
    until the count divides evenly, so every line is trained once and every process takes as many
    steps (the ranks step together). One process takes the batches as they are."""
    batches = list(batches)
    while len(batches) % world:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        if len(batches[largest]) < 2:
            raise ValueError(f"{sum(map(len, batches))} training lines cannot feed {world} processes")
        batches[largest : largest + 1] = batches[largest].tensor_split(2)
    return batches[rank::world]


@dataclass
class Corpus:
    """Lines encoded once: ``tokens [N, T]`` rows ``BOS pieces EOS (padding)``, ``lengths [N]``
    (pieces + EOS, the number of prediction targets) and, for a conditioned model, each line's
    condition ``cond [N]`` (its syllable count)."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    cond: torch.Tensor | None = None

    @classmethod
    def from_lines(cls, lines: list[str], tokenizer: Tokenizer, condition: str = "") -> Corpus:
        return cls(*tokenizer.batch(tokenizer.encode(lines)), conditions(lines, condition))

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Rows ``index`` trimmed to their longest line: tokens, lengths and conditions (or None)."""
        lengths = self.lengths[index]
        cond = self.cond[index] if self.cond is not None else None
        return self.tokens[index, : int(lengths.max()) + 1], lengths, cond

    def to(self, device) -> Corpus:
        return Corpus(*(t.to(device) if t is not None else None for t in (self.tokens, self.lengths, self.cond)))

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        """Index tensors of about ``batch_size`` lines of near-equal length (little padding).

        With ``shuffle`` the lines within a length and the order of batches are random.
        """
        n = len(self)
        jitter = torch.rand(n, generator=generator) if shuffle else torch.arange(n) / max(n, 1)
        order = torch.argsort(self.lengths.cpu().double() + jitter * 0.5, stable=True)  # the corpus may be on a GPU
        chunks = list(order.split(batch_size))
        if shuffle:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator)]
        return chunks

    def piece_counts(self, vocab_size: int) -> torch.Tensor:
        """How often each piece id is a prediction target (EOS included)."""
        mask = torch.arange(self.tokens.size(1) - 1) < self.lengths.unsqueeze(1)
        return torch.bincount(self.tokens[:, 1:][mask], minlength=vocab_size)
