"""Checkpoint directories: plain files, no pickle, every write atomic.

    config.json          format version, kind ("vrnn" for a VRNN), model config, training settings, epoch,
                         validation metrics
    model.safetensors    weights, parameters in float16 (loading casts them back to float32), and the
                         piece-frequency order of the output layer
    tokenizer/en/...     the BPEmb SentencePiece model, so loading never needs the network
    metrics.jsonl        one JSON object per epoch (the app plots it)
    README.md            the model card
    resume/              last epoch's float32 weights, optimiser state and counters (for ``--resume``)
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as from_bytes
from safetensors.torch import load_file, save_file
from safetensors.torch import save as to_bytes

from .model import ModelConfig, SentenceVAE
from .tokenizer import LANG, MODEL_NAME, Tokenizer, TokenizerError
from .vrnn import VRNN, VRNNConfig

FORMAT = "latent-verse/1"
_SOURCE_TREE = Path(__file__).resolve().parent.parent  # a checkout, or an editable install


def _root(variable: str, name: str) -> Path:
    """``$variable`` if set, else the folder ``name`` beside the package's source tree (a checkout or an
    editable install), else ``./name``."""
    if os.environ.get(variable):
        return Path(os.environ[variable])
    beside = _SOURCE_TREE / name
    return beside if beside.is_dir() else Path(name)


def shipped_root() -> Path:
    """The folder of checkpoints: ``$LATENT_VERSE_CHECKPOINTS``, else the repository's ``checkpoints/``."""
    return _root("LATENT_VERSE_CHECKPOINTS", "checkpoints")


def data_root() -> Path:
    """The folder of corpora the shipped maps read their lines from: ``$LATENT_VERSE_DATA``, else the
    repository's ``data/``."""
    return _root("LATENT_VERSE_DATA", "data")


SHIPPED = shipped_root() / "poetry"  # the default model (its root resolved once, on import)
MODEL_KINDS = ("vae", "lm", "syllable-vae", "bernoulli-vae", "vrnn")  # config.json's "kind": train's --model
MODEL_CLASSES = {"vrnn": (VRNN, VRNNConfig)}  # by kind; every other kind is a sentence VAE
STORED_DTYPE = torch.float16  # parameters on disk: half the bytes, no measured figure moves


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or corrupt."""


def _atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the finished file into place in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], level: int = 9) -> None:
    """Tensors as safetensors; gzipped at ``level`` when ``path`` ends in ``.gz`` (the same bytes for the
    same tensors; level 0 stores them uncompressed in the gzip format, which reads three times faster)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    if Path(path).suffix == ".gz":
        data = gzip.compress(to_bytes(tensors), compresslevel=level, mtime=0)
        _atomic(Path(path), lambda tmp: Path(tmp).write_bytes(data))
    else:
        _atomic(Path(path), lambda tmp: save_file(tensors, tmp))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (gzipped when ``path`` ends in ``.gz``); ``CheckpointError`` if it is
    missing or corrupt."""
    if not path.is_file():
        raise CheckpointError(f"missing weights file: {path}")
    try:
        return from_bytes(gzip.decompress(path.read_bytes())) if path.suffix == ".gz" else load_file(path)
    except (SafetensorError, OSError, ValueError, EOFError, zlib.error) as err:
        raise CheckpointError(f"corrupt weights file {path}: {err}") from err


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"missing file: {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"corrupt JSON in {path}: {err}") from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} should hold a JSON object")
    return obj


def copy_tokenizer(source_dir: Path, directory: Path) -> None:
    """Put the BPEmb model file under ``directory/tokenizer`` (where ``Tokenizer`` looks)."""
    src = Path(source_dir) / LANG / MODEL_NAME
    dst = Path(directory) / "tokenizer" / LANG / MODEL_NAME
    if not src.is_file():
        raise TokenizerError(f"tokenizer model not found: expected {MODEL_NAME} at {src}")
    if dst.resolve() != src.resolve():
        _atomic(dst, lambda tmp: shutil.copyfile(src, tmp))


def stored_state(model: SentenceVAE | VRNN) -> dict[str, torch.Tensor]:
    """The weights as ``save_model`` writes them: floating-point parameters in ``STORED_DTYPE`` unless
    a value is out of its range; buffers (batch-norm running statistics, which the model divides by,
    and integer ones) as they are."""
    parameters = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    state = model.state_dict()
    for key, value in state.items():
        if key in parameters and value.is_floating_point():
            stored = value.to(STORED_DTYPE)
            if torch.isfinite(stored).all():
                state[key] = stored
    return state


def save_model(directory: Path, model: SentenceVAE | VRNN, info: dict) -> None:
    """Write weights (see ``stored_state``), then ``config.json`` (model config + ``info``, whose
    ``kind`` says which model class loads it) into ``directory``."""
    directory = Path(directory)
    write_tensors(directory / "model.safetensors", stored_state(model))
    write_json(directory / "config.json", {"format": FORMAT, "model": model.config.to_dict(), **info})


def build_model(directory: Path, weights: str = "model.safetensors") -> tuple[SentenceVAE | VRNN, dict]:
    """A model from a checkpoint directory (a VRNN for kind "vrnn", else a sentence VAE), checked key
    by key and shape by shape."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    config = read_json(directory / "config.json")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{directory / 'config.json'}: format {config.get('format')!r}, expected {FORMAT!r}")
    if config.get("kind") not in MODEL_KINDS:
        raise CheckpointError(f"{directory / 'config.json'}: unknown kind {config.get('kind')!r}, "
                              f"expected one of {MODEL_KINDS}")
    try:
        model_class, config_class = MODEL_CLASSES.get(config.get("kind"), (SentenceVAE, ModelConfig))
        model = model_class(config_class.from_dict(config["model"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{directory / 'config.json'}: invalid model config: {err}") from err
    state = read_tensors(directory / weights)
    expected = model.state_dict()
    missing, extra = expected.keys() - state.keys(), state.keys() - expected.keys()
    if missing or extra:
        raise CheckpointError(
            f"{directory / weights} does not match config.json: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(extra)[:5]}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{directory / weights}: {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{directory / weights}: {key} holds NaN or infinite values")
    ranks, vocab_size = state["rank_of"], model.config.vocab_size  # piece id -> output-layer rank
    if ranks.is_floating_point() or not torch.equal(ranks.long().sort().values, torch.arange(vocab_size)):
        raise CheckpointError(f"{directory / weights}: rank_of must be a permutation of the piece ids "
                              f"0..{vocab_size - 1}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    return model, config


def load_checkpoint(directory: str | Path | None = None) -> tuple[SentenceVAE | VRNN, Tokenizer, dict]:
    """Model (in eval mode), tokenizer and config of a checkpoint; the shipped one by default."""
    directory = Path(directory) if directory is not None else SHIPPED
    model, config = build_model(directory)
    try:
        tokenizer = Tokenizer(directory / "tokenizer", max_len=model.config.max_len)
    except TokenizerError as err:
        raise CheckpointError(str(err)) from err
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{directory / 'tokenizer' / LANG / MODEL_NAME} has {tokenizer.vocab_size} pieces, "
                              f"but config.json's vocab_size is {model.config.vocab_size}")
    return model, tokenizer, config


def read_metrics(directory: str | Path) -> list[dict]:
    """The per-epoch metrics log (empty if the checkpoint has none), every row with its training
    ``stage`` (1, the run from scratch, where a row has none; each fine-tuning stage one more);
    unreadable lines are skipped."""
    path = Path(directory) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append({"stage": 1, **row})
    return rows


def append_metrics(directory: Path, row: dict) -> None:
    path = Path(directory) / "metrics.jsonl"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    write_text(path, old + json.dumps(row) + "\n")


# ---- optimiser state for --resume ------------------------------------------------------
def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict, list]:
    """An optimiser's state as flat tensors (for safetensors) plus its JSON-able param groups."""
    state = optimizer.state_dict()
    tensors = {
        f"{prefix}.{index}.{name}": torch.as_tensor(value)
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, prefix: str, tensors: dict, groups: list) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
