"""Process-wide loaders (``st.cache_resource``): each checkpoint, tokenizer and map loads once and is
shared by every browser session."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

import vae_core
from vae_core.checkpoint import SHIPPED, CheckpointError, read_json
from vae_core.projection import Projection


def checkpoints_root() -> Path:
    """Where the picker looks: ``$LATENT_VERSE_CHECKPOINTS``, else the shipped model's folder."""
    return Path(os.environ.get("LATENT_VERSE_CHECKPOINTS", SHIPPED.parent))


def checkpoint_names() -> list[str]:
    """Every directory under ``checkpoints/`` that looks like a checkpoint (has a config.json)."""
    return sorted(p.name for p in checkpoints_root().iterdir() if (p / "config.json").is_file())


def checkpoint_path(name: str) -> str:
    """The checkpoint's resolved directory: the key every cached loader and result is stored under."""
    return str((checkpoints_root() / name).resolve())


def condition(path: str) -> str:
    """What a checkpoint's model is conditioned on ("" for none, or when its config is unreadable)."""
    try:
        return read_json(Path(path) / "config.json")["model"].get("condition", "")
    except (CheckpointError, KeyError, TypeError, AttributeError):
        return ""


@st.cache_resource(show_spinner="Loading the model…")
def load_sampler(path: str) -> vae_core.Sampler:
    return vae_core.load(path)


@st.cache_resource(show_spinner="Loading the map…")
def load_projection(path: str) -> Projection:
    return Projection.load(Path(path))


# Encodings and decodings are cached per checkpoint and input, so moving one slider does not
# re-run the encoder or re-decode a homotopy that has not changed.
@st.cache_data(max_entries=256, show_spinner=False)
def encode(path: str, lines: tuple[str, ...], use_mean: bool, seed: int):
    """``(z, mu, std)`` numpy arrays for ``lines``: z is the mean or a seeded posterior sample."""
    z, mu, std = load_sampler(path).encode(list(lines), sample=not use_mean, seed=seed)
    return z.numpy(), mu.numpy(), std.numpy()


@st.cache_data(max_entries=1024, show_spinner=False)
def decode(path: str, z, method: str, options: tuple) -> list[str]:
    """Decoded lines for the rows of the numpy array ``z``."""
    return load_sampler(path).decode(z, method, **dict(options))


@st.cache_data(max_entries=1024, show_spinner=False)
def recall(path: str, lines: tuple[str, ...]) -> tuple[list[str], list[float]]:
    """Nearest corpus line (and latent distance) for each line."""
    return load_projection(path).recall(load_sampler(path), list(lines))


@st.cache_resource(show_spinner=False)
def kl_per_dimension(path: str):
    """Mean KL of each latent dimension over the map's first 300 corpus lines."""
    return load_sampler(path).posterior(load_projection(path).lines[:300]).kl().mean(dim=0)
