"""The sentence VAE (Bowman et al. 2016) and, with ``nz=0``, the plain LSTM language model.

    pieces -> embedding -> LSTM encoder -> q(z|x) = N(mu, diag(sigma^2))
    z -> initial decoder state;  [embedding ; z] at every step -> LSTM decoder -> next piece

With ``latent="bernoulli"`` the code is a vector of bits instead, as in the VI tutorial's
latent-factor notebook: q(z|x) is a product of Bernoullis from the encoder's logits, and the decoder
reads the bits as +-1 (see ``latent.py``).

A conditioned model (``condition="syllables"``) also gives the encoder and the decoder a scalar
per line (its syllable count), beside every piece, as the "energy" of the conditioned LM in the
blog post on conditioned LMs and seq2seq VAEs.

The output layer is an adaptive softmax (Grave et al. 2017): frequent pieces sit in a small head,
rare ones in cheaper tail clusters, so training does not pay for a full 10,000-way softmax on every
token while the model still defines an exact distribution over all pieces. Clusters follow the
pieces' training-set frequency, kept in the ``rank_of`` buffer (piece id -> frequency rank).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .latent import LATENTS, Bernoulli, Gaussian, Posterior
from .tokenizer import UNK, VOCAB_SIZE
from .validate import Range

MAX_LEN = 256  # most pieces a line may have: the longest max_len, and the most a decoded line may take
MIN_COND_STD = 1e-3  # the condition's scale is floored here, so normalising it never divides by ~0


class DictConfig:
    """``from_dict``/``to_dict`` for a config dataclass stored in a checkpoint's config.json."""

    @classmethod
    def from_dict(cls, values: dict):
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        values = dict(values)
        if "cutoffs" in values:  # JSON has lists, the config a tuple
            values["cutoffs"] = tuple(values["cutoffs"])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self, ranges: dict[str, Range]) -> None:
        """A ValueError unless every field named in ``ranges`` holds a number of its range: a config may
        come from a hand-edited config.json."""
        for name, allowed in ranges.items():
            allowed.check(name, getattr(self, name))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with its mask read from random bytes, ``p`` rounded to a multiple of 1/256
    (0.3 drops 77/256 = 0.3008). Each 64-bit draw gives eight masks: in CPU micro-benchmarks here
    1.5-2.4x faster than one 15-bit draw per mask and about 2.5x faster than ``nn.Dropout``'s
    Bernoulli sampling, which took 7% of a training step at the shipped size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        dropped = round(self.p * 256)
        if dropped == 256:  # p rounds to 1: everything is dropped, as by nn.Dropout(1)
            return x * 0.0
        words = torch.empty((x.numel() + 7) // 8, dtype=torch.int64, device=x.device).random_(-(2**63), None)
        keep = words.view(torch.uint8)[: x.numel()].view(x.shape) >= dropped  # every byte uniform on [0, 256)
        return x * keep.to(x.dtype).mul_(256 / (256 - dropped))


@dataclass
class ModelConfig(DictConfig):
    vocab_size: int = VOCAB_SIZE  # BPEmb pieces
    emb_dim: int = 256  # piece embedding, shared by encoder and decoder
    enc_hidden: int = 256  # encoder LSTM units (per direction)
    bidirectional: bool = True  # the encoder reads the line both ways; q(z|x) sees both final states
    dec_hidden: int = 512  # decoder LSTM units
    nz: int = 32  # latent dimensions (bits for a Bernoulli latent); 0 makes the plain LSTM language model
    latent: str = "gaussian"  # "gaussian" (z in R^nz) or "bernoulli" (z in {0, 1}^nz)
    prior_p: float = 0.5  # bernoulli: the prior's P(bit = 1)
    dropout: float = 0.2  # dropout on embeddings and decoder outputs while training
    word_dropout: float = 0.0  # chance of replacing a decoder input piece by <unk> while training
    bn_gamma: float = 0.0  # BN-VAE: fixed scale of batch-normalised posterior means; 0 = off
    match_prior: bool = False  # BN-VAE: every posterior's variance is 1 - gamma^2, so the codes spread like N(0, I)
    spread: bool = False  # with match_prior: a head on the encoder's state widens or narrows each line's variances
    z_skip: bool = False  # the code also feeds the output layer directly (skip-VAE, Dieng et al. 2019)
    z_gate: bool = False  # with z_skip: each step's decoder state gates how much of the skip it takes
    bow: bool = False  # a bag-of-words head on z (Zhao et al. 2017): a training loss only, decoding ignores it
    cutoffs: tuple[int, ...] = (1000, 4000)  # adaptive softmax: head size, then cluster bounds
    max_len: int = 48  # pieces per line; longer input is truncated, decoding stops here
    condition: str = ""  # "" (none) or "syllables": a scalar both encoder and decoder see
    cond_mean: float = 0.0  # the condition is fed as (value - cond_mean) / cond_std
    cond_std: float = 1.0

    def __post_init__(self):
        size, share = Range(int, 1), Range(float, 0, 1)
        self.check({"vocab_size": size, "emb_dim": size, "enc_hidden": size, "dec_hidden": size, "nz": Range(int, 0),
                    "max_len": Range(int, 1, MAX_LEN), "dropout": share, "word_dropout": share,
                    "bn_gamma": Range(float, 0), "cond_std": Range(float, MIN_COND_STD)})
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {self.latent!r}")
        if self.latent == "bernoulli" and not 0 < self.prior_p < 1:
            raise ValueError(f"a Bernoulli latent needs prior_p in (0, 1), got {self.prior_p}")
        if self.z_gate and not self.z_skip:
            raise ValueError("z_gate gates the skip connection: it needs z_skip")
        if self.match_prior and not (self.latent == "gaussian" and 0 < self.bn_gamma < 1):
            raise ValueError(f"match_prior needs a Gaussian latent and bn_gamma in (0, 1), got {self.bn_gamma}")
        if self.spread and not self.match_prior:
            raise ValueError("spread adjusts the matched prior's variances: it needs match_prior")


class SentenceVAE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.emb_dim)
        self.drop = Dropout(c.dropout)
        self.n_cond = 1 if c.condition else 0
        self.code_dim = c.nz + self.n_cond  # what the decoder sees beside each piece: z and the condition
        if c.nz > 0:
            self.encoder = nn.LSTM(c.emb_dim + self.n_cond, c.enc_hidden, batch_first=True,
                                   bidirectional=c.bidirectional)
            per_unit = 2 if c.latent == "gaussian" and not c.match_prior else 1  # mu and logvar, or one number
            self.to_posterior = nn.Linear(c.enc_hidden * (2 if c.bidirectional else 1), per_unit * c.nz)
            # added to the matched prior's log-variance; zero at the start, where it is the plain matched prior
            self.to_spread = nn.Linear(self.to_posterior.in_features, c.nz) if c.spread else None
            # BN-VAE (Zhu et al. 2020): normalised means with a fixed scale keep every unit's KL
            # above nz * gamma^2 / 2, so the posterior cannot collapse. A tiny eps, or the encoder
            # could shrink its raw means below it and slip out of the bound.
            self.mu_norm = nn.BatchNorm1d(c.nz, eps=1e-8, affine=False) if c.bn_gamma > 0 else None
            self.mu_shift = nn.Parameter(torch.zeros(c.nz)) if c.bn_gamma > 0 else None
        if self.code_dim > 0:
            self.z_to_state = nn.Linear(self.code_dim, 2 * c.dec_hidden)
        # skip-VAE: W z is added to every decoder output, so z can favour words wherever they fall
        self.z_to_out = nn.Linear(self.code_dim, c.dec_hidden) if c.z_skip and self.code_dim > 0 else None
        # a gated skip: 2 sigmoid(G [h; z]) per unit and step, so the decoder's state decides where z
        # speaks; G starts at zero, where the gate is 1 and the model is the ungated skip's
        self.z_gate = nn.Linear(c.dec_hidden + self.code_dim, c.dec_hidden) if self.z_to_out and c.z_gate else None
        self.decoder = nn.LSTM(c.emb_dim + self.code_dim, c.dec_hidden, batch_first=True)
        self.bow = nn.Linear(c.nz, c.vocab_size) if c.bow and c.nz > 0 else None
        self.out = nn.AdaptiveLogSoftmaxWithLoss(c.dec_hidden, c.vocab_size, list(c.cutoffs), div_value=4.0)
        self.register_buffer("rank_of", torch.arange(c.vocab_size))
        self.reset_parameters()

    def set_piece_order(self, counts: torch.Tensor) -> None:
        """Order the output clusters by piece frequency (``counts [V]`` from the training data)."""
        order = torch.argsort(-counts.double(), stable=True)
        self.rank_of.copy_(torch.argsort(order))

    def reset_parameters(self, decoder_only: bool = False) -> None:
        """Uniform(-0.1, 0.1) weights, zero biases; ``decoder_only`` re-initialises just the decoder
        (after autoencoder pretraining of the encoder, Li et al. 2019)."""
        modules = [self.decoder, self.out] if decoder_only else [self]
        for module in modules:
            for name, p in module.named_parameters():
                if "bias" in name or "shift" in name or name.startswith(("z_to_out", "z_gate", "to_spread")):
                    nn.init.zeros_(p)  # a zero skip (or gate) starts as the model without one (see ``--init``)
                else:
                    nn.init.uniform_(p, -0.1, 0.1)

    def fit_weights(self, weights: dict) -> dict:
        """Another model's ``state_dict`` for fine-tuning this one: a matched-prior model takes only the
        means of a model with learned variances (the first half of its posterior layer's rows); a spread
        head is dropped where this model has none, and starts at zero where the other had none."""
        own = self.state_dict()
        weights = {k: v for k, v in weights.items() if not k.startswith("to_spread.") or k in own}
        weights |= {k: torch.zeros_like(v) for k, v in own.items() if k.startswith("to_spread.") and k not in weights}
        posterior = weights.get("to_posterior.weight")
        if not (self.config.match_prior and posterior is not None and len(posterior) == 2 * self.config.nz):
            return weights
        return weights | {key: weights[key][: self.config.nz] for key in ("to_posterior.weight", "to_posterior.bias")}

    @property
    def is_lm(self) -> bool:
        return self.config.nz == 0

    @property
    def prior_logit(self) -> float:
        """A Bernoulli latent's prior, log P(bit = 1) - log P(bit = 0)."""
        return math.log(self.config.prior_p / (1 - self.config.prior_p))

    # ---- the condition --------------------------------------------------------------------
    def code(self, z: torch.Tensor | None, cond: torch.Tensor | None) -> torch.Tensor | None:
        """The decoder's code ``[N, nz + n_cond]``: z (bits as -1/+1) with the normalised condition
        appended (just z for an unconditioned model, None for the plain LM)."""
        if z is not None and self.config.latent == "bernoulli":
            z = 2 * z - 1
        if not self.n_cond:
            return z
        if cond is None:
            raise ValueError(f"this model is conditioned on {self.config.condition}: give a value per line")
        c = ((cond.float() - self.config.cond_mean) / self.config.cond_std).unsqueeze(1)
        return c if z is None else torch.cat([z, c], dim=1)

    # ---- encoder -------------------------------------------------------------------------
    def posterior(self, tokens: torch.Tensor, lengths: torch.Tensor, cond: torch.Tensor | None = None) -> Posterior:
        """q(z|x) of each line (``Gaussian`` or ``Bernoulli``) from ``[BOS] pieces [EOS]`` rows (and
        the lines' condition ``[N]`` for a conditioned model)."""
        x = self.drop(self.embed(tokens[:, 1:]))  # the encoder reads pieces + EOS
        if self.n_cond:
            x = torch.cat([x, self.code(None, cond).unsqueeze(1).expand(-1, x.size(1), -1)], dim=-1)
        state = self._final_states(x, lengths)
        params = self.to_posterior(state)
        if self.config.latent == "bernoulli":
            return Bernoulli(self._batch_norm(params), self.prior_logit)
        if self.config.match_prior:
            logvar = torch.full_like(params, math.log(1 - self.config.bn_gamma**2))
            if self.to_spread is not None:
                logvar = logvar + self.to_spread(state)
            return Gaussian(self._batch_norm(params), logvar)
        mu, logvar = params.chunk(2, dim=-1)
        return Gaussian(self._batch_norm(mu), logvar)

    def _final_states(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The encoder's final state after each line's last piece ``[N, H * directions]``.

        One direction runs over the padded batch and reads its output at each line's end (the
        padding after it cannot change it): on CPU the fused kernel does this in about 60% of the
        time of a packed run. The backward direction must start at each line's end, so a
        bidirectional encoder runs packed.
        """
        if not self.config.bidirectional:
            out, _ = self.encoder(x)
            return out[torch.arange(len(x), device=x.device), lengths - 1]
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.encoder(packed)  # final states [directions, N, H], padding never read
        return torch.cat(list(h), dim=-1)

    def _batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        """BN-VAE's fixed-scale normalisation of posterior means (or of a Bernoulli latent's logits:
        each bit's logit then varies across lines with std gamma, so no bit can stay at the prior)."""
        return x if self.mu_norm is None else self.config.bn_gamma * self.mu_norm(x) + self.mu_shift

    # ---- decoder -------------------------------------------------------------------------
    # The decoder takes a ``code [N, code_dim]`` (see ``code``): z, with the condition if any.
    def initial_state(self, code: torch.Tensor | None, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        H = self.config.dec_hidden
        if code is None:
            zero = torch.zeros(1, batch, H, device=self.rank_of.device)
            return zero, zero
        h, c = self.z_to_state(code).chunk(2, dim=-1)
        return torch.tanh(h).unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def log_probs(self, hidden: torch.Tensor, ranked: bool = False) -> torch.Tensor:
        """Next-piece log-probabilities ``[N, V]`` from decoder outputs, columns in piece-id order or,
        with ``ranked``, in the output layer's frequency order (column r is piece ``piece_of()[r]``),
        which saves a copy of the whole table when only the best columns are needed."""
        log_probs = self.out.log_prob(hidden)
        return log_probs if ranked else log_probs[:, self.rank_of]

    def piece_of(self) -> torch.Tensor:
        """Piece id of each frequency rank ``[V]`` (the inverse of ``rank_of``)."""
        return torch.argsort(self.rank_of)

    def decode(self, inputs: torch.Tensor, code: torch.Tensor | None, state=None):
        """Run the decoder over ``inputs [N, T]``; returns decoder outputs ``[N, T, H]`` and state."""
        x = self.drop(self.embed(inputs))
        if code is not None:
            x = torch.cat([x, code.unsqueeze(1).expand(-1, x.size(1), -1)], dim=-1)
        if state is None:
            state = self.initial_state(code, inputs.size(0))
        out, state = self.decoder(x, state)
        return self.skip(self.drop(out), code), state

    def skip(self, out: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        """Decoder outputs ``[N, ..., H]`` as the output layer sees them: plus ``W code`` with a skip, each
        unit's share of it scaled by ``2 sigmoid(G [out; code])`` (between 0 and 2) with a gated one."""
        if self.z_to_out is None:
            return out
        added = self.z_to_out(code)
        if out.dim() == 3:  # a whole line: the same code at every step
            code, added = code.unsqueeze(1).expand(-1, out.size(1), -1), added.unsqueeze(1)
        if self.z_gate is not None:
            added = added * 2 * torch.sigmoid(self.z_gate(torch.cat([out, code], dim=-1)))
        return out + added

    def cell(self, tokens: torch.Tensor, code: torch.Tensor | None, state):
        """One decoder step for ``tokens [N]`` (inference, no dropout): the output ``[N, H]`` (what the
        output layer reads) and the new state.

        The LSTM cell is written out: for one step of a small batch it is several times faster
        than a call into ``nn.LSTM``'s fused kernel, and computes the same function.
        """
        x = self.embed(tokens)
        if code is not None:
            x = torch.cat([x, code], dim=-1)
        h, c = self.initial_state(code, len(tokens)) if state is None else state
        lstm = self.decoder
        gates = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(h[0], lstm.weight_hh_l0, lstm.bias_hh_l0)
        i, f, g, o = gates.chunk(4, dim=-1)  # PyTorch's gate order
        c = torch.sigmoid(f) * c[0] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return self.skip(h, code), (h.unsqueeze(0), c.unsqueeze(0))

    def step(self, tokens: torch.Tensor, code: torch.Tensor | None, state, ranked: bool = False):
        """One decoding step: next-piece log-probabilities ``[N, V]`` (see ``log_probs`` for
        ``ranked``) and the new state."""
        h, state = self.cell(tokens, code, state)
        return self.log_probs(h, ranked), state

    def top_log_probs(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` most likely next pieces of each row: log-probabilities and frequency ranks,
        ``[N, k]`` each, the same values as the top of ``log_probs(hidden, ranked=True)``.

        Each part of the adaptive softmax offers its own best ``k``, so the full ``[N, V]`` table is
        never assembled (beam search needs only these). A cluster is scored only for the rows where
        it can place a piece among the best ``k``: no piece of it is likelier than the cluster
        itself, so where that is below the ``k``-th best shortlist piece, the cluster is skipped.
        """
        out = self.out
        head = F.log_softmax(out.head(hidden), dim=-1)
        top = head[:, : out.shortlist_size].topk(min(k, out.shortlist_size), dim=-1)
        values, ranks = [top.values], [top.indices]
        kth = top.values[:, -1] if k <= out.shortlist_size else torch.full_like(top.values[:, 0], -math.inf)
        for i, tail in enumerate(out.tail):
            cluster_log_prob = head[:, out.shortlist_size + i]
            rows = (cluster_log_prob >= kth).nonzero().squeeze(1)
            size = min(k, out.cutoffs[i + 1] - out.cutoffs[i])
            value = hidden.new_full((len(hidden), size), -math.inf)
            rank = torch.full_like(value, out.cutoffs[i], dtype=torch.long)
            if len(rows):
                top = F.log_softmax(tail(hidden[rows]), dim=-1).topk(size, dim=-1)
                value[rows] = top.values + cluster_log_prob[rows].unsqueeze(1)
                rank[rows] = top.indices + out.cutoffs[i]
            values.append(value)
            ranks.append(rank)
        values, ranks = torch.cat(values, dim=1), torch.cat(ranks, dim=1)
        best = values.topk(k, dim=-1)
        return best.values, ranks.gather(1, best.indices)

    # ---- likelihood ----------------------------------------------------------------------
    def reconstruction(self, tokens: torch.Tensor, lengths: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        """``-log p(x|z)`` in nats per line ``[N]`` for the decoder's ``code`` (None for the plain LM)."""
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.config.word_dropout
            drop[:, 0] = False  # keep BOS
            inputs = inputs.masked_fill(drop, UNK)
        out, _ = self.decode(inputs, code)
        # Every position goes through the output layer and padding is zeroed after: batches are
        # bucketed by length, so there is next to no padding, and this saves gathering the real
        # positions and scattering them back (about 1% of a training step).
        nll = -self.out(out.flatten(0, 1), self.rank_of[targets].flatten()).output.view(targets.shape)
        padding = torch.arange(targets.size(1), device=targets.device) >= lengths.unsqueeze(1)
        return nll.masked_fill(padding, 0.0).sum(dim=1)

    def bag_of_words(self, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``-log`` of each line's pieces (end-of-line not counted) under one softmax of the ``bow`` head
        on z, in nats per line ``[N]``: to lower it, z must say which pieces the line has, wherever they
        fall (Zhao et al. 2017's bag-of-words loss)."""
        pieces = tokens[:, 1:-1]
        real = torch.arange(pieces.size(1), device=pieces.device) < (lengths - 1).unsqueeze(1)
        log_probs = F.log_softmax(self.bow(z), dim=-1).gather(1, pieces)
        return -(log_probs * real).sum(dim=1)

    # ---- training loss -------------------------------------------------------------------
    def loss(self, batch, beta: float, free_bits: float = 0.0, bow_weight: float = 0.0, estimator: str = "score",
             gumbel_tau: float = 1.0, baseline: Baseline | None = None, autoencoder: bool = False):
        """Mean training loss per line of ``batch`` (tokens, lengths, conditions) and its parts (floats):
        ``rec + beta * KL``, each dimension's batch-mean KL floored at ``free_bits`` nats (no pull below
        it), plus ``bow_weight`` times the bag-of-words loss. ``autoencoder``: z is the posterior mean and
        there is no KL term (Li et al.'s pretraining). A plain LM's loss is its NLL.

        Bits cannot be reparameterised. With ``estimator="score"`` the loss also carries
        ``(rec - baseline) * log q(z|x)``, whose gradient is the encoder's (its value is subtracted
        again, so the reported loss stays ``rec + beta * KL``); in training mode it updates the running
        ``baseline``. With "gumbel" the bits are straight-through Gumbel draws at ``gumbel_tau``.
        """
        tokens, lengths, cond = batch
        if self.is_lm:
            rec = self.reconstruction(tokens, lengths, self.code(None, cond)).mean()
            return rec, {"rec": rec.item(), "kl": 0.0}
        q = self.posterior(tokens, lengths, cond)
        gaussian = isinstance(q, Gaussian)
        score = not (gaussian or autoencoder) and estimator == "score"
        if autoencoder:
            z = q.mean
        elif gaussian or score:
            z = q.sample()[:, 0]
        else:
            z = q.straight_through(gumbel_tau)
        rec_lines = self.reconstruction(tokens, lengths, self.code(z, cond))
        rec = rec_lines.mean()
        kl = q.kl().mean(dim=0)
        kl_term = kl.clamp(min=free_bits).sum() if free_bits > 0 else kl.sum()
        loss = rec if autoencoder else rec + beta * kl_term
        parts = {"rec": rec.item(), "kl": kl.sum().item()}
        if self.bow is not None and bow_weight:  # a head without a weight (the variance head's epochs) is not run
            bow = self.bag_of_words(tokens, lengths, z).mean()
            loss = loss + bow_weight * bow
            parts["bow"] = bow.item()
        if score:
            cost = rec_lines.detach()
            advantage = cost - baseline.value(lengths)
            surrogate = (advantage * q.log_prob(z.unsqueeze(1))[:, 0]).mean()
            loss = loss + surrogate - surrogate.detach()
            if self.training:
                baseline.update(cost, lengths)
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
