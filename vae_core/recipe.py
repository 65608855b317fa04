"""The stages one training command runs, and the defaults it scales to the size of the corpus.

For ``--model vae`` the default recipe is the shipped model's: a first stage from scratch (BN-VAE
with learned posterior variances at ``--bn-gamma``), then fine-tuning stages (``--refine``), each
from the one before, with the matched prior at a rising BN scale, the bag-of-words loss and more
dropout; after the last, a head learns each line's variances (``--spread-epochs``). Every stage
but the last trains into ``OUT/stages/N`` (kept for ``--resume`` and removed when the last stage
ends); the last trains into ``OUT``, whose ``metrics.jsonl`` holds every stage's epochs and the
head's.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

from . import checkpoint as ckpt
from .train_config import TrainConfig, parse_stage

# (BN scale, epochs, dropout; None: --refine-dropout) of each stage after the first
SHIPPED_REFINE = ((0.65, 2, 0.3), (0.67, 3, None), (0.74, 2, None), (0.78, 4, None))
REFINED_MODELS = ("vae",)  # the models the default --refine applies to
REFERENCE_LINES = 85_000  # the shipped corpus's training lines, for which the default epochs are measured
REFERENCE_EPOCHS = 14  # the first stage's epochs at that size
MIN_EPOCHS, MAX_EPOCHS = 3, 150
FEW_LINES = 2_000  # below this, a VAE learns little of a code: the trainer warns


def refine_stages(refine: str, model: str) -> list[tuple[float, int, float | None]]:
    """The (BN scale, epochs, dropout or None) of each fine-tuning stage that ``--refine`` asks of ``--model``, at the
    shipped corpus's size."""
    if refine == "none" or (refine == "auto" and model not in REFINED_MODELS):
        return []
    if refine == "auto":
        return list(SHIPPED_REFINE)
    return [parse_stage(part) for part in refine.split(",")]


def scale(n_lines: int) -> float:
    """How many times the shipped corpus's epochs a corpus of ``n_lines`` training lines gets: the square
    root of how much smaller it is (a smaller corpus needs more passes for as many steps, but not as
    many steps as a larger one)."""
    return math.sqrt(REFERENCE_LINES / max(n_lines, 1))


def auto_epochs(n_lines: int, epochs: int = REFERENCE_EPOCHS, least: int = MIN_EPOCHS) -> int:
    """``epochs`` measured on the shipped corpus, scaled to ``n_lines`` lines (see ``scale``), at least
    ``least`` and at most ``MAX_EPOCHS``."""
    return min(MAX_EPOCHS, max(least, round(epochs * scale(n_lines))))


def stages(cfg: TrainConfig, n_lines: int) -> list[TrainConfig]:
    """Each run the command makes, in order, for a corpus of ``n_lines`` training lines: ``cfg`` itself,
    then each fine-tuning stage from the one before, the last with the variance head's epochs; with
    ``--epochs 0`` every stage's epochs are scaled to the corpus (see ``auto_epochs``), else they are as
    given."""
    out = Path(cfg.out)
    refine = refine_stages(cfg.refine, cfg.model)
    first = dataclasses.replace(cfg, epochs=cfg.epochs or auto_epochs(n_lines),
                                out=str(out / "stages" / "1") if refine else cfg.out, spread_epochs=0)
    if first.pretrain_epochs >= first.epochs:
        raise ValueError(f"--pretrain-epochs must be below the {first.epochs} epochs of the first stage")
    runs = [first]
    for number, (gamma, epochs, dropout) in enumerate(refine, start=2):
        runs.append(dataclasses.replace(
            cfg, out=str(out / "stages" / str(number)) if number <= len(refine) else cfg.out, init=runs[-1].out,
            resume=False, epochs=epochs if cfg.epochs else auto_epochs(n_lines, epochs, least=1), bn_gamma=gamma,
            match_prior=True, bow_weight=cfg.refine_bow_weight, lr=cfg.refine_lr,
            dropout=cfg.refine_dropout if dropout is None else dropout,
            kl_warmup=0.0, keep="last", pretrain_epochs=0, aggressive=False, time_budget=0.0, spread_epochs=0))
    if cfg.spread_epochs:
        epochs = cfg.spread_epochs if cfg.epochs else auto_epochs(n_lines, cfg.spread_epochs, least=1)
        runs[-1] = dataclasses.replace(runs[-1], spread_epochs=epochs)
    return runs


def finished(stage: TrainConfig) -> bool:
    """Whether ``stage`` has trained all its epochs (or its time budget) in its output folder."""
    if not _begun(stage):
        return False
    counters = ckpt.read_json(Path(stage.out) / "resume" / "state.json")["counters"]
    return counters["epoch"] >= stage.epochs or bool(stage.time_budget and
                                                     counters["seconds"] >= stage.time_budget * 60)


def plan(cfg: TrainConfig, runs: list[TrainConfig]) -> list[TrainConfig]:
    """Which of the command's stages ``runs`` (see ``stages``) are still to train: with ``--resume``, the
    first unfinished one resumes (where it has begun) and the finished ones are skipped (when all are,
    the last resumes with nothing left to train, learns its variances if it has not, and writes its card
    again); without it, a folder holding any stage is refused."""
    if not cfg.resume:
        if len(runs) > 1 and (Path(cfg.out) / "stages").exists():
            raise ValueError(f"{cfg.out} holds an unfinished run (stages/): pass --resume to go on, or choose "
                             f"another --out")
        return runs
    # a stage begins only once the one before has finished (whose folder goes when the last stage ends)
    begun = [number for number, stage in enumerate(runs) if _begun(stage)]
    if not begun:
        raise ValueError(f"--resume: no resumable run in {cfg.out} (missing resume/state.json)")
    latest = begun[-1]
    if finished(runs[latest]) and latest + 1 < len(runs):
        latest += 1
    return [dataclasses.replace(runs[latest], resume=_begun(runs[latest]))] + runs[latest + 1:]


def _begun(stage: TrainConfig) -> bool:
    return (Path(stage.out) / "resume" / "state.json").is_file()


def warn_if_small(n_lines: int) -> None:
    """A warning on stderr when a corpus is too small for a VAE to learn a code worth exploring."""
    if n_lines < FEW_LINES:
        print(f"warning: {n_lines} training lines is too few to train a VAE: its code will carry little of each "
              f"line and its lines will repeat the corpus; {FEW_LINES:,} lines or more are needed, and 20,000 or "
              f"more make a map worth exploring", file=sys.stderr)
