"""A training run's state: how it starts (new weights, a checkpoint's with ``--init``, or where it stopped
with ``--resume``), what ``resume/`` keeps of it, and the metrics log it begins.

The log is the model's history. A fine-tuned model's log starts with its source's rows, each keeping
its ``stage`` (1 where a row has none: the run from scratch); the new run is one stage more.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import distributed
from .model import Baseline, SentenceVAE
from .train_config import TrainConfig
from .vrnn import VRNN


def param_groups(model: SentenceVAE | VRNN) -> tuple[list, list]:
    """Encoder parameters (for aggressive updates) and all the others."""
    encoder = [p for n, p in model.named_parameters() if n.split(".")[0] in ("encoder", "to_posterior", "mu_shift")]
    ids = {id(p) for p in encoder}
    return encoder, [p for p in model.parameters() if id(p) not in ids]


class Run:
    """Mutable state of a training run: everything ``--resume`` restores."""

    def __init__(self, cfg: TrainConfig, model: SentenceVAE | VRNN, device):
        self.cfg, self.model, self.device = cfg, model, device
        enc, dec = param_groups(model)
        # fused: one kernel per step for all parameters (about a tenth of a CPU step otherwise)
        self.enc_opt = torch.optim.Adam(enc, lr=cfg.lr, fused=True) if enc else None
        self.dec_opt = torch.optim.Adam(dec, lr=cfg.lr, fused=True)
        self.stage = 1  # the model's training stage: 1 from scratch, each fine-tuning one more
        self.epoch = 0  # epochs finished
        self.step = 0  # optimisation steps since VAE training began (drives the KL schedule)
        self.lr = cfg.lr
        self.best = math.inf
        self.best_mi = -math.inf
        coded = isinstance(model, SentenceVAE) and not model.is_lm  # a code for each line
        self.pretraining = cfg.pretrain_epochs if coded else 0  # autoencoder epochs before VAE training
        self.aggressive = cfg.aggressive and coded
        self.seconds = 0.0  # wall time of the run so far, resumes included (what --time-budget limits)
        self.baseline = Baseline()  # the score-function estimator's (bit-vector codes)
        self.ddp = None  # under torchrun: the loss in DistributedDataParallel (see vae_core.train.Objective)

    @property
    def optimizers(self):
        return [opt for opt in (self.enc_opt, self.dec_opt) if opt is not None]

    def counters(self) -> dict:
        names = ("stage", "epoch", "step", "lr", "best", "best_mi", "aggressive", "seconds")
        return {k: getattr(self, k) for k in names} | {"baseline": self.baseline.per_piece}

    def end_epoch(self, valid: dict) -> bool:
        """What an epoch's validation metrics ``valid`` decide; returns whether the checkpoint keeps the
        epoch's weights (the best so far, or every one with ``--keep last``; never an autoencoder's).

        The last pretraining epoch keeps its encoder and starts the decoder again (Li et al. 2019). After
        pretraining, an epoch that does not improve lowers the learning rate by ``--lr-decay``, and
        aggressive updates go on while the mutual information rises (He et al. 2019).
        """
        if self.epoch == self.pretraining:
            self.model.reset_parameters(decoder_only=True)
            self.dec_opt.state.clear()
        if self.epoch <= self.pretraining:
            return False
        improved = valid["elbo"] < self.best
        if improved:
            self.best = valid["elbo"]
        else:
            self.set_lr(self.lr * self.cfg.lr_decay)
        if self.aggressive:
            self.aggressive = valid["mi"] > self.best_mi
            self.best_mi = max(self.best_mi, valid["mi"])
        return improved or self.cfg.keep == "last"

    def save(self, out: Path) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        groups = {}
        for name, opt in (("enc", self.enc_opt), ("dec", self.dec_opt)):
            if opt is not None:
                flat, groups[name] = ckpt.optimizer_tensors(opt, name)
                tensors.update(flat)
        tensors["rng.cpu"] = torch.get_rng_state()
        ckpt.write_tensors(out / "resume" / "state.safetensors", tensors)
        ckpt.write_json(out / "resume" / "state.json", {"counters": self.counters(), "param_groups": groups,
                                                        "config": self.cfg.recorded()})

    def restore(self, out: Path) -> None:
        meta = ckpt.read_json(out / "resume" / "state.json")
        tensors = ckpt.read_tensors(out / "resume" / "state.safetensors")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for name, opt in (("enc", self.enc_opt), ("dec", self.dec_opt)):
            if opt is not None:
                ckpt.restore_optimizer(opt, name, tensors, meta["param_groups"][name])
        torch.set_rng_state(tensors["rng.cpu"])
        counters = dict(meta["counters"])
        self.baseline.per_piece = counters.pop("baseline", None)
        for key, value in counters.items():
            setattr(self, key, value)
        self.set_lr(self.lr)

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = lr


def start(cfg: TrainConfig, model: SentenceVAE | VRNN, device, cond: torch.Tensor | None) -> Run:
    """The run ``cfg`` asks for in ``cfg.out``: resumed after its last finished epoch, or begun anew (from
    the ``--init`` checkpoint's weights and history, if given), refused where it would overwrite a
    checkpoint. ``cond``: the training lines' conditions (they set a conditioned model's options)."""
    out = Path(cfg.out)
    run = Run(cfg, model, device)
    if cfg.resume:
        if not (out / "resume" / "state.json").is_file():
            raise ValueError(f"--resume: no resumable run in {out} (missing resume/state.json)")
        earlier = TrainConfig.from_dict(ckpt.read_json(out / "resume" / "state.json")["config"])
        saved = earlier.model_config(cond)
        if saved != model.config:
            raise ValueError(f"--resume: the model options differ from the run in {out} ({saved})")
        run.restore(out)
        if distributed.lead():
            print(f"resumed after epoch {run.epoch} of stage {run.stage}", flush=True)
        return run
    if (out / "config.json").exists():
        raise ValueError(f"{out} already holds a checkpoint: choose another --out or pass --resume")
    history = []
    if cfg.init:
        load_weights(model, Path(cfg.init))
        history = ckpt.read_metrics(cfg.init)
    run.stage = max((row["stage"] for row in history), default=0) + 1
    if distributed.lead():  # under torchrun, rank 0 writes
        ckpt.write_text(out / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
    return run


def load_weights(model: SentenceVAE | VRNN, source: Path) -> None:
    """Start ``model`` from the weights of the checkpoint ``source`` (``--init``), which must fit it."""
    weights = ckpt.build_model(source)[0].state_dict()
    if isinstance(model, SentenceVAE):
        weights = model.fit_weights(weights)
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as err:
        raise ValueError(f"--init: {source} does not fit the model options: {err}") from err
    # a new z skip or gate may start from zero (the source model's function), a new bag-of-words head
    # from scratch (decoding never reads it); nothing else may be missing
    if unexpected or any(not key.startswith(("z_to_out.", "z_gate.", "bow.")) for key in missing):
        raise ValueError(f"--init: {source} does not fit the model options: "
                         f"missing {missing}, unexpected {unexpected}")
