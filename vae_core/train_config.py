"""The trainer's options: ``TrainConfig``, one field an option with its default and its help, and the
kebab-case command line made from it (``--kl-warmup`` sets ``kl_warmup``), which checks each value and
the rules that join several."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import asdict, dataclass, field

import torch

from . import checkpoint as ckpt
from . import cli
from .card import shown_path
from .cli import fraction, non_negative_float, non_negative_int, positive_float, positive_int, rate
from .model import MAX_LEN, MIN_COND_STD, DictConfig, ModelConfig
from .tokenizer import VOCAB_SIZE
from .validate import Range
from .vrnn import VRNNConfig


def opt(default, help: str, **extra):
    """A config field with its command-line help."""
    return field(default=default, metadata={"help": help, **extra})


LINE_LENGTH = Range(int, 1, MAX_LEN)
BATCH_SIZE = Range(int, 2)
PATHS = ("data", "out", "init", "tokenizer", "baseline")  # the options that name files or folders


def cutoffs(text: str) -> tuple[int, ...]:
    """The argparse ``type`` of ``--cutoffs``: increasing bounds below the vocabulary size, "500,4000"."""
    try:
        bounds = tuple(int(part) for part in text.split(","))
    except ValueError:
        bounds = ()
    if not bounds or not all(0 < a < b for a, b in zip(bounds, bounds[1:] + (VOCAB_SIZE,))):
        raise argparse.ArgumentTypeError(f"must be increasing integers between 0 and {VOCAB_SIZE}, separated by "
                                         f"commas, got {text!r}")
    return bounds


def refine_spec(text: str) -> str:
    """The argparse ``type`` of ``--refine``: auto, none, or ``gamma:epochs[:dropout]`` stages, "0.85:2:0.3,0.9:2"."""
    if text in ("auto", "none"):
        return text
    try:
        parsed = [parse_stage(part) for part in text.split(",")]
    except ValueError:
        parsed = []
    if not parsed or not all(0 < g < 1 and e > 0 and (d is None or 0 <= d < 1) for g, e, d in parsed):
        raise argparse.ArgumentTypeError(f"must be auto, none, or gamma:epochs stages separated by commas, each with "
                                         f"an optional :dropout (gamma between 0 and 1, epochs above 0, dropout in "
                                         f"[0, 1)), e.g. 0.85:2:0.3,0.9:2; got {text!r}")
    return text


def parse_stage(text: str) -> tuple[float, int, float | None]:
    """One ``--refine`` stage, "gamma:epochs" or "gamma:epochs:dropout", as (gamma, epochs, dropout or None)."""
    gamma, epochs, *rest = text.split(":")
    if len(rest) > 1:
        raise ValueError(text)
    return float(gamma), int(epochs), float(rest[0]) if rest else None


# the model options a TrainConfig sets directly (the others follow from --model and the data)
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size", "condition", "cond_mean",
                                                                     "cond_std", "latent", "bow", "spread"}


@dataclass
class TrainConfig(DictConfig):
    """Everything a training run needs; each field is a command-line option, its help and default beside it."""

    data: str = opt("data/poetry", "folder with train.txt (+ valid.txt, test.txt) or one file of lines")
    out: str = opt("checkpoints/my-model", "checkpoint directory to write")
    model: str = opt(
        "vae",
        "vae: sentence VAE; lm: the same decoder without a latent (baseline); "
        "syllable-vae: the VAE with each line's syllable count given to encoder and decoder; "
        "bernoulli-vae: the VAE with a code of --nz bits; "
        "vrnn: a latent per piece (Chung et al. 2015), sized by --emb-dim, --dec-hidden (its GRU) and --nz (per piece)",
        choices=ckpt.MODEL_KINDS,
    )
    # model size and regularisation (see vae_core.model.ModelConfig)
    emb_dim: int = opt(256, "piece embedding size", type=positive_int)
    enc_hidden: int = opt(256, "encoder LSTM units (per direction)", type=positive_int)
    bidirectional: bool = opt(False, "bidirectional encoder (--no-bidirectional: one direction)")
    dec_hidden: int = opt(512, "decoder LSTM units", type=positive_int)
    nz: int | None = opt(None, "latent dimensions (bits for bernoulli-vae); 64 for vae, 32 for the others",
                         type=positive_int)
    dropout: float = opt(0.3, "dropout on embeddings and decoder outputs", type=rate)
    z_skip: bool | None = opt(None, "skip-VAE: z also feeds the output layer (Dieng et al. 2019); on for the models "
                              "with a code, off for lm and vrnn")
    z_gate: bool | None = opt(None, "with the z skip: each step's decoder state gates, unit by unit, how much of the "
                              "skip's W z it adds (2 sigmoid(G [h; z]), 1 at the start); on for vae, off for the "
                              "others")
    word_dropout: float = opt(0.0, "chance of replacing a decoder input piece by <unk>", type=rate)
    bow_weight: float = opt(
        0.0, "weight of a bag-of-words loss on z (Zhao et al. 2017): z is also trained to predict the line's "
        "pieces in any order, which makes reconstructions keep more of the line's words, at a cost in "
        "likelihood (0 = off)", type=non_negative_float,
    )
    bn_gamma: float | None = opt(
        None, "BN-VAE: fixed scale of batch-normalised posterior means (0 = off); KL >= nz*gamma^2/2; "
        "for bernoulli-vae the scale of the normalised logits; 0.71 for vae, 1.0 for the others",
        type=non_negative_float,
    )
    match_prior: bool = opt(
        False, "with --bn-gamma below 1: fix every posterior's variance at 1 - gamma^2, so the codes of all lines "
        "together spread exactly like the prior N(0, I) and no KL is spent on a mismatch between them",
    )
    prior_p: float = opt(0.5, "bernoulli-vae: the prior's P(bit = 1)", type=fraction)
    estimator: str = opt(
        "score",
        "bernoulli-vae encoder gradients: score (score-function estimator with a running-mean baseline) "
        "or gumbel (straight-through Gumbel)",
        choices=["score", "gumbel"],
    )
    gumbel_tau: float = opt(1.0, "bernoulli-vae with --estimator gumbel: temperature of the relaxed bits",
                            type=positive_float)
    max_len: int = opt(48, "pieces per line; longer lines are truncated", type=LINE_LENGTH)
    cutoffs: tuple[int, ...] = opt(
        (500, 4000), "adaptive softmax output layer: the most frequent pieces are scored at every position "
        "(the head), the rest in clusters between these bounds, each scored only where it holds the next piece; "
        "a smaller head trains faster; e.g. 500,4000", type=cutoffs,
    )
    # optimisation
    epochs: int = opt(
        0, "training epochs of the first stage (0 = scaled to the corpus: 14 for the shipped corpus's 85,000 "
        "lines, times the square root of how much smaller the corpus is, between 3 and 150)",
        type=non_negative_int,
    )
    batch_size: int = opt(64, "lines per batch (batches group lines of similar length)", type=BATCH_SIZE)
    lr: float = opt(1e-3, "Adam learning rate", type=positive_float)
    lr_decay: float = opt(0.5, "multiply the learning rate by this when validation loss does not improve",
                          type=positive_float)
    keep: str = opt("best", "which epoch's weights the checkpoint keeps: best (lowest validation -ELBO) or last "
                    "(say, when an extra loss such as --bow-weight trades ELBO for something else)",
                    choices=["best", "last"])
    clip: float = opt(5.0, "gradient norm clipping (the largest gradient norm a step may take)", type=positive_float)
    # keeping the latent in use
    kl_schedule: str = opt("linear", "KL weight schedule", choices=["constant", "linear", "cyclical"])
    kl_warmup: float = opt(1.0, "linear: epochs to raise the KL weight from 0 to 1", type=non_negative_float)
    kl_cycles: int = opt(4, "cyclical: number of cycles (each ramps over its first half)", type=positive_int)
    free_bits: float = opt(0.0, "KL floor in nats, per dimension (for vrnn: per step, summed over its dimensions); "
                           "batch-averaged KL below it is not penalised",
                           type=non_negative_float)
    pretrain_epochs: int = opt(
        0,
        "autoencoder epochs (no KL, z = mu) before VAE "
        "training; the decoder is then re-initialised (Li et al. 2019)",
        type=non_negative_int,
    )
    aggressive: bool = opt(False, "aggressive encoder updates until mutual information stops rising (He et al. 2019)")
    aggressive_steps: int = opt(30, "most encoder-only steps per decoder step in aggressive mode", type=positive_int)
    # the fine-tuning stages after the first (see vae_core.recipe)
    refine: str = opt(
        "auto", "fine-tuning stages after the first, each from the one before with the matched prior at a BN "
        "scale: gamma:epochs stages, each with an optional :dropout (else --refine-dropout; "
        "with --epochs 0, epochs scaled to the corpus too); auto: 0.65:2:0.3,0.67:3,0.74:2,0.78:4 (the shipped "
        "recipe) for --model vae, none for the others; none: one stage",
        type=refine_spec,
    )
    refine_lr: float = opt(2.5e-4, "Adam learning rate of the fine-tuning stages", type=positive_float)
    refine_dropout: float = opt(0.5, "dropout of the fine-tuning stages that do not name their own", type=rate)
    refine_bow_weight: float = opt(0.2, "bag-of-words weight of the fine-tuning stages", type=non_negative_float)
    # the variance head, after the last stage
    spread_epochs: int | None = opt(
        None, "epochs after the last stage in which a head on the encoder's state learns each line's variances, "
        "every other weight fixed (the means stay as they are; a matched-prior model only): the matched prior "
        "gives every line the same variance, and the learned one tightens the bound from the encoder's q; 1 for "
        "vae, 0 for the others (with --epochs 0, scaled to the corpus too)", type=non_negative_int)
    spread_lr: float = opt(1e-3, "Adam learning rate of the variance head", type=positive_float)
    # data and run
    valid_fraction: float = opt(0.05, "share of lines held out for validation when there is no valid.txt",
                                type=fraction)
    max_lines: int = opt(0, "use only the first N training lines (0 = all)", type=non_negative_int)
    time_budget: float = opt(0.0, "minutes of training after which the first stage stops (0 = no limit)",
                             type=non_negative_float)
    card_iw_samples: int = opt(100, "importance samples for the test metrics in the model card (0 = no test metrics)",
                               type=non_negative_int)
    baseline: str = opt("", "LM checkpoint whose test NLL/PPL the model card reports beside this model's")
    tokenizer: str = opt("", "folder with en/en.wiki.bpe.vs10000.model (default: the shipped checkpoint's)")
    seed: int = opt(0, "random seed")
    threads: int = opt(0, "CPU threads for torch (0 = torch's default)", type=non_negative_int)
    device: str = opt("auto", "auto (CUDA when present), cpu or cuda", choices=cli.DEVICES)
    resume: bool = opt(False, "continue the run in --out from its last finished epoch")
    init: str = opt("", "start from the weights of this checkpoint (same sizes; fine-tuning, e.g. to a new --bn-gamma, "
                    "or to --match-prior from learned variances: the means are kept)")

    def __post_init__(self):
        """Sets each option that depends on ``--model`` and is left unset (None): the sentence VAE's recipe has
        a 64-dimensional code at BN scale 0.71 with the gated z skip; the other families a 32-dimensional code
        at 1.0, with the plain z skip where there is a z; only the sentence VAE's recipe ends by learning its
        variances."""
        vae = self.model == "vae"
        for name, value in {"nz": 64 if vae else 32, "bn_gamma": 0.71 if vae else 1.0,
                            "z_skip": self.model not in ("vrnn", "lm"), "spread_epochs": 1 if vae else 0}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.z_gate is None:
            self.z_gate = vae and self.z_skip  # the gate needs the skip it gates

    @property
    def condition(self) -> str:
        return "syllables" if self.model == "syllable-vae" else ""

    def model_config(self, cond: torch.Tensor | None = None) -> ModelConfig | VRNNConfig:
        """The model to build; ``cond`` (the training lines' conditions) sets its normalisation."""
        if self.model == "vrnn":
            return VRNNConfig(emb_dim=self.emb_dim, hidden=self.dec_hidden, nz=self.nz, dropout=self.dropout,
                              max_len=self.max_len, cutoffs=self.cutoffs)
        values = {name: getattr(self, name) for name in MODEL_FIELDS} | {"bow": self.bow_weight > 0}
        if self.model == "lm":
            values.update(nz=0, bn_gamma=0.0, match_prior=False, word_dropout=0.0, z_skip=False, z_gate=False,
                          bow=False)
        if self.model == "bernoulli-vae":
            values.update(latent="bernoulli")
        if self.condition:
            values.update(condition=self.condition, cond_mean=float(cond.mean()),
                          cond_std=max(float(cond.std()), MIN_COND_STD))
        return ModelConfig(**values)

    def recorded(self) -> dict:
        """The settings as a checkpoint records them: each path as the model card shows it (as given when
        relative, else relative to the working directory or only its folder's name), never a machine's own."""
        return asdict(self) | {name: shown_path(getattr(self, name)) for name in PATHS if getattr(self, name)}


def parse_args(argv=None, description: str | None = None) -> TrainConfig:
    """The options of ``argv``: each field's value checked by its ``type`` (see ``vae_core.cli``), then the
    rules that join several options; ``description`` heads the ``--help``."""
    parser = argparse.ArgumentParser(prog="python -m vae_core.train", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default  # as typed
        help_text = f.metadata["help"] if default is None else f"{f.metadata['help']} (default: {default})"
        if f.type.startswith("bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            kind = f.metadata.get("type") or {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(flag, type=kind, default=f.default, choices=f.metadata.get("choices"), help=help_text)
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    problems = [
        f"--{name.replace('_', '-')} must be {rule}"
        for name, ok, rule in [
            ("pretrain_epochs", not cfg.epochs or cfg.pretrain_epochs < cfg.epochs, "below --epochs"),
            ("refine", cfg.refine in ("auto", "none") or cfg.model in ("vae", "syllable-vae"),
             "auto or none except for --model vae and syllable-vae (the stages use the matched prior)"),
            ("aggressive", not (cfg.model == "vrnn" and cfg.aggressive), "off for --model vrnn"),
            ("pretrain_epochs", not (cfg.model == "vrnn" and cfg.pretrain_epochs), "0 for --model vrnn"),
            ("z_skip", not (cfg.model in ("vrnn", "lm") and cfg.z_skip), "off for --model vrnn and lm (no z)"),
            ("spread_epochs", not (cfg.model in ("vrnn", "lm", "bernoulli-vae") and cfg.spread_epochs),
             "0 for --model vrnn, lm and bernoulli-vae (no matched prior)"),
            ("z_gate", not cfg.z_gate or cfg.z_skip, "off without the z skip (it gates the skip)"),
            ("bow_weight", cfg.model in ("vae", "syllable-vae") or not cfg.bow_weight,
             "0 except for --model vae and syllable-vae (a Gaussian code the loss can train)"),
            ("match_prior", not cfg.match_prior or (cfg.model in ("vae", "syllable-vae") and 0 < cfg.bn_gamma < 1),
             "off except for --model vae and syllable-vae with --bn-gamma between 0 and 1"),
        ]
        if not ok
    ]
    if problems:
        parser.error("; ".join(problems))
    return cfg
