"""Process-wide caches: each checkpoint, tokenizer and map loads once (``st.cache_resource``) and is
shared by every browser session, and so are the encodings, decodings and nearest corpus lines
already computed (per row where a row's result depends on that row alone)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
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


def _config(path: str) -> dict:
    """A checkpoint's config.json, or {} when it is unreadable (loading the model reports why)."""
    try:
        config = read_json(Path(path) / "config.json")
    except CheckpointError:
        return {}
    return config if isinstance(config, dict) else {}


def condition(path: str) -> str:
    """What a checkpoint's model is conditioned on ("" for none, or when its config is unreadable)."""
    model = _config(path).get("model")
    return str(model.get("condition", "")) if isinstance(model, dict) else ""


def kind(path: str) -> str:
    """A checkpoint's model kind ("vae", "vrnn", ...; "" when its config is unreadable)."""
    return str(_config(path).get("kind", ""))


@st.cache_resource(show_spinner="Loading the model…")
def load_sampler(path: str) -> vae_core.Sampler:
    return vae_core.load(path)


@st.cache_resource(show_spinner="Loading the map…")
def load_projection(path: str) -> Projection:
    return Projection.load(Path(path))


class RowMemo:
    """Results of a deterministic, row-by-row batched function, kept per row (the least recently
    used are dropped past ``capacity``): a rerun computes, in one batch, only the rows it has not
    seen, so editing one line of a pasted poem encodes and decodes that line, not the poem."""

    def __init__(self, capacity: int = 20_000):
        self.capacity, self.rows, self.lock = capacity, OrderedDict(), threading.Lock()

    def __call__(self, keys: list, compute) -> list:
        """The result for each of ``keys``; ``compute(missing_keys)`` returns those of the unseen ones."""
        with self.lock:
            found = {key: self.rows[key] for key in keys if key in self.rows}
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing:
            found.update(zip(missing, compute(missing)))
        with self.lock:
            for key in keys:
                self.rows[key] = found[key]
                self.rows.move_to_end(key)
            while len(self.rows) > self.capacity:
                self.rows.popitem(last=False)
        return [found[key] for key in keys]


@st.cache_resource(show_spinner=False)
def memo(path: str) -> RowMemo:
    """The row memo of one checkpoint, shared by every browser session."""
    return RowMemo()


# Posterior means and beam or greedy decodings depend on each row alone, so they are kept per row;
# a posterior sample or a sampled decoding depends on the whole batch's draw, so it is kept per input.
def encode(path: str, lines: tuple[str, ...], use_mean: bool, seed: int):
    """``(z, mu, std)`` numpy arrays for ``lines``: z is the mean or a seeded posterior sample."""
    if not use_mean:
        return _encode_sampled(path, lines, seed)
    rows = memo(path)([("posterior", line) for line in lines],
                      lambda keys: _posterior_rows(path, [line for _, line in keys]))
    mu, std = (np.stack([row[i] for row in rows]) for i in (0, 1))
    return mu, mu, std


def _posterior_rows(path: str, lines: list[str]) -> list[tuple]:
    _, mu, std = load_sampler(path).encode(lines)
    return list(zip(mu.numpy(), std.numpy()))


@st.cache_data(max_entries=256, show_spinner=False)
def _encode_sampled(path: str, lines: tuple[str, ...], seed: int):
    z, mu, std = load_sampler(path).encode(list(lines), sample=True, seed=seed)
    return z.numpy(), mu.numpy(), std.numpy()


def decode(path: str, z: np.ndarray, method: str, options: tuple) -> list[str]:
    """Decoded lines for the rows of the float32 array ``z``."""
    if method == "sample":
        return _decode_sampled(path, z, options)
    return memo(path)([(method, options, row.tobytes()) for row in z],
                      lambda keys: load_sampler(path).decode(
                          np.stack([np.frombuffer(row, dtype=np.float32) for _, _, row in keys]), method,
                          **dict(options)))


@st.cache_data(max_entries=1024, show_spinner=False)
def _decode_sampled(path: str, z, options: tuple) -> list[str]:
    return load_sampler(path).decode(z, "sample", **dict(options))


@st.cache_data(max_entries=256, show_spinner=False)
def reconstruct(path: str, lines: tuple[str, ...]) -> list[str]:
    """A VRNN's teacher-forced reconstructions of ``lines``."""
    return load_sampler(path).reconstruct(list(lines))


@st.cache_data(max_entries=256, show_spinner=False)
def generate(path: str, n: int, temperature: float, seed: int, max_len: int) -> list[str]:
    """``n`` lines generated by a VRNN (latents from its prior at every step)."""
    return load_sampler(path).sample(n, temperature=temperature, seed=seed, max_len=max_len)


def recall(path: str, lines: tuple[str, ...]) -> tuple[list[str], list[float]]:
    """Nearest corpus line (and latent distance) for each line."""
    rows = memo(path)([("recall", line) for line in lines], lambda keys: list(zip(
        *load_projection(path).recall(load_sampler(path), [line for _, line in keys]))))
    return [nearest for nearest, _ in rows], [distance for _, distance in rows]


@st.cache_resource(show_spinner=False)
def kl_per_dimension(path: str):
    """Mean KL of each latent dimension over the map's first 300 corpus lines."""
    return load_sampler(path).posterior(load_projection(path).lines[:300]).kl().mean(dim=0)
