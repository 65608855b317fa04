"""Argparse ``type`` helpers shared by the command-line tools: each converts an option's text and refuses
values out of range with a message that says what is accepted (argparse then exits with code 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch


def checked(convert: Callable[[str], float], ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse ``type``: ``convert`` the text (``int`` or ``float``), accepted only when ``ok(value)``;
    ``rule`` names what is accepted ("a positive integer")."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return parse


positive_int = checked(int, lambda n: n >= 1, "a positive integer")
non_negative_int = checked(int, lambda n: n >= 0, "a non-negative integer")
positive_float = checked(float, lambda x: 0 < x < math.inf, "a positive number")
non_negative_float = checked(float, lambda x: 0 <= x < math.inf, "a non-negative number")
fraction = checked(float, lambda x: 0 < x < 1, "a number in (0, 1)")
rate = checked(float, lambda x: 0 <= x < 1, "a number in [0, 1)")


DEVICES = ["auto", "cpu", "cuda"]


def device(name: str) -> torch.device:
    """The torch device for a ``--device`` option: "auto" is CUDA when present, else the CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    if name not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}, got {name!r}")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")
