"""Train a sentence VAE (or the plain LSTM LM baseline, or a VRNN) on a corpus of lines.

    python -m vae_core.train --data data/poetry --out checkpoints/my-model
    python -m vae_core.train --data data/poetry --out checkpoints/my-model --resume
    python -m vae_core.train --data data/poetry --out checkpoints/my-model --workers 2  # on two CPU cores

Each epoch appends validation metrics to ``metrics.jsonl``, keeps the best weights (by validation
loss; ``--keep last``: the last) in the checkpoint and the last epoch's full state in ``resume/``;
at the end the model card (``README.md``) is written with test metrics and samples when the data
has a test split.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from . import checkpoint as ckpt
from . import cli
from .cli import checked, fraction, non_negative_float, non_negative_int, positive_float, positive_int, rate
from .data import Corpus, read_lines, split_paths
from .evaluate import elbo_terms, sequence_terms
from .latent import Gaussian
from .model import MAX_LEN, MIN_COND_STD, DictConfig, ModelConfig, SentenceVAE
from .tokenizer import VOCAB_SIZE, Tokenizer
from .vrnn import VRNN, VRNNConfig


def opt(default, help: str, **extra):
    """A config field with its command-line help."""
    return field(default=default, metadata={"help": help, **extra})


LINE_LENGTH = checked(int, lambda n: 1 <= n <= MAX_LEN, f"an integer from 1 to {MAX_LEN}")
BATCH_SIZE = checked(int, lambda n: n >= 2, "an integer of at least 2")
CUTOFFS = checked(lambda text: tuple(int(part) for part in text.split(",")),
                  lambda c: all(0 < a < b for a, b in zip(c, c[1:] + (VOCAB_SIZE,))),
                  f"increasing integers between 0 and {VOCAB_SIZE}, separated by commas")
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size", "condition", "cond_mean",
                                                                     "cond_std", "latent", "bow"}


@dataclass
class TrainConfig(DictConfig):
    data: str = opt("data/poetry", "folder with train.txt (+ valid.txt, test.txt) or one file of lines")
    out: str = opt("checkpoints/my-model", "checkpoint directory to write")
    model: str = opt(
        "vae",
        "vae: sentence VAE; lm: the same decoder without a latent (baseline); "
        "syllable-vae: the VAE with each line's syllable count given to encoder and decoder; "
        "bernoulli-vae: the VAE with a code of --nz bits (seed 002); "
        "vrnn: a latent per piece (Chung et al. 2015), sized by --emb-dim, --dec-hidden (its GRU) and --nz (per piece)",
        choices=ckpt.MODEL_KINDS,
    )
    # model size and regularisation (see vae_core.model.ModelConfig)
    emb_dim: int = opt(256, "piece embedding size", type=positive_int)
    enc_hidden: int = opt(256, "encoder LSTM units (per direction)", type=positive_int)
    bidirectional: bool = opt(True, "bidirectional encoder (--no-bidirectional: one direction)")
    dec_hidden: int = opt(512, "decoder LSTM units", type=positive_int)
    nz: int = opt(32, "latent dimensions (bits for bernoulli-vae)", type=positive_int)
    dropout: float = opt(0.3, "dropout on embeddings and decoder outputs", type=rate)
    z_skip: bool = opt(False, "skip-VAE: z also feeds the output layer (Dieng et al. 2019)")
    word_dropout: float = opt(0.0, "chance of replacing a decoder input piece by <unk>", type=rate)
    bow_weight: float = opt(
        0.0, "weight of a bag-of-words loss on z (Zhao et al. 2017): z is also trained to predict the line's "
        "pieces in any order, which makes reconstructions keep more of the line's words, at a cost in "
        "likelihood (0 = off)", type=non_negative_float,
    )
    bn_gamma: float = opt(
        0.8, "BN-VAE: fixed scale of batch-normalised posterior means (0 = off); KL >= nz*gamma^2/2; "
        "for bernoulli-vae the scale of the normalised logits",
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
        (1000, 4000), "adaptive softmax output layer: the most frequent pieces are scored at every position "
        "(the head), the rest in clusters between these bounds, each scored only where it holds the next piece; "
        "a smaller head trains faster; e.g. 500,4000", type=CUTOFFS,
    )
    # optimisation
    epochs: int = opt(20, "training epochs", type=positive_int)
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
    free_bits: float = opt(0.0, "per-dimension KL floor in nats (batch-averaged KL below it is not penalised)",
                           type=non_negative_float)
    pretrain_epochs: int = opt(
        0,
        "autoencoder epochs (no KL, z = mu) before VAE "
        "training; the decoder is then re-initialised (Li et al. 2019)",
        type=non_negative_int,
    )
    aggressive: bool = opt(False, "aggressive encoder updates until mutual information stops rising (He et al. 2019)")
    aggressive_steps: int = opt(30, "most encoder-only steps per decoder step in aggressive mode", type=positive_int)
    # data and run
    valid_fraction: float = opt(0.05, "share of lines held out for validation when there is no valid.txt",
                                type=fraction)
    max_lines: int = opt(0, "use only the first N training lines (0 = all)", type=non_negative_int)
    time_budget: float = opt(0.0, "minutes of training after which the run stops (0 = no limit)",
                             type=non_negative_float)
    card_iw_samples: int = opt(100, "importance samples for the test metrics in the model card (0 = no test metrics)",
                               type=non_negative_int)
    baseline: str = opt("", "LM checkpoint whose test NLL/PPL the model card reports beside this model's")
    tokenizer: str = opt("", "folder with en/en.wiki.bpe.vs10000.model (default: the shipped checkpoint's)")
    seed: int = opt(0, "random seed")
    threads: int = opt(0, "CPU threads for torch (0 = torch's default)", type=non_negative_int)
    workers: int = opt(
        1, "training processes (CPU only): each takes every N-th batch and --threads/N threads, and all update "
        "one model in shared memory without locks (Hogwild!); 2 on two cores trains faster than 1",
        type=positive_int,
    )
    device: str = opt("auto", "auto (CUDA when present), cpu or cuda", choices=cli.DEVICES)
    resume: bool = opt(False, "continue the run in --out from its last finished epoch")
    init: str = opt("", "start from the weights of this checkpoint (same sizes; fine-tuning, e.g. to a new --bn-gamma, "
                    "or to --match-prior from learned variances: the means are kept)")

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
            values.update(nz=0, bn_gamma=0.0, match_prior=False, word_dropout=0.0, z_skip=False, bow=False)
        if self.model == "bernoulli-vae":
            values.update(latent="bernoulli")
        if self.condition:
            values.update(condition=self.condition, cond_mean=float(cond.mean()),
                          cond_std=max(float(cond.std()), MIN_COND_STD))
        return ModelConfig(**values)


def kl_weight(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The KL term's weight (beta) at optimisation step ``step`` (counted after any pretraining)."""
    if cfg.kl_schedule == "linear" and cfg.kl_warmup > 0:
        return min(1.0, step / (cfg.kl_warmup * steps_per_epoch))
    if cfg.kl_schedule == "cyclical":
        period = max(1, total_steps // cfg.kl_cycles)
        return min(1.0, 2.0 * (step % period) / period)
    return 1.0


def batch_loss(run: Run, batch, beta: float, autoencoder: bool = False):
    """Mean loss per line of ``batch`` (tokens, lengths, conditions) and its parts: ``rec + beta * KL``,
    the KL floored per dimension.

    Bits cannot be reparameterised: with the score-function estimator the loss also carries
    ``(rec - baseline) * log q(z|x)``, whose gradient is the encoder's (its value is subtracted
    again, so the reported loss stays ``rec + beta * KL``).
    """
    cfg, model = run.cfg, run.model
    tokens, lengths, cond = batch
    if isinstance(model, VRNN):
        terms = model.terms(tokens, lengths)
        rec, kl = terms.rec.mean(), terms.kl.mean()
        return rec + beta * kl, {"rec": rec.item(), "kl": kl.item()}
    if model.is_lm:
        rec = model.reconstruction(tokens, lengths, model.code(None, cond)).mean()
        return rec, {"rec": rec.item(), "kl": 0.0}
    q = model.posterior(tokens, lengths, cond)
    gaussian = isinstance(q, Gaussian)
    score = not (gaussian or autoencoder) and cfg.estimator == "score"
    if autoencoder:
        z = q.mean
    elif gaussian or score:
        z = q.sample()[:, 0]
    else:
        z = q.straight_through(cfg.gumbel_tau)
    rec_lines = model.reconstruction(tokens, lengths, model.code(z, cond))
    rec = rec_lines.mean()
    kl = q.kl().mean(dim=0)
    kl_term = kl.clamp(min=cfg.free_bits).sum() if cfg.free_bits > 0 else kl.sum()
    loss = rec if autoencoder else rec + beta * kl_term
    parts = {"rec": rec.item(), "kl": kl.sum().item()}
    if model.bow is not None:
        bow = model.bag_of_words(tokens, lengths, z).mean()
        loss = loss + cfg.bow_weight * bow
        parts["bow"] = bow.item()
    if score:
        cost = rec_lines.detach()
        advantage = cost - run.baseline.value(lengths)
        surrogate = (advantage * q.log_prob(z.unsqueeze(1))[:, 0]).mean()
        loss = loss + surrogate - surrogate.detach()
        if model.training:
            run.baseline.update(cost, lengths)
    return loss, parts


class Baseline:
    """The score-function estimator's baseline: a running mean of the reconstruction cost per
    piece, times a line's length (a long line costs more whatever its code)."""

    def __init__(self, decay: float = 0.99):
        self.decay, self.per_piece = decay, None

    def value(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths.float() * (self.per_piece or 0.0)

    def update(self, cost: torch.Tensor, lengths: torch.Tensor) -> None:
        mean = float(cost.sum() / lengths.sum())
        self.per_piece = mean if self.per_piece is None else self.decay * self.per_piece + (1 - self.decay) * mean


def param_groups(model: SentenceVAE) -> tuple[list, list]:
    """Encoder parameters (for aggressive updates) and all the others."""
    encoder = [p for n, p in model.named_parameters() if n.split(".")[0] in ("encoder", "to_posterior", "mu_shift")]
    ids = {id(p) for p in encoder}
    return encoder, [p for p in model.parameters() if id(p) not in ids]


class Run:
    """Mutable state of a training run: everything ``--resume`` restores."""

    def __init__(self, cfg: TrainConfig, model: SentenceVAE, device):
        self.cfg, self.model, self.device = cfg, model, device
        enc, dec = param_groups(model)
        # fused: one kernel per step for all parameters (about a tenth of a CPU step otherwise)
        self.enc_opt = torch.optim.Adam(enc, lr=cfg.lr, fused=True) if enc else None
        self.dec_opt = torch.optim.Adam(dec, lr=cfg.lr, fused=True)
        self.epoch = 0  # epochs finished
        self.step = 0  # optimisation steps since VAE training began (drives the KL schedule)
        self.lr = cfg.lr
        self.best = math.inf
        self.best_mi = -math.inf
        self.aggressive = cfg.aggressive and not model.is_lm
        self.seconds = 0.0
        self.baseline = Baseline()

    @property
    def optimizers(self):
        return [opt for opt in (self.enc_opt, self.dec_opt) if opt is not None]

    def counters(self) -> dict:
        names = ("epoch", "step", "lr", "best", "best_mi", "aggressive", "seconds")
        return {k: getattr(self, k) for k in names} | {"baseline": self.baseline.per_piece}

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
                                                        "config": asdict(self.cfg)})

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


def load_data(cfg: TrainConfig, tokenizer: Tokenizer) -> tuple[Corpus, Corpus, list[str]]:
    """Training and validation corpora, and the test lines (empty when the data has no test split)."""
    paths = split_paths(cfg.data)
    train_lines = read_lines(paths["train"])
    if cfg.max_lines:
        train_lines = train_lines[: cfg.max_lines]
    if "valid" in paths:
        valid_lines = read_lines(paths["valid"])
    else:
        held = max(1, int(len(train_lines) * cfg.valid_fraction))
        if len(train_lines) <= held:
            raise ValueError(f"{cfg.data}: too few lines ({len(train_lines)}) to hold out a validation set")
        perm = torch.randperm(len(train_lines), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        valid_lines = [train_lines[i] for i in perm[:held]]
        train_lines = [train_lines[i] for i in perm[held:]]
    test_lines = read_lines(paths["test"]) if "test" in paths else []
    train_set, valid_set = (Corpus.from_lines(lines, tokenizer, cfg.condition) for lines in (train_lines, valid_lines))
    return train_set, valid_set, test_lines


def train_step(run: Run, batch, beta: float, optimizers: list, autoencoder: bool = False):
    """One optimisation step on ``batch`` that updates the parameters of ``optimizers``; returns
    ``batch_loss``'s loss and parts."""
    loss, parts = batch_loss(run, batch, beta, autoencoder)
    for opt in run.optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip, foreach=True)
    for opt in optimizers:
        opt.step()
    return loss, parts


def train_epoch(run: Run, corpus: Corpus, deadline: float, generator: torch.Generator) -> dict:
    """One pass over the training batches; returns mean training loss parts."""
    cfg, model = run.cfg, run.model
    model.train()
    batches = corpus.batches(cfg.batch_size, shuffle=True, generator=generator)
    autoencoder = run.epoch < cfg.pretrain_epochs and not model.is_lm
    total_steps = len(batches) * (cfg.epochs - cfg.pretrain_epochs)

    def beta_at(step: int) -> float:
        return 0.0 if autoencoder else kl_weight(cfg, step, len(batches), total_steps)

    if cfg.workers == 1:
        shares = [train_share(run, corpus, batches, deadline, generator, beta_at, autoencoder)]
    else:
        shares = train_parallel(run, corpus, batches, deadline, beta_at, autoencoder)
        run.baseline.per_piece = shares[0]["baseline"]
    done = sum(share["batches"] for share in shares)
    beta = beta_at(run.step + max(done - 1, 0))  # the weight of the epoch's last step
    if not autoencoder:
        run.step += done
    keys = dict.fromkeys(key for share in shares for key in share["sums"])  # a worker may have had no batch
    sums = {key: sum(share["sums"].get(key, 0.0) for share in shares) for key in keys}
    return {f"train_{k}": v / max(done, 1) for k, v in sums.items()} | {"beta": beta, "batches": done}


def train_share(run: Run, corpus: Corpus, batches: list, deadline: float, generator: torch.Generator | None,
                beta_at, autoencoder: bool, rank: int = 0) -> dict:
    """Train on every ``cfg.workers``-th of the epoch's ``batches``, from the ``rank``-th, the KL weighted by
    ``beta_at(step)``; returns the sums of the loss parts, the batches done and the score estimator's
    baseline. ``generator`` draws the aggressive mode's encoder batches (one worker only)."""
    cfg = run.cfg
    sums, done = {}, 0
    mine = range(rank, len(batches), cfg.workers)
    bar = tqdm(mine, desc=f"epoch {run.epoch + 1}", disable=None if rank == 0 else True, leave=False)
    for position in bar:
        beta = beta_at(run.step + position)
        if run.aggressive:
            encoder_burst(run, corpus, beta, generator)
        loss, parts = train_step(run, corpus.batch(batches[position]), beta,
                                 [run.dec_opt] if run.aggressive else run.optimizers, autoencoder)
        parts["loss"] = loss.item()
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + value
        done += 1
        bar.set_postfix(loss=f"{parts['loss']:.2f}", kl=f"{parts['kl']:.2f}", beta=f"{beta:.2f}")
        if time.monotonic() > deadline:
            break
    return {"sums": sums, "batches": done, "baseline": run.baseline.per_piece}


def train_parallel(run: Run, corpus: Corpus, batches: list, deadline: float, beta_at, autoencoder: bool) -> list[dict]:
    """Hogwild! (Recht et al. 2011): ``cfg.workers`` forked processes each train on their share of the
    batches with a share of the threads, updating the model and Adam's moments in shared memory without
    locks. On two CPU cores two one-thread workers keep both cores busier than one two-thread process,
    whose LSTM kernels split each 64-line product between the cores. Returns each worker's
    ``train_share``."""
    share_memory(run)
    threads = max(1, torch.get_num_threads() // run.cfg.workers)
    context = multiprocessing.get_context("fork")  # the children inherit the shared tensors and the data
    jobs = []
    for rank in range(run.cfg.workers):
        receive, send = context.Pipe(duplex=False)
        args = (run, corpus, batches, deadline, beta_at, autoencoder, rank, threads, send)
        process = context.Process(target=_worker, args=args, daemon=True)
        process.start()
        send.close()
        jobs.append((process, receive))
    shares = []
    try:
        for rank, (process, receive) in enumerate(jobs):
            try:
                outcome, value = receive.recv()
            except EOFError:
                outcome, value = "error", "it died without a word"
            process.join()
            if outcome == "error":
                raise RuntimeError(f"training worker {rank} failed (exit code {process.exitcode}): {value}")
            shares.append(value)
    finally:  # after a failure or an interrupt, no worker goes on writing to the model
        for process, _ in jobs:
            process.terminate()
            process.join()
    return shares


def _worker(run: Run, corpus: Corpus, batches: list, deadline: float, beta_at, autoencoder: bool, rank: int,
            threads: int, send) -> None:
    """A forked worker: its own threads and random stream, its share of the epoch, its sums sent back."""
    try:
        torch.set_num_threads(threads)
        torch.manual_seed(1_000_003 * run.cfg.seed + 1_009 * run.epoch + rank + 1)
        send.send(("ok", train_share(run, corpus, batches, deadline, None, beta_at, autoencoder, rank)))
    except BaseException as err:  # the parent re-raises it
        send.send(("error", f"{type(err).__name__}: {err}"))
        raise


def share_memory(run: Run) -> None:
    """Move the model and Adam's state (created now if absent) to shared memory, where forked workers'
    updates land."""
    run.model.share_memory()
    for opt in run.optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                state = opt.state[p]
                if not state:  # what Adam creates at its first step (a float32 step count when fused)
                    state.update(step=torch.zeros((), dtype=torch.float32), exp_avg=torch.zeros_like(p),
                                 exp_avg_sq=torch.zeros_like(p))
                for value in state.values():
                    value.share_memory_()


def encoder_burst(run: Run, corpus: Corpus, beta: float, generator: torch.Generator) -> None:
    """He et al.'s inner loop: update only the encoder on fresh batches until the loss stops falling."""
    cfg = run.cfg
    best, since_best = math.inf, 0
    for _ in range(cfg.aggressive_steps):
        index = torch.randint(len(corpus), (cfg.batch_size,), generator=generator)
        loss, _ = train_step(run, corpus.batch(index), beta, [run.enc_opt])
        if loss.item() < best - 1e-3:
            best, since_best = loss.item(), 0
        else:
            since_best += 1
            if since_best >= 5:
                break


def train(cfg: TrainConfig) -> Path:
    """Train as ``cfg`` says and return the checkpoint directory."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file; give a directory for the checkpoint")
    device = cli.device(cfg.device)
    if cfg.workers > 1 and (device.type != "cpu" or "fork" not in multiprocessing.get_all_start_methods()):
        raise ValueError("--workers above 1 trains on the CPU of a system with fork() (Linux, macOS): "
                         "pass --device cpu, or --workers 1")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer_dir = Path(cfg.tokenizer) if cfg.tokenizer else ckpt.SHIPPED / "tokenizer"
    tokenizer = Tokenizer(tokenizer_dir, max_len=cfg.max_len)
    train_set, valid_set, test_lines = load_data(cfg, tokenizer)
    print(f"data: {len(train_set)} training lines, {len(valid_set)} validation, {len(test_lines)} test", flush=True)

    model = (VRNN if cfg.model == "vrnn" else SentenceVAE)(cfg.model_config(train_set.cond))
    model.set_piece_order(train_set.piece_counts(model.config.vocab_size))
    model.to(device)
    run = Run(cfg, model, device)
    if cfg.resume:
        if not (out / "resume" / "state.json").is_file():
            raise ValueError(f"--resume: no resumable run in {out} (missing resume/state.json)")
        earlier = TrainConfig.from_dict(ckpt.read_json(out / "resume" / "state.json")["config"])
        saved = earlier.model_config(train_set.cond)
        if saved != model.config:
            raise ValueError(f"--resume: the model options differ from the run in {out} ({saved})")
        run.restore(out)
        print(f"resumed after epoch {run.epoch}", flush=True)
    elif (out / "config.json").exists():
        raise ValueError(f"{out} already holds a checkpoint: choose another --out or pass --resume")
    elif cfg.init:
        source, _ = ckpt.build_model(Path(cfg.init))
        weights = source.state_dict()
        if isinstance(model, SentenceVAE):
            weights = model.fit_weights(weights)
        try:
            missing, unexpected = model.load_state_dict(weights, strict=False)
        except RuntimeError as err:
            raise ValueError(f"--init: {cfg.init} does not fit the model options: {err}") from err
        # a new z skip may start from zero (the source model's function), a new bag-of-words head from
        # scratch (decoding never reads it); nothing else may be missing
        if unexpected or any(not key.startswith(("z_to_out.", "bow.")) for key in missing):
            raise ValueError(f"--init: {cfg.init} does not fit the model options: "
                             f"missing {missing}, unexpected {unexpected}")
    ckpt.copy_tokenizer(tokenizer_dir, out)

    valid_dev, train_dev = valid_set.to(device), train_set.to(device)
    deadline = time.monotonic() + (cfg.time_budget * 60 - run.seconds if cfg.time_budget else math.inf)
    while run.epoch < cfg.epochs and time.monotonic() < deadline:
        started = time.monotonic()
        # seeded per epoch, so a resumed run shuffles exactly as one that never stopped
        generator = torch.Generator().manual_seed(1_000_003 * cfg.seed + run.epoch)
        stats = train_epoch(run, train_dev, deadline, generator)
        seconds = time.monotonic() - started
        run.seconds += seconds
        model.eval()
        valid = (sequence_terms if cfg.model == "vrnn" else elbo_terms)(model, valid_dev)
        run.epoch += 1
        if run.epoch == cfg.pretrain_epochs and not model.is_lm:
            model.reset_parameters(decoder_only=True)
            run.dec_opt.state.clear()
            run.best = math.inf  # the autoencoder's loss is not comparable with the VAE's
        lines_per_s = round(stats["batches"] * cfg.batch_size / seconds, 1)
        row = {"epoch": run.epoch, "seconds": round(seconds, 1), "lines_per_s": lines_per_s, "lr": run.lr,
               "aggressive": run.aggressive, **stats, **{f"valid_{k}": v for k, v in valid.items()}}
        ckpt.append_metrics(out, row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        if run.epoch > cfg.pretrain_epochs:
            improved = valid["elbo"] < run.best
            if improved or cfg.keep == "last":
                ckpt.save_model(out, model, {"kind": cfg.model, "epoch": run.epoch, "train": asdict(cfg),
                                             "valid": valid})
            if improved:
                run.best = valid["elbo"]
            else:
                run.set_lr(run.lr * cfg.lr_decay)
            if run.aggressive:
                run.aggressive = valid["mi"] > run.best_mi
                run.best_mi = max(run.best_mi, valid["mi"])
        run.save(out)

    if (out / "config.json").exists():
        from .card import write_card  # decoding is only needed once training is over

        write_card(out, test_lines, iw_samples=cfg.card_iw_samples, baseline=cfg.baseline or None, device=device)
    return out


def parse_args(argv=None) -> TrainConfig:
    """The options of ``argv``: each field's value checked by its ``type`` (see ``vae_core.cli``), then the
    rules that join several options."""
    parser = argparse.ArgumentParser(prog="python -m vae_core.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default  # as typed
        help_text = f"{f.metadata['help']} (default: {default})"
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            kind = f.metadata.get("type") or {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(flag, type=kind, default=f.default, choices=f.metadata.get("choices"), help=help_text)
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    problems = [
        f"--{name.replace('_', '-')} must be {rule}"
        for name, ok, rule in [
            ("pretrain_epochs", cfg.pretrain_epochs < cfg.epochs, "below --epochs"),
            ("aggressive", not (cfg.model == "vrnn" and cfg.aggressive), "off for --model vrnn"),
            ("aggressive", not (cfg.workers > 1 and cfg.aggressive), "off with --workers above 1"),
            ("pretrain_epochs", not (cfg.model == "vrnn" and cfg.pretrain_epochs), "0 for --model vrnn"),
            ("free_bits", not (cfg.model == "vrnn" and cfg.free_bits), "0 for --model vrnn"),
            ("z_skip", not (cfg.model in ("vrnn", "lm") and cfg.z_skip), "off for --model vrnn and lm (no z)"),
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


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        out = train(cfg)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"checkpoint: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
