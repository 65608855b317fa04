"""Process-wide loaders (``st.cache_resource``): each checkpoint, tokenizer and map loads once and is
shared by every browser session."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

import vae_core
from vae_core.checkpoint import SHIPPED, CheckpointError, read_json
from vae_core.model import kl_per_dim
from vae_core.projection import Projection

CHECKPOINTS = Path(os.environ.get("LATENT_VERSE_CHECKPOINTS", SHIPPED.parent))  # where the picker looks


def checkpoint_names() -> list[str]:
    """Every directory under ``checkpoints/`` that looks like a checkpoint (has a config.json)."""
    return sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file())


def condition(name: str) -> str:
    """What a checkpoint's model is conditioned on ("" for none, or when its config is unreadable)."""
    try:
        return read_json(CHECKPOINTS / name / "config.json")["model"].get("condition", "")
    except (CheckpointError, KeyError, TypeError, AttributeError):
        return ""


@st.cache_resource(show_spinner="Loading the model…")
def load_sampler(name: str) -> vae_core.Sampler:
    return vae_core.load(CHECKPOINTS / name)


@st.cache_resource(show_spinner="Loading the map…")
def load_projection(name: str) -> Projection:
    return Projection.load(CHECKPOINTS / name)


def checkpoint_dir(name: str) -> Path:
    return CHECKPOINTS / name


# Encodings and decodings are cached per checkpoint and input, so moving one slider does not
# re-run the encoder or re-decode a homotopy that has not changed.
@st.cache_data(max_entries=256, show_spinner=False)
def encode(name: str, lines: tuple[str, ...], use_mean: bool, seed: int):
    """``(z, mu, std)`` numpy arrays for ``lines``: z is the mean or a seeded posterior sample."""
    z, mu, std = load_sampler(name).encode(list(lines), sample=not use_mean, seed=seed)
    return z.numpy(), mu.numpy(), std.numpy()


@st.cache_data(max_entries=1024, show_spinner=False)
def decode(name: str, z, method: str, options: tuple) -> list[str]:
    """Decoded lines for the rows of the numpy array ``z``."""
    return load_sampler(name).decode(z, method, **dict(options))


@st.cache_data(max_entries=1024, show_spinner=False)
def recall(name: str, lines: tuple[str, ...]) -> tuple[list[str], list[float]]:
    """Nearest corpus line (and latent distance) for each line."""
    return load_projection(name).recall(load_sampler(name), list(lines))


@st.cache_resource(show_spinner=False)
def kl_per_dimension(name: str):
    """Mean KL of each latent dimension over the map's first 300 corpus lines."""
    mu, logvar = load_sampler(name).posterior(load_projection(name).lines[:300])
    return kl_per_dim(mu, logvar).mean(dim=0)
