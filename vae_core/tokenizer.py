"""BPEmb tokenizer: text lines <-> padded tensors of subword ids, and decoded pieces -> readable lines.

The SentencePiece model ships inside every checkpoint (``tokenizer/en/en.wiki.bpe.vs10000.model``)
and is loaded through bpemb's own API with ``cache_dir`` pointing there, so nothing is ever
downloaded and the user's home directory is never touched.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from pathlib import Path

import torch

UNK, BOS, EOS = 0, 1, 2  # ids fixed by the BPEmb SentencePiece models
LANG, VOCAB_SIZE = "en", 10000
MODEL_NAME = f"{LANG}.wiki.bpe.vs{VOCAB_SIZE}.model"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
# a line's first letter, or the first after sentence punctuation, past any quotes or brackets
# (straight or typographic: the corpus has both)
_OPENING, _CLOSING = "\"'`“‘„«¡¿([{_-", "\"'”’»)\\]}"
_SENTENCE_START = re.compile(rf"(^[{_OPENING}]*|[.!?][{_CLOSING}]*\s+[{_OPENING}]*)([^\W\d_])")
_STANDALONE_I = re.compile(r"\bi\b(?=[\s,.;:!?'\"-]|$)")


class TokenizerError(ValueError):
    """The tokenizer model file is missing or unreadable."""


def clean(line: str) -> str:
    """Normalise a user's line: Unicode NFKC, control characters to spaces, runs of space folded."""
    line = unicodedata.normalize("NFKC", line)
    line = _CONTROL.sub(" ", line)
    return " ".join(line.split())


def detokenize(pieces: list[str]) -> str:
    """Join BPEmb pieces into a readable line of verse.

    Restores spaces from the ``▁`` marks, then capitalises the first letter (accented ones too), a
    standalone "i" and the first letter after sentence punctuation, past any opening quote or
    bracket (BPEmb lowercased the corpus).
    """
    text = "".join(pieces).replace("▁", " ").strip()
    text = " ".join(text.split())
    text = _STANDALONE_I.sub("I", text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + _capital(m.group(2)), text)


def _capital(letter: str) -> str:
    """``letter`` in upper case, unless that takes more than one letter ("ß" would become "SS")."""
    upper = letter.upper()
    return upper if len(upper) == 1 else letter


class Tokenizer:
    """Encodes lines as BPEmb piece ids; ``max_len`` caps pieces per line (longer lines are cut)."""

    def __init__(self, directory: str | Path, max_len: int = 64):
        directory = Path(directory)
        model_file = directory / LANG / MODEL_NAME
        if not model_file.is_file():
            raise TokenizerError(
                f"tokenizer model not found: expected the BPEmb file {MODEL_NAME} at {model_file}"
            )
        from bpemb import BPEmb  # imported late: it pulls in gensim, slow to import

        try:
            self.bpemb = BPEmb(lang=LANG, vs=VOCAB_SIZE, segmentation_only=True, cache_dir=directory)
        except Exception as err:  # sentencepiece raises RuntimeError/OSError on a corrupt file
            raise TokenizerError(f"tokenizer model at {model_file} could not be read: {err}") from err
        self.max_len = max_len
        self.vocab_size = self.bpemb.spm.get_piece_size()

    def encode(self, lines: list[str]) -> list[list[int]]:
        """Piece ids per line (no BOS/EOS); lines over ``max_len`` pieces are truncated with a warning."""
        ids = self.bpemb.encode_ids([clean(line) for line in lines]) if lines else []
        too_long = [i for i, seq in enumerate(ids) if len(seq) > self.max_len]
        if too_long:
            warnings.warn(
                f"{len(too_long)} line(s) longer than {self.max_len} pieces were truncated "
                f"(first: line {too_long[0]})",
                stacklevel=2,
            )
        return [seq[: self.max_len] for seq in ids]

    def batch(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad id lists into the model's input: ``[BOS] + ids + [EOS]`` rows and their lengths.

        Returns ``tokens [N, T+2]`` (padded with EOS) and ``lengths [N]`` counting ids + EOS,
        i.e. the number of prediction targets per line.
        """
        lengths = torch.tensor([len(seq) + 1 for seq in ids], dtype=torch.long)
        width = int(lengths.max()) + 1 if ids else 2
        tokens = torch.full((len(ids), width), EOS, dtype=torch.long)
        tokens[:, 0] = BOS
        for row, seq in enumerate(ids):
            tokens[row, 1 : len(seq) + 1] = torch.tensor(seq, dtype=torch.long)
        return tokens, lengths

    def decode(self, ids: list[int]) -> str:
        """A readable line from piece ids, stopping at the first EOS."""
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        pieces = [self.bpemb.spm.id_to_piece(i) for i in ids if i not in (BOS, UNK)]
        return detokenize(pieces)
