"""The one check of a number against its allowed range, worded the same wherever a value comes from:
the Python API and config files get a ValueError naming the value, the command-line tools an argparse
type whose message argparse prints before it exits with code 2.

    Range(int, 1, 256).check("max_len", 300)    # ValueError: max_len must be an integer from 1 to 256, got 300
    parser.add_argument("--lr", type=Range(float, 0, open_low=True))  # "must be a positive number"
"""

from __future__ import annotations

import argparse
import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """Finite numbers of one kind (``int``: integers, NumPy's too, never a bool; ``float``: any real)
    from ``low`` to ``high``, each bound allowed unless it is open."""

    kind: type = float
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False  # low itself is refused
    open_high: bool = False  # high itself is refused

    def __str__(self) -> str:
        """The rule in words: "a positive integer", "an integer from 1 to 256", "a number in (0, 1)"."""
        noun = "integer" if self.kind is int else "number"
        if self.high == math.inf:
            if self.low == 0:
                return f"a {'positive' if self.open_low else 'non-negative'} {noun}"
            if self.kind is int and self.low == 1 and not self.open_low:
                return "a positive integer"
            article = "an" if self.kind is int else "a"
            return f"{article} {noun} {'above' if self.open_low else 'of at least'} {self.low}"
        if self.kind is int:
            return f"an integer from {self.low} to {self.high}"
        return f"a number in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if self.kind is int else numbers.Real):
            return False
        if not (isinstance(value, numbers.Integral) or math.isfinite(value)):
            return False
        above = self.low < value if self.open_low else self.low <= value
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def check(self, name: str, value):
        """``value`` as an ``int`` or ``float``; a ValueError saying what ``name`` must be if it is not one
        of the range."""
        if not self.accepts(value):
            raise ValueError(f"{name} must be {self}, got {value!r}")
        return self.kind(value)

    def __call__(self, text: str):
        """An argparse ``type``: the option's text as a number of the range."""
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self}, got {text!r}")
        return value
