"""The map of a checkpoint's latent space: every corpus line's code, its place on a 2-D UMAP layout,
what a poet asks about it (length, syllables, rhyme, first word, punctuation, how well the model
reconstructs it) and named regions.

    python -m vae_core.projection --checkpoint checkpoints/poetry --data data/poetry
    python -m vae_core.projection --checkpoint checkpoints/poetry --data my_poems.txt --out maps/mine

The map is stored beside the weights (``map.safetensors.gz``, gzipped safetensors, and ``map.json``;
no pickle) and refers to its lines by their place in the source files rather than copying them: loading reads the files
back and refuses them if they changed. Codes are kept as 8-bit integers per dimension (a step of
under 1% of each dimension's range) and the layout in float16. UMAP is fitted on at most
``--fit-lines`` lines; the rest, and every new code, are placed on the fixed layout by
inverse-distance weighting of their nearest corpus codes, which is fast, deterministic and never
moves the corpus points.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from . import checkpoint as ckpt
from . import properties, recall, regions
from .cli import command
from .data import read_lines
from .evaluate import unigram_f1

TENSORS, META = "map.safetensors.gz", "map.json"
FORMAT = "latent-verse-map/2"
CHUNK = 2048  # lines encoded or decoded at once while building
FIRST_WORDS = 12  # most frequent first words kept by name (the rest are "other")
# What "Colour by" offers: numeric fields get a colour bar, categorical ones a legend.
NUMERIC = {"pieces": "length (pieces)", "words": "length (words)", "syllables": "syllables",
           "recon_f1": "reconstruction F1", "code_norm": "code norm"}
CATEGORICAL = {"rhyme": "end-rhyme sound", "first_word": "first word", "final_punct": "final punctuation",
               "split": "split", "region": "region"}
_DTYPES = {"pieces": torch.uint8, "words": torch.uint8, "syllables": torch.uint8, "recon_f1": torch.float16,
           "code_norm": torch.float16, "rhyme": torch.int16, "first_word": torch.int16, "final_punct": torch.int16,
           "split": torch.int16, "region": torch.int16}


@dataclass
class Projection:
    lines: list[str]  # the corpus lines on the map, in source order
    codes: torch.Tensor  # [N, nz] their posterior means
    xy: torch.Tensor  # [N, 2] their map coordinates
    fields: dict[str, np.ndarray] = field(default_factory=dict)  # per-line properties (see NUMERIC, CATEGORICAL)
    names: dict[str, list[str]] = field(default_factory=dict)  # category names of each categorical field
    region_words: list[list[str]] = field(default_factory=list)  # each region's most distinctive words
    sources: list[dict] = field(default_factory=list)  # the files the lines come from (path, split, lines, sha256)
    settings: dict = field(default_factory=dict)  # how the layout and regions were made
    hubness: np.ndarray | None = None  # [N] each code's mean cosine to its 10 nearest corpus codes (CSLS)
    lists: recall.InvertedLists | None = None  # the approximate code index of a large map
    _index: recall.CodeIndex | None = field(default=None, init=False, repr=False)
    _corpus: Corpus | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.lines)

    # ---- where a code lands and what it recalls --------------------------------------------
    def place(self, z, k: int = 8) -> torch.Tensor:
        """Map coordinates ``[M, 2]`` for codes ``z [M, nz]`` (a code equal to a corpus one lands on it)."""
        return place(self.code_index, self.xy, z, k)

    @property
    def code_index(self) -> recall.CodeIndex:
        if self._index is None:
            self._index = recall.CodeIndex(self.codes, hubness=self.hubness, lists=self.lists)
        return self._index

    @property
    def corpus(self) -> Corpus:
        """The lines with their word index and search, shared with other maps of the same files."""
        if self._corpus is None:
            self._corpus = Corpus.shared(self.lines, self.sources)
        return self._corpus

    @property
    def word_index(self) -> recall.WordIndex:
        return self.corpus.word_index

    def recall(self, sampler, lines: list[str]) -> dict[str, list]:
        """What each (generated) line recalls of the corpus: whether it is a corpus line word for word,
        the corpus line sharing most of its words (and the share of its words found there), and the
        nearest corpus code to its own by CSLS, a cosine corrected for hub lines (and that cosine)."""
        n = len(lines)
        out = {"in corpus": [False] * n, "most words shared with": [""] * n, "words shared": [float("nan")] * n,
               "nearest in the latent space": [""] * n, "cosine": [float("nan")] * n}
        keep = [i for i, line in enumerate(lines) if line.strip()]  # an empty decoding has no code
        if not keep:
            return out
        kept = [lines[i] for i in keep]
        exact = self.word_index.exact(kept)
        word_best, shared = self.word_index.best(kept)
        mu = sampler.mu(kept)
        code_best, _ = self.code_index.nearest(mu, 1, measure="csls")
        cosine = torch.nn.functional.cosine_similarity(mu, self.codes[torch.as_tensor(code_best[:, 0])], dim=1)
        cosine = cosine.clamp(-1.0, 1.0)  # rounding can pass 1 for a line's own code
        for row, i in enumerate(keep):
            out["in corpus"][i] = bool(exact[row] >= 0)
            if word_best[row] >= 0:
                out["most words shared with"][i] = self.lines[int(word_best[row])]
                out["words shared"][i] = float(shared[row])
            out["nearest in the latent space"][i] = self.lines[int(code_best[row, 0])]
            out["cosine"][i] = float(cosine[row])
        return out

    def search(self, pattern: str, regex: bool = False) -> np.ndarray:
        """Indices of the corpus lines matching ``pattern`` (see ``LineSearch``)."""
        return self.corpus.line_search(pattern, regex)

    def region_table(self) -> list[dict]:
        """Each region's name, size and centre on the map, largest first."""
        labels = self.fields["region"]
        sizes = np.bincount(labels, minlength=len(self.region_words))
        xy = self.xy.numpy()
        rows = []
        for r, words in enumerate(self.region_words):
            members = labels == r
            if sizes[r]:
                x, y = np.median(xy[members], axis=0)
                rows.append({"region": r, "name": " · ".join(words), "lines": int(sizes[r]), "x": float(x),
                             "y": float(y)})
        return sorted(rows, key=lambda row: -row["lines"])

    # ---- storage ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``map.safetensors.gz`` and ``map.json`` into ``directory`` (source paths relative to it)."""
        directory = Path(directory)
        quantised, offset, scale = quantise(self.codes)
        tensors = {"codes": quantised, "code_offset": offset, "code_scale": scale, "xy": self.xy.half()}
        for name, values in self.fields.items():
            values, dtype = np.asarray(values), _DTYPES[name]
            if dtype == torch.uint8 or len(self.names.get(name, range(256))) < 256:
                values, dtype = np.clip(values, 0, 255), torch.uint8  # counts and small category sets
            tensors[f"field.{name}"] = torch.as_tensor(values).to(dtype)
        if self.hubness is not None:
            tensors["hubness"] = torch.as_tensor(self.hubness).half()
        meta = {}
        if self.lists is not None:  # a large map: its indexes are stored, so it opens without building them
            tensors["lists.centroids"] = self.lists.centroids.half()
            tensors["lists.assignment"] = self.lists.assignment.to(torch.int16)
            counts, meta["vocabulary"] = recall.word_counts(self.lines)
            tensors["words.counts"] = torch.as_tensor(np.minimum(counts.data, 255).astype(np.uint8))
            tensors["words.words"] = torch.as_tensor(counts.indices.astype(np.int32))
            tensors["words.starts"] = torch.as_tensor(counts.indptr.astype(np.int64))
        sources = [{**s, "path": _relative(s["path"], directory)} for s in self.sources]
        # a large map is built on the machine that uses it, not shipped: uncompressed, a million lines'
        # map is 122 MB instead of 79 MB and is read in 0.33 s instead of 0.71 s
        ckpt.write_tensors(directory / TENSORS, tensors, level=0 if self.lists is not None else 9)
        ckpt.write_json(directory / META, {"format": FORMAT, "sources": sources, "names": self.names,
                                           "regions": self.region_words, "settings": self.settings, **meta})

    @classmethod
    def load(cls, directory: Path) -> Projection:
        """The stored map of a checkpoint; ``CheckpointError`` if it is missing, inconsistent, or its
        source files changed since it was built."""
        directory = Path(directory)
        meta = ckpt.read_json(directory / META)
        if meta.get("format") != FORMAT:
            raise ckpt.CheckpointError(f"{directory / META}: format {meta.get('format')!r}, expected {FORMAT!r}; "
                                      f"rebuild it with python -m vae_core.projection --checkpoint {directory}")
        tensors = ckpt.read_tensors(directory / TENSORS)
        try:
            sources = [{**s, "path": str(_source_path(directory, s["path"]))} for s in meta["sources"]]
            lines = read_sources(sources)
            corpus = Corpus.shared(lines, sources, _stored_counts(tensors, meta, len(lines)))
            codes = dequantise(tensors["codes"], tensors["code_offset"], tensors["code_scale"])
            xy = tensors["xy"].float()
            fields = {k.split(".", 1)[1]: v.numpy().astype(np.float32 if v.is_floating_point() else np.int64)
                      for k, v in tensors.items() if k.startswith("field.")}
        except (KeyError, TypeError, AttributeError) as err:
            raise ckpt.CheckpointError(f"{directory}: the stored map is incomplete ({err})") from err
        if not all(len(v) == len(corpus.lines) for v in [codes, xy, *fields.values()]):
            raise ckpt.CheckpointError(f"{directory / TENSORS}: the stored map is inconsistent with its sources")
        names = meta.get("names", {})
        for name, values in fields.items():
            if name in CATEGORICAL and len(values) and not 0 <= values.min() <= values.max() < len(names.get(name, ())):
                raise ckpt.CheckpointError(f"{directory / TENSORS}: the field {name!r} names categories the map "
                                           "does not hold")
        hubness = tensors["hubness"].float().numpy() if "hubness" in tensors else None
        lists = (recall.InvertedLists(tensors["lists.centroids"], tensors["lists.assignment"])
                 if "lists.centroids" in tensors else None)
        projection = cls(corpus.lines, codes, xy, fields, names, meta.get("regions", []), sources,
                         meta.get("settings", {}), hubness, lists)
        projection._corpus = corpus
        return projection


def _stored_counts(tensors: dict, meta: dict, lines: int) -> tuple | None:
    """The word counts of ``lines`` lines that a large map stores (see ``recall.word_counts``), or None."""
    if "words.counts" not in tensors:
        return None
    vocabulary = meta["vocabulary"]
    counts, words, starts = (tensors[f"words.{name}"].numpy() for name in ("counts", "words", "starts"))
    if (not isinstance(vocabulary, list) or len(starts) != lines + 1 or starts[0] != 0 or starts[-1] != len(words)
            or len(words) != len(counts) or (np.diff(starts) < 0).any() or (len(counts) and counts.min() < 1)
            or (len(words) and not 0 <= words.min() <= words.max() < len(vocabulary))):
        raise ckpt.CheckpointError("the stored map's word counts are inconsistent with its lines")
    return sp.csr_matrix((counts.astype(np.float64), words, starts), shape=(lines, len(vocabulary))), vocabulary


class Corpus:
    """A map's corpus lines with their word index (``recall.WordIndex``) and search (``LineSearch``),
    each built when first asked for. Maps of the same unchanged source files share one (the shipped
    checkpoints all map ``data/poetry``), so a server with all of them open holds the lines and their
    indexes once; it is freed with the last map that uses it."""

    _open: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # source files and checksums -> Corpus
    _open_lock = threading.Lock()

    def __init__(self, lines: list[str], counts: tuple | None = None):
        self.lines, self._counts, self._lock = lines, counts, threading.Lock()  # counts: a large map's stored ones
        self._words: recall.WordIndex | None = None
        self._search: LineSearch | None = None

    @classmethod
    def shared(cls, lines: list[str], sources: list[dict], counts: tuple | None = None) -> Corpus:
        """The open corpus of the same source files, else a new one of ``lines`` (and their stored word
        ``counts``, if any). Files are the same when their paths and checksums are, and only maps that
        record a checksum for each file share."""
        if not sources or not all("sha256" in s for s in sources):
            return cls(lines, counts)
        key = tuple((str(Path(s["path"]).resolve()), s["sha256"]) for s in sources)
        with cls._open_lock:
            corpus = cls._open.get(key)
            if corpus is None:
                corpus = cls._open[key] = cls(lines, counts)
            return corpus

    @property
    def word_index(self) -> recall.WordIndex:
        with self._lock:
            if self._words is None:
                self._words, self._counts = recall.WordIndex(self.lines, self._counts), None
            return self._words

    def line_search(self, pattern: str, regex: bool = False) -> np.ndarray:
        with self._lock:
            if self._search is None:
                self._search = LineSearch(self.lines)
        return self._search(pattern, regex)


class LineSearch:
    """Word, phrase or regular-expression search over many lines at once: the lines are joined into
    one text, so a search is one scan by the ``re`` engine instead of a loop over lines."""

    def __init__(self, lines: list[str]):
        lower = [line.lower() for line in lines]  # words and phrases are found here, by a literal scan
        self.text, self.lower = "\n".join(lines), "\n".join(lower)
        self.starts, self.lower_starts = _starts(lines), _starts(lower)  # lowering may change a line's length

    def __call__(self, pattern: str, regex: bool = False) -> np.ndarray:
        """Indices of the lines that match, case-insensitively: a plain ``pattern`` matches as whole
        words (``sea`` finds "the sea", not "season"); with ``regex`` it is a Python regular
        expression (``^`` and ``$`` mark each line's start and end). An invalid one is a ValueError."""
        pattern = pattern.strip()
        if not pattern:
            return np.empty(0, dtype=np.int64)
        if regex:
            try:
                compiled = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
            except re.error as err:
                raise ValueError(f"not a valid regular expression: {err}") from None
            offsets, starts = [m.start() for m in compiled.finditer(self.text)], self.starts
        else:
            # A pattern that starts with a literal is scanned for fast; word boundaries are checked after.
            phrase = re.compile(r"\s+".join(map(re.escape, pattern.lower().split())))
            text = self.lower
            offsets = [m.start() for m in phrase.finditer(text)
                       if not _word_at(text, m.start() - 1) and not _word_at(text, m.end())]
            starts = self.lower_starts
        offsets = np.asarray(offsets, dtype=np.int64)
        return np.unique(np.searchsorted(starts, offsets, side="right") - 1)


def _starts(lines: list[str]) -> np.ndarray:
    """Where each line starts in the lines joined by newlines."""
    lengths = np.fromiter((len(line) + 1 for line in lines), dtype=np.int64, count=len(lines))
    return np.concatenate([[0], np.cumsum(lengths)[:-1]])


def _word_at(text: str, i: int) -> bool:
    """Whether ``text[i]`` is a letter, digit or underscore (False outside the text)."""
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")


def place(index: recall.CodeIndex, xy: torch.Tensor, z, k: int = 8) -> torch.Tensor:
    """Coordinates for codes ``z``: the inverse-square-distance mean of their ``k`` nearest indexed
    codes' coordinates ``xy``."""
    z = torch.as_tensor(z, dtype=torch.float32).reshape(-1, index.nz)
    if len(z) == 0:
        return torch.empty(0, 2)
    found = torch.as_tensor(index.nearest(z, min(k, len(index)), measure="euclidean")[0])
    # the search ranks by |z|^2 + |c|^2 - 2 z.c, which leaves rounding where z = c: measured directly,
    # a corpus code is at distance 0 from itself and lands on its own point
    distance = (z.unsqueeze(1) - index.codes[found]).norm(dim=-1)
    weight = 1.0 / (distance + 1e-6) ** 2
    weight = weight / weight.sum(dim=1, keepdim=True)
    return (weight.unsqueeze(-1) * xy[found]).sum(dim=1)


def quantise(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes as int8 per dimension: ``codes ~ offset + scale * q`` with q in [-127, 127]."""
    low, high = codes.min(dim=0).values, codes.max(dim=0).values
    offset, scale = (high + low) / 2, ((high - low) / 254).clamp_min(1e-8)
    q = torch.round((codes - offset) / scale).clamp(-127, 127).to(torch.int8)
    return q, offset.float(), scale.float()


def dequantise(q: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float().mul_(scale).add_(offset)  # in place: one array of codes, however many lines


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _relative(path: str, directory: Path) -> str:
    """``path`` relative to ``directory`` (so a checkpoint folder and its data move together)."""
    try:
        return os.path.relpath(Path(path).resolve(), Path(directory).resolve())
    except ValueError:  # another drive
        return str(Path(path).resolve())


def _source_path(directory: Path, stored: str) -> Path:
    """A map's source file: ``stored`` relative to the map's directory, else (a checkpoint folder moved
    away from the repository) a file of the repository's ``data/`` looked up under ``ckpt.data_root()``."""
    path = (directory / stored).resolve()
    parts = Path(stored).parts
    if path.is_file() or "data" not in parts:
        return path
    return ckpt.data_root().joinpath(*parts[parts.index("data") + 1:]).resolve()


def source_files(data: str | Path) -> list[dict]:
    """The files a map is built from: one file, or every ``*.txt`` of a folder (its split is the file's
    name: train, valid, test)."""
    data = Path(data)
    files = sorted(data.glob("*.txt")) if data.is_dir() else [data]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(f"no lines to map: {data} is not a text file or a folder of .txt files")
    return [{"path": str(f.resolve()), "split": f.stem if data.is_dir() else "lines", "sha256": _sha256(f)}
            for f in files]


def read_sources(sources: list[dict]) -> list[str]:
    """The lines of every source file, checked against the count and checksum stored with the map."""
    lines = []
    for source in sources:
        path = Path(source["path"])
        if not path.is_file():
            raise ckpt.CheckpointError(f"the map's lines are missing: {path} not found")
        if "sha256" in source and _sha256(path) != source["sha256"]:
            raise ckpt.CheckpointError(f"{path} changed since the map was built: rebuild it with "
                                       "python -m vae_core.projection")
        part = read_lines(path)
        if "lines" in source and len(part) != source["lines"]:
            raise ckpt.CheckpointError(f"{path} has {len(part)} lines, the map expects {source['lines']}")
        lines.extend(part)
    return lines


# ---- building ------------------------------------------------------------------------------
@dataclass
class MapConfig:
    neighbours: int = 15  # UMAP n_neighbors: larger keeps more global structure
    min_dist: float = 0.1  # UMAP min_dist: smaller packs similar lines tighter
    fit_lines: int = 100_000  # UMAP is fitted on at most this many lines; the rest are placed
    regions: int = 16  # named regions (k-means clusters)
    regions_on: str = "layout"  # cluster the 2-D layout (regions are places on the map) or the codes
    reconstruct: bool = True  # score each line's greedy reconstruction (unigram F1); costs one decoding pass
    seed: int = 0  # line sample, layout and clusters


def encode_corpus(sampler, lines: list[str], progress: bool = True) -> torch.Tensor:
    """Posterior means of many lines, in chunks (with a progress bar)."""
    parts = [sampler.mu(lines[i: i + CHUNK]) for i in tqdm(range(0, len(lines), CHUNK), desc="encoding",
                                                           disable=not progress, unit="chunk")]
    return torch.cat(parts) if parts else torch.empty(0, sampler.nz)


def reconstruction_f1(sampler, lines: list[str], codes: torch.Tensor, syllables: np.ndarray,
                      progress: bool = True) -> np.ndarray:
    """Unigram F1 of each line's greedy decoding of its posterior mean against the line (a model
    conditioned on syllables is given each line's own count)."""
    syllables = syllables if sampler.condition == "syllables" else None
    f1 = np.zeros(len(lines), dtype=np.float32)
    for i in tqdm(range(0, len(lines), CHUNK), desc="reconstructing", disable=not progress, unit="chunk"):
        options = {} if syllables is None else {"syllables": syllables[i: i + CHUNK].tolist()}
        decoded = sampler.greedy(codes[i: i + CHUNK], **options)
        f1[i: i + len(decoded)] = [unigram_f1(line, out) for line, out in zip(lines[i: i + CHUNK], decoded)]
    return f1


def layout(codes: torch.Tensor, config: MapConfig) -> torch.Tensor:
    """UMAP coordinates of every code: fitted on at most ``fit_lines`` of them, the rest placed."""
    import umap  # slow to import (numba); only needed when a map is built

    n = len(codes)
    fitted = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))[: config.fit_lines]
    fitted = fitted.sort().values
    reducer = umap.UMAP(n_neighbors=min(config.neighbours, len(fitted) - 1), min_dist=config.min_dist,
                        random_state=config.seed, n_jobs=1)  # seeded UMAP runs on one thread
    xy = torch.zeros(n, 2)
    xy[fitted] = torch.from_numpy(reducer.fit_transform(codes[fitted].numpy())).float()
    rest = torch.ones(n, dtype=torch.bool)
    rest[fitted] = False
    if rest.any():
        index = recall.CodeIndex(codes[fitted], hubness=np.zeros(len(fitted)))  # placing needs no hubness
        xy[rest] = torch.cat([place(index, xy[fitted], codes[rest][i: i + 50_000])
                              for i in range(0, int(rest.sum()), 50_000)])
    return xy


def build(sampler, sources: list[dict], config: MapConfig | None = None, progress: bool = True) -> Projection:
    """Encode every line of ``sources``, measure its properties, lay the codes out and name regions."""
    config = config or MapConfig()
    parts = [read_lines(s["path"]) for s in sources]
    lines = [line for part in parts for line in part]
    if len(lines) < 10:
        raise ValueError(f"a map needs at least 10 lines, the data has {len(lines)}")
    sources = [{**s, "lines": len(part)} for s, part in zip(sources, parts)]
    codes = encode_corpus(sampler, lines, progress)
    measured = properties.line_properties(lines, sampler.tokenizer)
    fields = {name: measured[name] for name in ("pieces", "words", "syllables")}
    names = {}
    for name, top in (("rhyme", None), ("first_word", FIRST_WORDS), ("final_punct", None)):
        fields[name], names[name] = properties.encode_categories(measured[name], top=top)
    splits = [s["split"] for s in sources for _ in range(s["lines"])]
    fields["split"], names["split"] = properties.encode_categories(splits)
    fields["code_norm"] = codes.norm(dim=1).numpy()
    if config.reconstruct:
        fields["recon_f1"] = reconstruction_f1(sampler, lines, codes, measured["syllables"], progress)
    xy = layout(codes, config)
    k = min(config.regions, len(lines))
    fields["region"] = regions.cluster((codes if config.regions_on == "codes" else xy).numpy(), k, config.seed)
    region_words = [[word for word, _ in top] for top in regions.label(lines, fields["region"])]
    names["region"] = [" · ".join(words) for words in region_words]
    settings = {"neighbours": config.neighbours, "min_dist": config.min_dist, "fit_lines": config.fit_lines,
                "regions": k, "regions_on": config.regions_on, "seed": config.seed}
    index = recall.CodeIndex(codes, seed=config.seed)  # approximate (inverted lists) for a large corpus
    return Projection(lines, codes, xy, fields, names, region_words, sources, settings, index.hubness.numpy(),
                      index.lists)


@command
def main(argv=None) -> int:
    defaults = MapConfig()
    parser = argparse.ArgumentParser(prog="python -m vae_core.projection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--data", default=str(ckpt.data_root() / "poetry"),
                        help="a file of lines, or a folder of .txt files (train, valid, test) (default: data/poetry)")
    parser.add_argument("--out", default=None, help="where to write the map (default: the checkpoint directory)")
    parser.add_argument("--neighbours", type=int, default=defaults.neighbours, help="UMAP n_neighbors")
    parser.add_argument("--min-dist", type=float, default=defaults.min_dist, help="UMAP min_dist")
    parser.add_argument("--fit-lines", type=int, default=defaults.fit_lines,
                        help="fit UMAP on at most this many lines and place the rest (large corpora)")
    parser.add_argument("--regions", type=int, default=defaults.regions, help="number of named regions")
    parser.add_argument("--regions-on", choices=("codes", "layout"), default=defaults.regions_on,
                        help="cluster the codes or the 2-D layout into regions")
    parser.add_argument("--no-reconstruct", dest="reconstruct", action="store_false",
                        help="skip scoring each line's reconstruction (saves one decoding pass)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (layout and regions)")
    args = parser.parse_args(argv)
    if args.neighbours < 2 or args.fit_lines < 10 or args.regions < 1 or not 0 <= args.min_dist <= 1:
        parser.error("--neighbours must be at least 2, --fit-lines at least 10, --regions at least 1 and "
                     "--min-dist within [0, 1]")
    from .sampler import load

    config = MapConfig(args.neighbours, args.min_dist, args.fit_lines, args.regions, args.regions_on,
                       args.reconstruct, args.seed)
    sampler = load(args.checkpoint)
    if sampler.latent == "sequence":
        raise ValueError("a VRNN has no code for a whole line, so it has no map")
    started = time.monotonic()
    projection = build(sampler, source_files(args.data), config)
    projection.save(Path(args.out) if args.out else sampler.directory)
    print(f"mapped {len(projection)} lines in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
