"""The public API: encode lines into the latent space, move around in it, decode back to verse.

    import vae_core
    vae = vae_core.load()                      # the shipped poetry model
    z = vae.mu(["the sea is calm tonight", "i wandered lonely as a cloud"])
    vae.beam(vae.interpolate(z[0], z[1], steps=8), width=4)

Method names follow Parrish's BPEmb VAE sampler notebook (``z``, ``mu``, ``greedy``, ``sample``,
``beam``). Every stochastic call takes ``seed`` for reproducible results.

For a bit-vector (Bernoulli) model a code is a vector of probabilities in [0, 1]: ``mu`` gives
each bit's posterior P(bit = 1), ``z``, ``prior`` and ``neighbours`` give bits (0 or 1), and the
decoder reads the most likely bits of whatever code it is given (p >= 0.5 is a 1).

A VRNN checkpoint loads as a ``SequenceSampler``: a latent per piece and no code for a whole line, so
it offers only ``sample(n)`` and ``reconstruct(lines)``. ``latent`` tells the two apart.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import torch

from . import decoding
from .checkpoint import SHIPPED, load_checkpoint
from .data import conditions
from .latent import Bernoulli, Gaussian, Posterior, concat
from .model import MAX_LEN, SentenceVAE
from .tokenizer import EOS, Tokenizer, clean
from .validate import Range
from .vrnn import VRNN

METHODS = ("greedy", "sample", "beam")
INTERPOLATIONS = ("linear", "slerp")
ENCODE_BATCH = 512
MAX_COUNT = 100_000  # most codes one call makes (prior, neighbours, steps)
MAX_WIDTH = 100  # widest beam: each step scores rows x width x vocabulary logits (gigabytes a row at 10,000)
# Largest magnitude of a code's value: the prior's codes lie within a few units of 0, and below this
# the sums, norms and products of codes stay finite in float32.
MAX_CODE = 1e6
COUNT, POSITIVE_COUNT = Range(int, 0, MAX_COUNT), Range(int, 1, MAX_COUNT)
SEED = Range(int, 0, 2**64 - 1)  # torch's seeds are unsigned 64-bit integers
NON_NEGATIVE, PROBABILITY = Range(float, 0), Range(float, 0, 1)
LINE_LENGTH = Range(int, 1, MAX_LEN)
LATENTS = ("posterior", "prior")  # where a VRNN's reconstruction takes its latents from


def _generator(seed: int | None) -> torch.Generator | None:
    """A generator seeded with ``seed``, or None (torch's global generator) for no seed."""
    if seed is None:
        return None
    return torch.Generator().manual_seed(SEED.check("seed", seed))


class Loaded:
    """A checkpoint's model (in eval mode), tokenizer, config.json and directory."""

    def __init__(self, model: SentenceVAE | VRNN, tokenizer: Tokenizer, config: dict | None = None, directory=None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config or {}
        self.directory = Path(directory) if directory is not None else None

    @property
    def nz(self) -> int:
        """Latent dimensions (per piece for a VRNN)."""
        return self.model.config.nz

    @property
    def max_len(self) -> int:
        return self.model.config.max_len


class Sampler(Loaded):
    """A loaded sentence VAE with batched encoding, latent operations and decoding."""

    @property
    def latent(self) -> str:
        """The code's family: "gaussian" (z in R^nz) or "bernoulli" (z in {0, 1}^nz)."""
        return self.model.config.latent

    @property
    def bits(self) -> bool:
        return self.latent == "bernoulli"

    @property
    def condition(self) -> str:
        """What the model is conditioned on ("syllables"), or "" for none."""
        return self.model.config.condition

    # ---- encoding ------------------------------------------------------------------------
    @torch.no_grad()
    def posterior(self, lines) -> Posterior:
        """q(z|line) of the lines (see ``vae_core.latent``), on the CPU."""
        if self.model.is_lm:
            raise ValueError("this checkpoint is a language model: it has no latent space to encode into")
        lines = check_lines(lines)
        if not lines:
            empty = torch.empty(0, self.nz)
            return Bernoulli(empty, self.model.prior_logit) if self.bits else Gaussian(empty, empty.clone())
        ids = self.tokenizer.encode(lines)
        cond = conditions(lines, self.condition)
        device = self.model.rank_of.device
        parts = []
        for start in range(0, len(ids), ENCODE_BATCH):
            tokens, lengths = self.tokenizer.batch(ids[start : start + ENCODE_BATCH])
            part = cond[start : start + ENCODE_BATCH].to(device) if cond is not None else None
            q = self.model.posterior(tokens.to(device), lengths.to(device), part)
            parts.append(q.cpu())
        return concat(parts)

    def mu(self, lines) -> torch.Tensor:
        """Posterior means, ``[N, nz]`` (for bits: each bit's P(bit = 1))."""
        return self.posterior(lines).mean

    def z(self, lines, seed: int | None = None) -> torch.Tensor:
        """One posterior sample per line, ``[N, nz]``."""
        return self.posterior(lines).sample(generator=_generator(seed))[:, 0]

    def encode(self, lines, sample: bool = False, seed: int | None = None):
        """``(z, mu, std)`` for each line in one encoder pass: z is the posterior mean, or a
        posterior sample when ``sample``; std is the posterior standard deviation."""
        q = self.posterior(lines)
        z = q.sample(generator=_generator(seed))[:, 0] if sample else q.mean
        return z, q.mean, q.std

    # ---- latent operations ---------------------------------------------------------------
    def check_z(self, z) -> torch.Tensor:
        """``z`` as a float tensor ``[N, nz]`` (a single ``[nz]`` code becomes one row)."""
        z = self._rows("z", z)
        if self.bits and ((z < 0) | (z > 1)).any():
            raise ValueError("a bit-vector code holds probabilities: every value must be in [0, 1]")
        return z

    def _rows(self, name: str, value) -> torch.Tensor:
        """``value`` (a tensor, array or nested list of real numbers) as a float tensor ``[N, nz]`` within
        ±``MAX_CODE``; a single ``[nz]`` vector becomes one row."""
        try:
            rows = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            rows = None
        if rows is None or rows.is_complex():
            got = "complex values" if rows is not None else type(value).__name__
            raise ValueError(f"{name} must be a real [N, {self.nz}] tensor or array, got {got}")
        rows = rows.float()
        if rows.dim() == 1 and rows.numel() == self.nz:
            rows = rows.unsqueeze(0)
        if rows.dim() != 2 or rows.size(1) != self.nz:
            raise ValueError(f"{name} must have shape [N, {self.nz}] (or [{self.nz}]), got {list(rows.shape)}")
        if not torch.isfinite(rows).all():
            raise ValueError(f"{name} holds NaN or infinite values")
        if (rows.abs() > MAX_CODE).any():
            raise ValueError(f"{name} holds values beyond ±{MAX_CODE:g}: codes lie within a few units of 0")
        return rows

    def prior(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` codes from the prior: N(0, I), or bits that are 1 with the prior's probability."""
        n = COUNT.check("n", n)
        if self.bits:
            return torch.bernoulli(torch.full((n, self.nz), self.model.config.prior_p), generator=_generator(seed))
        return torch.randn(n, self.nz, generator=_generator(seed))

    def interpolate(self, z_a, z_b, steps: int = 10, method: str = "linear") -> torch.Tensor:
        """The homotopy from ``z_a`` to ``z_b``: ``steps + 1`` codes, both endpoints included.

        ``slerp`` follows the great circle between the two directions (scaling the norm linearly),
        which keeps intermediate codes as far from the origin as typical prior samples. Between two
        bit-probability vectors only ``linear`` applies: each bit flips where its probability
        crosses 0.5, so the decoded lines walk from one code to the other a few bits at a time.
        """
        a, b = self.check_z(z_a), self.check_z(z_b)
        if len(a) != 1 or len(b) != 1:
            raise ValueError("interpolate takes one code for each endpoint")
        steps = POSITIVE_COUNT.check("steps", steps)
        methods = ("linear",) if self.bits else INTERPOLATIONS
        if method not in methods:
            raise ValueError(f"method must be one of {methods} for a {self.latent} code, got {method!r}")
        t = torch.linspace(0, 1, steps + 1).unsqueeze(1)
        a, b = a[0], b[0]
        if method == "slerp" and a.norm() > 0 and b.norm() > 0:
            ua, ub = a / a.norm(), b / b.norm()
            omega = torch.arccos((ua * ub).sum().clamp(-1, 1))
            if math.sin(float(omega)) > 1e-6:
                direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
                path = direction * ((1 - t) * a.norm() + t * b.norm())
            else:
                path = (1 - t) * a + t * b
        else:
            path = (1 - t) * a + t * b
        path[0], path[-1] = a, b  # exact endpoints whatever the rounding
        return path

    def neighbours(self, z, n: int = 8, noise: float = 0.1, seed: int | None = None, std=None) -> torch.Tensor:
        """``n`` codes around ``z``: ``z + noise * eps`` (``eps ~ N(0, I)``, times ``std`` if given,
        e.g. the line's posterior standard deviation). For bits: ``z``'s most likely bits, each
        flipped with probability ``noise`` (``std`` does not apply)."""
        z = self.check_z(z)
        if len(z) != 1:
            raise ValueError("neighbours takes one code")
        n = COUNT.check("n", n)
        if self.bits:
            noise = PROBABILITY.check("noise (a flip probability)", noise)
            bits = most_likely_bits(z)
            flips = torch.rand(n, self.nz, generator=_generator(seed)) < noise
            return torch.where(flips, 1 - bits, bits)
        noise = NON_NEGATIVE.check("noise", noise)
        std = self._check_std(std) if std is not None else torch.ones(1, self.nz)
        codes = z + noise * (torch.randn(n, self.nz, generator=_generator(seed)) * std)
        if not torch.isfinite(codes).all():
            raise ValueError(f"noise {noise:g} is too large: the neighbours' values overflow")
        return codes

    def _check_std(self, std) -> torch.Tensor:
        """``std`` as one row ``[1, nz]`` of non-negative scales."""
        std = self._rows("std", std)
        if len(std) != 1:
            raise ValueError(f"std must be one scale per dimension, shape [{self.nz}] or [1, {self.nz}], "
                             f"got {list(std.shape)}")
        if (std < 0).any():
            raise ValueError("std must be non-negative")
        return std

    # ---- decoding ------------------------------------------------------------------------
    def _prepare(self, z, max_len, syllables):
        """The decoder's code for ``z`` (with the condition), the number of rows and ``max_len``."""
        z = self.check_z(z)
        if self.bits:
            z = most_likely_bits(z)
        max_len = LINE_LENGTH.check("max_len", self.max_len if max_len is None else max_len)
        device = self.model.rank_of.device
        cond = self._condition(syllables, len(z))
        code = self.model.code(z.to(device) if self.nz > 0 else None, cond.to(device) if cond is not None else None)
        return code, len(z), max_len

    def _condition(self, syllables, n: int) -> torch.Tensor | None:
        """Requested syllable counts for ``n`` rows: one number for all, one per row, or None (a
        conditioned model then gets the training lines' mean count)."""
        if not self.condition:
            if syllables is not None:
                raise ValueError("this checkpoint is not conditioned on syllables")
            return None
        if syllables is None:
            return torch.full((n,), float(round(self.model.config.cond_mean)))
        try:
            values = torch.as_tensor(syllables, dtype=torch.float32).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"syllables must be a count or one count per row, got {syllables!r}") from err
        if len(values) == 1:
            values = values.expand(n)
        if len(values) != n or not torch.isfinite(values).all() or (values < 0).any() or (values > 100).any():
            raise ValueError(f"syllables must be one count from 0 to 100 or one per row of z ({n}), got {syllables!r}")
        return values

    def _texts(self, ids: torch.Tensor) -> list[str]:
        return [self.tokenizer.decode(row) for row in ids.tolist()]

    def greedy(self, z, max_len: int | None = None, syllables=None) -> list[str]:
        """The most likely piece at each step, one line per row of ``z`` (``syllables``: the
        requested counts for a conditioned model)."""
        z, n, max_len = self._prepare(z, max_len, syllables)
        return self._texts(decoding.greedy(self.model, z, n, max_len))

    def sample(self, z, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               seed: int | None = None, max_len: int | None = None, syllables=None) -> list[str]:
        """Each piece drawn from the softmax at ``temperature`` (0: the most likely piece), optionally cut to
        ``top_k`` / ``top_p``."""
        temperature = NON_NEGATIVE.check("temperature", temperature)
        if top_k is not None:
            top_k = POSITIVE_COUNT.check("top_k", top_k)
        if top_p is not None:
            top_p = Range(float, 0, 1, open_low=True).check("top_p", top_p)
        z, n, max_len = self._prepare(z, max_len, syllables)
        ids = decoding.sample(self.model, z, n, max_len, temperature, top_k, top_p, _generator(seed))
        return self._texts(ids)

    def beam(self, z, width: int = 4, max_len: int | None = None, length_penalty: float = 1.0,
             syllables=None) -> list[str]:
        """Beam search with ``width`` hypotheses per row (at most ``MAX_WIDTH``, and one per piece of the
        vocabulary), length-normalised."""
        width = Range(int, 1, min(MAX_WIDTH, self.model.config.vocab_size)).check("width", width)
        length_penalty = NON_NEGATIVE.check("length_penalty", length_penalty)
        z, n, max_len = self._prepare(z, max_len, syllables)
        return self._texts(decoding.beam(self.model, z, n, max_len, width, length_penalty))

    def decode(self, z, method: str = "greedy", **options) -> list[str]:
        """Decode with ``method`` (greedy, sample or beam) and that method's options."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        decoder = getattr(self, method)
        try:
            inspect.signature(decoder).bind(z, **options)
        except TypeError as err:
            raise ValueError(f"unknown option for {method}: {err}") from err
        return decoder(z, **options)


def most_likely_bits(p: torch.Tensor) -> torch.Tensor:
    """The most likely bits of probability vectors (a probability of exactly 0.5 gives 1)."""
    return (p >= 0.5).float()


def _no_sentence_code(name: str):
    """A method of ``Sampler`` that a VRNN cannot offer: it says why instead."""

    def refuse(self, *args, **kwargs):
        raise ValueError(f"{name}() needs a sentence code: a VRNN has a latent per step and no sentence code "
                         "(use sample(n) or reconstruct(lines))")

    refuse.__name__ = name
    return refuse


class SequenceSampler(Loaded):
    """A loaded VRNN: batched generation and reconstruction of lines, latents step by step."""

    @property
    def latent(self) -> str:
        """The kind of latent: a Gaussian per piece, no code for the whole line."""
        return "sequence"

    @property
    def condition(self) -> str:
        """A VRNN is never conditioned."""
        return ""

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None, max_len: int | None = None,
               line: str | None = None, fixed: int = 0) -> list[str]:
        """``n`` lines, each step's latent from the prior and its piece from the softmax at ``temperature``
        (0: the most likely piece, the latents still drawn). With ``line``, the latents of the first
        ``fixed`` steps are that line's posterior means, the same in every sample, and the prior's
        after them: where the latents carry the pieces, the samples begin like the line."""
        n = COUNT.check("n", n)
        temperature = NON_NEGATIVE.check("temperature", temperature)
        max_len = LINE_LENGTH.check("max_len", self.max_len if max_len is None else max_len)
        fixed = Range(int, 0, max_len).check("fixed", fixed)
        latents = None
        if fixed:
            if line is None:
                raise ValueError("fixed latents need the line they come from: pass line=")
            tokens, lengths = self.tokenizer.batch(self.tokenizer.encode(check_lines(line)))
            device = self.model.rank_of.device
            latents = self.model.posterior_means(tokens.to(device), lengths.to(device))[0, :fixed]
            latents = latents[: int(lengths[0])]  # a line shorter than ``fixed`` fixes all its steps
        ids = self.model.generate(n, max_len, temperature, _generator(seed), latents)
        return [self.tokenizer.decode(row) for row in ids.tolist()]

    @torch.no_grad()
    def reconstruct(self, lines, latents: str = "posterior") -> list[str]:
        """The most likely piece at each piece of each line, teacher-forced with the latents at their
        posterior means (``latents="prior"``: at the prior's means, which have not seen the pieces; see
        ``VRNN.reconstruct`` for what this shows); an end of line guessed mid-line is left out."""
        if latents not in LATENTS:
            raise ValueError(f"latents must be one of {LATENTS}, got {latents!r}")
        ids = self.tokenizer.encode(check_lines(lines))
        device = self.model.rank_of.device
        out = []
        for start in range(0, len(ids), ENCODE_BATCH):
            tokens, lengths = self.tokenizer.batch(ids[start : start + ENCODE_BATCH])
            rows = self.model.reconstruct(tokens.to(device), lengths.to(device), latents).tolist()
            out += [[p for p in row[: n - 1] if p != EOS] for row, n in zip(rows, lengths.tolist())]
        return [self.tokenizer.decode(row) for row in out]

    posterior = _no_sentence_code("posterior")
    mu = _no_sentence_code("mu")
    z = _no_sentence_code("z")
    encode = _no_sentence_code("encode")
    prior = _no_sentence_code("prior")
    interpolate = _no_sentence_code("interpolate")
    neighbours = _no_sentence_code("neighbours")
    greedy = _no_sentence_code("greedy")
    beam = _no_sentence_code("beam")
    decode = _no_sentence_code("decode")


def check_lines(lines) -> list[str]:
    """``lines`` (or one line) as a list of non-empty strings; anything else is a ValueError. A line is
    empty when the tokenizer's clean-up leaves nothing of it (only spaces and control characters)."""
    if isinstance(lines, str):
        lines = [lines]
    try:
        lines = list(lines)
    except TypeError as err:
        raise ValueError(f"lines must be a string or a list of strings, got {type(lines).__name__}") from err
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise ValueError(f"line {i} is {type(line).__name__}, expected a string")
        if not clean(line):
            raise ValueError(f"line {i} is empty (or only spaces and control characters): give at least one word "
                             "to encode")
    return lines


def first_appearances(lines: list[str]) -> list[tuple[int, str]]:
    """The distinct lines of a homotopy with the step at which each first appears."""
    seen: dict[str, int] = {}
    for step, line in enumerate(lines):
        seen.setdefault(line, step)
    return [(step, line) for line, step in seen.items()]


def load(path: str | Path | None = None) -> Sampler | SequenceSampler:
    """A sampler for the checkpoint directory ``path`` (default: the shipped poetry model): a
    ``SequenceSampler`` for a VRNN."""
    directory = Path(path) if path is not None else SHIPPED
    model, tokenizer, config = load_checkpoint(directory)
    return (SequenceSampler if isinstance(model, VRNN) else Sampler)(model, tokenizer, config, directory)
