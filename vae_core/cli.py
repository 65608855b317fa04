"""What the command-line tools share: the option types (each refuses a value out of range with a message
that says what is accepted, and argparse exits with code 2), ``--device``, and how a tool reports bad
input."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import torch

from .validate import Range

positive_int = Range(int, 1)
non_negative_int = Range(int, 0)
positive_float = Range(float, 0, open_low=True)
non_negative_float = Range(float, 0)
fraction = Range(float, 0, 1, open_low=True, open_high=True)
rate = Range(float, 0, 1, open_high=True)


DEVICES = ["auto", "cpu", "cuda"]


def device(name: str) -> torch.device:
    """The torch device for a ``--device`` option: "auto" is CUDA when present, else the CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    if name not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}, got {name!r}")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def command(main: Callable[..., int]) -> Callable[..., int]:
    """A tool's ``main(argv)`` that reports a ValueError (bad input, a missing or corrupt file) as one
    ``error: ...`` line and exit code 2, never a traceback."""

    @functools.wraps(main)
    def run(argv=None) -> int:
        try:
            return main(argv)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return run
