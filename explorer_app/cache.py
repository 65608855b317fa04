"""Process-wide caches: each checkpoint, tokenizer and map loads once (``st.cache_resource``) and is
shared by every browser session, and so are the encodings, decodings and nearest corpus lines
already computed (per row where a row's result depends on that row alone)."""

from __future__ import annotations

import atexit
import base64
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import streamlit as st
import torch

import vae_core
from vae_core.checkpoint import CheckpointError, read_json, shipped_root
from vae_core.projection import CATEGORICAL, NUMERIC, TENSORS, Projection
from vae_core.properties import encode_categories

OPEN_CHECKPOINTS = 6  # checkpoints whose model, map and memos stay in memory (the least recently used go)
LISTING_SECONDS = 10  # how long a listing of the checkpoints folder is reused (a new checkpoint shows after it)


def torch_threads() -> int:
    """Threads for each torch operation: ``$LATENT_VERSE_TORCH_THREADS``, else 1. Sessions run in threads
    of one process, each op releasing the interpreter's lock, so they already share the cores; an op's own
    thread pool on top makes every op wait for its slowest thread, which another session (or the browser,
    on the same machine) holds up (measured in docs/performance.md)."""
    value = os.environ.get("LATENT_VERSE_TORCH_THREADS", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


torch.set_num_threads(torch_threads())


@st.cache_data(ttl=LISTING_SECONDS, show_spinner=False)
def _listing(root: str) -> dict[str, str]:
    """The checkpoints in the folder ``root`` by name (every directory with a config.json), each with its
    resolved directory; none if the folder is missing. Every run asks several times, so it is kept."""
    folder = Path(root)
    if not folder.is_dir():
        return {}
    return {p.name: str(p.resolve()) for p in sorted(folder.iterdir()) if (p / "config.json").is_file()}


def checkpoint_names() -> list[str]:
    """The checkpoints in ``shipped_root()`` (``$LATENT_VERSE_CHECKPOINTS``, else the repository's
    ``checkpoints/``), sorted."""
    return list(_listing(str(shipped_root())))


def checkpoint_path(name: str) -> str:
    """The checkpoint's resolved directory: the key every cached loader and result is stored under.
    Only a listed checkpoint (a folder directly in the checkpoints folder) is opened: a name from a
    link could hold ``..`` or an absolute path."""
    listing = _listing(str(shipped_root()))
    if Path(name).name != name or name not in listing:
        raise CheckpointError("it is not one of the listed checkpoints")
    return listing[name]


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


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner="Loading the model…")
def load_sampler(path: str) -> vae_core.Sampler:
    return vae_core.load(path)


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner="Loading the map…")
def load_projection(path: str) -> Projection:
    """A map with its word and code indexes already built: built here, once, under the cache's lock,
    where sessions that reached a lazy index at the same time would each build their own."""
    projection = Projection.load(Path(path))
    _ = projection.word_index, projection.code_index
    return projection


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner=False)
def regions(path: str) -> list[dict]:
    """The map's regions (see ``Projection.region_table``; none without a region field), shared read-only."""
    projection = load_projection(path)
    return projection.region_table() if "region" in projection.fields else []


class RowMemo:
    """Results of a deterministic, row-by-row batched function, kept per row (the least recently
    used are dropped past ``capacity``): a rerun computes, in one batch, only the rows it has not
    seen, so editing one line of a pasted poem encodes and decodes that line, not the poem. Rows
    that another session is computing are waited for, not computed again: a class that opens the
    same tab at once decodes its default lines once."""

    def __init__(self, capacity: int = 20_000):
        self.capacity, self.rows, self.lock = capacity, OrderedDict(), threading.Lock()
        self.pending: dict = {}  # key -> an Event set when the session computing that row has stored it

    def __call__(self, keys: list, compute) -> list:
        """The result for each of ``keys``; ``compute(missing_keys)`` returns those of the unseen ones."""
        done = threading.Event()
        with self.lock:
            found = {key: self.rows[key] for key in keys if key in self.rows}
            waits = {key: self.pending[key] for key in dict.fromkeys(keys) if key not in found and key in self.pending}
            mine = [key for key in dict.fromkeys(keys) if key not in found and key not in waits]
            self.pending.update(dict.fromkeys(mine, done))
        try:
            if mine:
                found.update(zip(mine, compute(mine)))
        finally:
            with self.lock:
                self.rows.update((key, found[key]) for key in mine if key in found)
                for key in mine:
                    del self.pending[key]
            done.set()
        for event in set(waits.values()):
            event.wait()
        with self.lock:
            found.update((key, self.rows[key]) for key in waits if key in self.rows)
        missing = [key for key in waits if key not in found]  # its computation failed, or it was dropped
        if missing:
            found.update(zip(missing, compute(missing)))
        with self.lock:
            for key in keys:
                self.rows[key] = found[key]
                self.rows.move_to_end(key)
            while len(self.rows) > self.capacity:
                self.rows.popitem(last=False)
        return [found[key] for key in keys]


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner=False)
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


def decode(path: str, z: np.ndarray, method: str, options: tuple, syllables: tuple | None = None) -> list[str]:
    """Decoded lines for the rows of the float32 array ``z`` (``syllables``: one requested count per
    row, for a syllable-conditioned model, in place of the one count ``options`` may hold)."""
    if method == "sample":
        return _decode_sampled(path, z, options, syllables)
    counts = syllables or (None,) * len(z)
    return memo(path)([(method, options, count, row.tobytes()) for count, row in zip(counts, z)],
                      lambda keys: load_sampler(path).decode(_codes(keys), method,
                                                             **_per_row(options, [count for _, _, count, _ in keys])))


def _codes(keys: list[tuple]) -> np.ndarray:
    """The float32 codes ``[M, nz]`` of memo keys whose last item is a code's bytes."""
    return np.stack([np.frombuffer(key[-1], dtype=np.float32) for key in keys])


def _per_row(options: tuple, counts: list) -> dict:
    """Decoding options with each row's own syllable count, where rows have one."""
    options = dict(options)
    if counts and counts[0] is not None:
        options["syllables"] = counts
    return options


@st.cache_data(max_entries=1024, show_spinner=False)
def _decode_sampled(path: str, z, options: tuple, syllables: tuple | None) -> list[str]:
    return load_sampler(path).decode(z, "sample", **_per_row(options, list(syllables or ())))


@st.cache_data(max_entries=256, show_spinner=False)
def reconstruct(path: str, lines: tuple[str, ...], latents: str = "posterior") -> list[str]:
    """A VRNN's teacher-forced reconstructions of ``lines``, with each step's ``latents`` (its posterior's
    or its prior's means)."""
    return load_sampler(path).reconstruct(list(lines), latents=latents)


@st.cache_data(max_entries=256, show_spinner=False)
def generate(path: str, n: int, temperature: float, seed: int, max_len: int, line: str | None = None,
             fixed: int = 0) -> list[str]:
    """``n`` lines generated by a VRNN (latents from its prior at every step but the first ``fixed``,
    which are ``line``'s)."""
    return load_sampler(path).sample(n, temperature=temperature, seed=seed, max_len=max_len, line=line, fixed=fixed)


RECALL = ("in corpus", "most words shared with", "words shared", "nearest in the latent space", "cosine")


class _MemoEncoder:
    """Posterior means through the row memo, for ``Projection.recall``: the lines it encodes are the
    ones a tab places on the map next."""

    def __init__(self, path: str):
        self.path = path

    def mu(self, lines: list[str]) -> torch.Tensor:
        return torch.as_tensor(encode(self.path, tuple(lines), True, 0)[0])


def recall(path: str, lines: tuple[str, ...]) -> dict[str, list]:
    """What each line recalls of the corpus (see ``Projection.recall``), by column."""
    def compute(keys):
        found = load_projection(path).recall(_MemoEncoder(path), [line for _, line in keys])
        return list(zip(*(found[column] for column in RECALL)))

    rows = memo(path)([("recall", line) for line in lines], compute)
    return {column: [row[i] for row in rows] for i, column in enumerate(RECALL)}


def place(path: str, z) -> np.ndarray:
    """Map coordinates ``[M, 2]`` for the rows of the float32 array ``z`` (see ``Projection.place``), kept
    per row: the tabs' default lines are placed once for every session."""
    z = np.asarray(z, dtype=np.float32).reshape(len(z), -1)
    rows = memo(path)([("place", row.tobytes()) for row in z],
                      lambda keys: list(load_projection(path).place(torch.as_tensor(_codes(keys))).numpy()))
    return np.stack(rows) if rows else np.empty((0, 2), dtype=np.float32)


@st.cache_data(max_entries=64, show_spinner=False)
def search(path: str, pattern: str, regex: bool) -> np.ndarray:
    """Indices of the map's corpus lines that match (ValueError for an invalid expression)."""
    return load_projection(path).search(pattern, regex)


@st.cache_data(max_entries=16, show_spinner="Placing your lines on the map…")
def place_upload(path: str, lines: tuple[str, ...]) -> np.ndarray:
    """Map coordinates of an uploaded file's lines (posterior means, placed on the fixed layout)."""
    return load_projection(path).place(encode(path, lines, True, 0)[1]).numpy()


@st.cache_resource(show_spinner=False)
def frontend_dir() -> Path:
    """A folder the browser's map loads from: its page, plotly.js, and each map's corpus files
    (written once per map, then cached by the browser, so reruns never send the corpus again).

    The large files are gzipped (plotly.js ships so, see map_frontend/plotly/package.json; the corpus
    files are gzipped when written) and the page decompresses them: the server would otherwise compress
    every one of them again (at gzip's slowest level) for each browser that asks."""
    folder = Path(tempfile.mkdtemp(prefix="latent-verse-map-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name in ("index.html", "plotly-map.min.js.gz"):
        shutil.copy(Path(__file__).parent / "map_frontend" / name, folder)
    return folder


def _write_gzip(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner="Preparing the map…")
def map_files(path: str, step: int) -> str:
    """Write a map's corpus files for the browser, with the text of every ``step``-th line (the ones drawn
    as points); returns their common name, unique to the map and ``step``."""
    projection = load_projection(path)
    stamp = f"{path} {os.path.getmtime(Path(path) / TENSORS)} {step}"
    key = "map-" + hashlib.sha1(stamp.encode()).hexdigest()[:12]
    folder = frontend_dir()
    xy = projection.xy.numpy().astype(np.float32)
    _write_gzip(folder / f"{key}.xy.bin.gz", xy[:, 0].tobytes() + xy[:, 1].tobytes())
    _write_gzip(folder / f"{key}.lines.txt.gz", "\n".join(projection.lines[::step]).encode("utf-8"))
    return key


@st.cache_resource(max_entries=OPEN_CHECKPOINTS * 16, show_spinner=False)
def field_files(path: str, step: int, name: str) -> None:
    """Write the colour field ``name`` of a map for the browser, beside its ``map_files``, when a user
    first colours by it."""
    projection, key = load_projection(path), map_files(path, step)
    values = projection.fields[name]
    if name in NUMERIC:
        field = {"kind": "numeric", "label": NUMERIC[name],
                 "min": float(np.percentile(values, 1)), "max": float(np.percentile(values, 99))}
        shown = values.astype(np.float32)
    else:
        top = len(projection.names[name]) if name == "region" else 12  # every region has a colour
        shown, names, counts = _shown_categories(values, projection.names[name], top)
        field = {"kind": "categorical", "label": CATEGORICAL[name], "names": names, "counts": counts}
        shown = shown.astype(np.uint16)
    # the values as a typed array the browser reads as it is (Float32Array, Uint16Array): for a million
    # lines, a few MB to send
    _write_gzip(frontend_dir() / f"{key}.field.{name}.bin.gz", shown.tobytes())
    (frontend_dir() / f"{key}.field.{name}.json").write_text(json.dumps(field), encoding="utf-8")


def _shown_categories(codes: np.ndarray, names: list[str], top: int) -> tuple[np.ndarray, list[str], list[int]]:
    """A categorical field as the browser colours it: each line's category among the ``top`` most frequent
    by name (most frequent first) and "other" for the rest, their names, and each one's number of lines.
    The categories are ranked by their counts, so a million lines are never compared as strings."""
    counts = np.bincount(codes)  # categories are small codes: counted, never sorted
    present = np.flatnonzero(counts)
    inverse = np.cumsum(counts > 0)[codes] - 1  # each line's place among the present categories
    labels = [names[i] or "(unknown)" for i in present]
    ranked, shown_names = encode_categories(labels, top=top, weights=counts[present])
    shown = ranked[inverse]
    return shown, shown_names, np.bincount(shown, minlength=len(shown_names)).tolist()


def mask(indices: np.ndarray, n: int) -> str:
    """Corpus line indices as a base64 bit mask (about 12 KB for 95,000 lines)."""
    bits = np.zeros(n, dtype=bool)
    bits[indices] = True
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


@st.cache_data(max_entries=64, show_spinner="Fitting the direction on the corpus…")
def direction(path: str, prop: str, value: str | None):
    """A property's direction over the checkpoint's corpus map (ValueError for one it cannot fit)."""
    from vae_core.directions import direction_for

    return direction_for(load_projection(path), prop, value)


@st.cache_data(max_entries=64, show_spinner=False)
def dimension_effects(path: str, line: str, method: str, options: tuple):
    """Every dimension of a line's code set to -3..3 corpus spreads from its mean (a bit to 0 or 1), decoded."""
    from vae_core.directions import dimension_effects as effects
    from vae_core.directions import dimension_spread

    vae, codes = load_sampler(path), load_projection(path).codes
    z = vae.mu([line])
    if vae.bits:
        return effects(vae, z, [0.0, 1.0], method=method, **dict(options))
    return effects(vae, z, [-3, -2, -1, 0, 1, 2, 3], method=method, centre=codes.mean(dim=0),
                   scale=dimension_spread(codes), **dict(options))


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner="Probing what the code knows…")
def probes(path: str):
    """The probe table and each dimension's correlation with each property, over the corpus map."""
    from vae_core.directions import dimension_correlations, probe_table

    projection = load_projection(path)
    return probe_table(projection), dimension_correlations(projection)


@st.cache_resource(max_entries=OPEN_CHECKPOINTS, show_spinner=False)
def kl_per_dimension(path: str):
    """Mean KL of each latent dimension over the map's first 300 corpus lines."""
    return load_sampler(path).posterior(load_projection(path).lines[:300]).kl().mean(dim=0)
