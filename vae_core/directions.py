"""Directions through the latent space, and the moves along them.

A direction is a unit vector with the spread (standard deviation) of the corpus codes along it, so
"steer by +2" means two corpus spreads, whatever the direction. It comes from two sets of codes
(``direction``: from a towards b) or from a property of a corpus (``direction_for``: longer lines,
more syllables, an end rhyme, a word), each with a held-out score that says how real it is. The
moves are plain tensor arithmetic on codes: ``steer``, ``analogy``, ``traverse`` (one dimension)
and ``circle`` (a closed loop through two codes). ``dimension_effects`` decodes every dimension
moved at once, and ``probe_table`` / ``dimension_correlations`` say what the codes know about each
property. For a bit-vector model codes are bit probabilities and every function works per bit.

    corpus = Corpus.encode(vae, lines)               # or a Projection (same attributes)
    longer = direction_for(corpus, "words")
    vae.beam(steer(vae.mu("the sea is calm tonight"), longer, [-2, 0, 2]))
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import properties
from .recall import as_codes
from .sampler import MAX_COUNT, SEED
from .syllables import words
from .validate import Range

MAX_LINES = 20_000  # corpus lines a direction or probe is fitted on (a seeded sample of the rest)
MIN_LINES = 10  # fewest corpus lines to fit and score a property on
HELD_OUT = 0.3  # share of lines kept out of fitting, to score on
TOP_CLASSES = 12  # categorical probes keep the most frequent classes, the rest are "other"
RIDGE = 1.0  # ridge penalty of the regressions (codes are about unit scale: a light touch)
# The logistic regressions' BLAS/OpenMP threads: their matrices are small (20,000 x 32), and two
# threads on cores that another job is busy on ran them ten times slower than one.
PROBE_THREADS = 1


@dataclass
class Direction:
    """A unit vector through the latent space, with the corpus codes' spread along it."""

    vector: torch.Tensor  # [nz], unit norm
    spread: float  # standard deviation of the corpus codes projected on ``vector``
    score: float  # how well it holds on held-out lines (see ``score_name``)
    score_name: str  # "AUC" (two sets) or "R^2" (a numeric property)
    name: str = ""  # a human label


@dataclass
class Corpus:
    """Lines with their posterior means and properties: what directions and probes are fitted on. A
    ``Projection`` has the same attributes and can be passed wherever a ``Corpus`` is."""

    lines: list[str]
    codes: torch.Tensor  # [N, nz]
    fields: dict[str, np.ndarray]  # per-line properties; a field with ``names`` is categorical
    names: dict[str, list[str]] = field(default_factory=dict)  # category names of each categorical field

    @classmethod
    def encode(cls, sampler, lines: list[str]) -> Corpus:
        """Encode ``lines`` with ``sampler`` and measure their properties (every category kept by name)."""
        codes = sampler.mu(lines)
        measured = properties.line_properties(lines, sampler.tokenizer)
        fields = {name: measured[name] for name in ("pieces", "words", "syllables")}
        names = {}
        for name in ("rhyme", "first_word", "final_punct"):
            fields[name], names[name] = properties.encode_categories(measured[name])
        fields["code_norm"] = codes.norm(dim=1).numpy()
        return cls(list(lines), codes, fields, names)


# ---- finding directions --------------------------------------------------------------------
def direction(codes_a, codes_b, probe: bool = False, seed: int = 0, corpus_codes=None, name: str = "") -> Direction:
    """The direction from the codes ``codes_a`` towards ``codes_b`` ``[N, nz]``: the difference of
    their mean codes (b minus a) or, with ``probe``, a logistic-regression probe's weights.

    The score is the AUC of the held-out codes projected on a direction fitted without them (a seeded
    70/30 split of each set): the chance that a b code lies further along than an a code, 0.5 for
    sets the direction cannot tell apart, 1 for a clean separation. AUC needs no threshold and does
    not depend on the sets' sizes, so a rare word against the rest of a corpus scores fairly. The
    vector returned is fitted on all the codes; its spread is measured on ``corpus_codes`` (the codes
    it will steer among), or on the two sets together.
    """
    seed = SEED.check("seed", seed)
    a = as_codes("codes_a", codes_a)
    b = as_codes("codes_b", codes_b, width=a.shape[1])
    corpus = torch.cat([a, b]) if corpus_codes is None else as_codes("corpus_codes", corpus_codes, width=a.shape[1])
    return _separating(a, b, probe, seed, corpus, name or ("probe" if probe else "mean difference"))


def direction_for(corpus, prop: str, value=None, probe: bool = False, seed: int = 0,
                  max_lines: int = MAX_LINES) -> Direction:
    """The direction of a property over a corpus (a ``Corpus`` or a ``Projection``).

    - a numeric field (pieces, words, syllables, recon_f1, code_norm): the codes' covariance with the
      property, normalised, scored by held-out R^2;
    - a categorical field (rhyme, first_word, final_punct, split, region) with ``value`` one of its
      names: the lines of that value against the rest, as ``direction`` (``probe`` applies);
    - ``"word"`` with ``value`` a word: the lines containing the word against the rest.

    At most ``max_lines`` lines (a seeded sample) are fitted on, and at most half as many from each
    side of a two-set property, so it takes well under a second on the whole map.
    """
    if not isinstance(prop, str):
        raise ValueError(f"prop must be the name of a property, got {type(prop).__name__}")
    seed = SEED.check("seed", seed)
    codes = as_codes("corpus.codes", corpus.codes)
    if len(codes) < MIN_LINES:
        raise ValueError(f"a direction needs a corpus of at least {MIN_LINES} lines, got {len(codes)}")
    max_lines = _count("max_lines", max_lines, minimum=MIN_LINES)
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randperm(len(codes), generator=generator)[:max_lines]
    if prop == "word":
        word = _one_word(value)
        members, name = _containing(corpus.lines, word, len(codes)), f"contains {word!r}"
    elif prop in corpus.names:
        members, name = _category(corpus, prop, value), f"{prop} = {value}"
    elif prop in corpus.fields:
        if value is not None:
            raise ValueError(f"{prop!r} is a numeric property: it takes no value (got {value!r})")
        return _regression_direction(codes[sample], _field(corpus, prop, len(codes))[sample.numpy()], prop, seed)
    else:
        raise ValueError(f"unknown property {prop!r}: choose one of {sorted(corpus.fields)} or 'word'")
    inside, outside = np.flatnonzero(members), np.flatnonzero(~members)
    if len(inside) < 2 or len(outside) < 2:
        raise ValueError(f"{name}: {len(inside)} of {len(codes)} lines, too few on one side to fit and score on "
                         "(at least 2 on each)")
    a, b = (codes[_subset(rows, max_lines // 2, generator)] for rows in (outside, inside))
    return _separating(a, b, probe, seed, codes[sample], name)


def _separating(a: torch.Tensor, b: torch.Tensor, probe: bool, seed: int, corpus: torch.Tensor,
                name: str) -> Direction:
    """``direction`` on checked codes."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"each set needs at least 2 codes (one to fit on, one to score on), got {len(a)} and {len(b)}")
    fit = _probe if probe else _mean_difference
    (a_fit, a_test), (b_fit, b_test) = _split(len(a), seed), _split(len(b), seed)
    held = fit(a[a_fit], b[b_fit])
    score = _auc(a[a_test] @ held, b[b_test] @ held)
    vector = fit(a, b)
    return Direction(vector, _spread(corpus, vector), score, "AUC", name)


def _mean_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The unit vector from a's mean code to b's."""
    return _unit(b.mean(dim=0) - a.mean(dim=0), "the two sets have the same mean code")


def _probe(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The unit weight vector of a logistic regression telling b codes (1) from a codes (0), classes
    weighted to balance."""
    x, y = torch.cat([a, b]).numpy(), np.r_[np.zeros(len(a)), np.ones(len(b))]
    with threadpool_limits(PROBE_THREADS):
        from sklearn.linear_model import LogisticRegression  # slow to import: only when a direction is fitted

        model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(x, y)
    return _unit(torch.as_tensor(model.coef_[0], dtype=torch.float32), "the probe found no direction")


def _regression_direction(x: torch.Tensor, y: np.ndarray, prop: str, seed: int) -> Direction:
    """The way the codes ``x`` move as ``y`` grows: their covariance with it, normalised (for a number
    what the difference of means is for two sets), scored by the held-out R^2 of predicting ``y`` from
    the codes' place along it. A ridge regression of ``y`` on the codes predicts ``y`` better, but it
    can point where the codes hardly spread, so that steering along it changes no decoded line."""
    x, y = x.double(), torch.as_tensor(y, dtype=torch.float64)
    if float(y.std()) == 0:
        raise ValueError(f"{prop!r} has the same value on every line: it has no direction")
    fit, test = _split(len(x), seed)
    held = _covariance(x[fit], y[fit], prop)
    w, bias = _ridge((x[fit] @ held)[:, None], y[fit])
    score = _r2(y[test], (x[test] @ held)[:, None] @ w + bias)
    vector = _covariance(x, y, prop).float()
    return Direction(vector, _spread(x.float(), vector), score, "R^2", prop)


def _covariance(x: torch.Tensor, y: torch.Tensor, prop: str) -> torch.Tensor:
    """The unit covariance of each code dimension with ``y``."""
    return _unit((x - x.mean(dim=0)).T @ (y - y.mean()), f"the codes do not vary with {prop!r}")


def _one_word(value) -> str:
    """``value`` as one lower-case word, as ``syllables.words`` splits lines."""
    if not isinstance(value, str) or len(words(value)) != 1:
        raise ValueError(f"prop 'word' takes value=<one word>, got {value!r}")
    return words(value)[0]


def _containing(lines: list[str], word: str, n: int) -> np.ndarray:
    """Which of the ``n`` lines contain ``word``, by one regular-expression scan of all the lines joined."""
    if len(lines) != n:
        raise ValueError(f"the corpus has {len(lines)} lines for {n} codes")
    text = "\n".join(lines).lower()
    starts = np.cumsum([0] + [len(line) + 1 for line in lines[:-1]])
    found = re.finditer(rf"(?<![a-z']){re.escape(word)}(?![a-z'])", text)
    members = np.zeros(n, dtype=bool)
    members[np.searchsorted(starts, [m.start() for m in found], side="right") - 1] = True
    if not members.any():
        raise ValueError(f"no line of the corpus contains the word {word!r}")
    return members


def _category(corpus, prop: str, value) -> np.ndarray:
    """Which lines have the category ``value`` of the field ``prop``."""
    names = list(corpus.names[prop])
    if value not in names:
        raise ValueError(f"{value!r} is not a category of {prop!r}; the most frequent are {names[:10]}")
    return _field(corpus, prop, len(corpus.codes)) == names.index(value)


# ---- moving along them ---------------------------------------------------------------------
def steer(z, direction: Direction, amounts) -> torch.Tensor:
    """``z`` moved along ``direction`` by each amount (in corpus spreads): ``[len(amounts), nz]`` codes
    ``z + amount * spread * vector``. (A bit-probability code may leave [0, 1]: clamp it to decode.)"""
    z = _code("z", z, width=len(direction.vector))
    amounts = _values("amounts", amounts)
    moved = z + (amounts * direction.spread).unsqueeze(1) * direction.vector
    if not torch.isfinite(moved).all():
        raise ValueError(f"amounts {amounts.tolist()} are too large: times the direction's spread "
                         f"({direction.spread:g}) they overflow")
    return moved


def steer_counts(count: int, corpus, amounts) -> list[int]:
    """The syllable counts to ask of a syllable-conditioned model steered along the syllable
    direction: the line's own ``count`` moved by each amount in spreads of the corpus's counts, kept
    in 1-100. Such a model leaves the count to its condition, not its code, so steering the code alone
    barely moves it: the condition moves with the code."""
    count = _count("count", count, 0, 100)
    spread = float(np.std(_field(corpus, "syllables", len(corpus.codes))))
    return [min(max(round(count + amount * spread), 1), 100) for amount in _values("amounts", amounts).tolist()]


def analogy(a, b, c, keep_norm: bool = False) -> torch.Tensor:
    """``c + (b - a)``: what c becomes when moved as a was moved to b ("a is to b as c is to ?"). Each
    argument is one code ``[nz]`` or rows ``[N, nz]`` (broadcast); the answer is ``[N, nz]``.

    With ``keep_norm`` the answer is rescaled to the norm of c, the code being moved: adding a
    difference mostly lengthens a code, and the decoder has seen codes at the corpus's norms (the
    shell that slerp keeps to), so the answer stays as typical a code as c is. a == b gives c
    either way.
    """
    c = as_codes("c", c)
    a, b = as_codes("a", a, width=c.shape[1]), as_codes("b", b, width=c.shape[1])
    try:
        answer = c + (b - a)
    except RuntimeError as err:
        raise ValueError(f"a, b and c must be one code or the same number of rows: {err}") from err
    if keep_norm:
        answer = answer * (c.norm(dim=1, keepdim=True) / answer.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return answer


def traverse(z, dim: int, values) -> torch.Tensor:
    """``z`` with dimension ``dim`` set to each value, the others fixed: ``[len(values), nz]``. Sweep a
    dimension in corpus spreads with ``z[dim] + k * dimension_spread(codes)[dim]``."""
    z = _code("z", z)
    dim = _count("dim", dim, maximum=len(z) - 1)
    values = _values("values", values)
    path = z.repeat(len(values), 1)
    path[:, dim] = values
    return path


def dimension_spread(codes) -> torch.Tensor:
    """Each dimension's standard deviation over the corpus codes ``[N, nz]``: ``[nz]``. (Its square is
    the activity that counts active units: a dimension the encoder ignores has spread 0.)"""
    codes = as_codes("codes", codes)
    if len(codes) < 2:
        raise ValueError(f"a spread needs at least 2 codes, got {len(codes)}")
    return codes.std(dim=0)


def circle(z_a, z_b, steps: int) -> torch.Tensor:
    """A closed loop through ``z_a`` and ``z_b`` in the plane they span: ``steps`` codes, starting at
    ``z_a``, through ``z_b`` (exactly, as one of the rows) and round the far side back towards
    ``z_a``; the last row is one step short of ``z_a``, so the loop plays round and round without a
    repeated frame.

    With u = z_a / |z_a| and v the unit part of z_b orthogonal to u, each code is
    ``r * (cos(angle) u + sin(angle) v)``: the angle turns once round (2 pi), through z_b's angle
    on the way, with the steps shared between the two arcs in proportion to their angles; the norm
    r moves linearly in the angle from |z_a| to |z_b| on the near arc and back on the far one, as
    slerp does, so the loop stays at the norms of the two codes (Parrish's circular walks).
    """
    a = _code("z_a", z_a)
    b = _code("z_b", z_b, width=len(a))
    steps = _count("steps", steps, minimum=2, maximum=MAX_COUNT)
    norm_a, norm_b = a.norm(), b.norm()
    if norm_a == 0 or norm_b == 0:
        raise ValueError("a circle needs two non-zero codes: a zero code has no direction")
    u = a / norm_a
    across = b - (b @ u) * u
    if across.norm() <= 1e-6 * norm_b:
        raise ValueError("z_a and z_b lie on one line through the origin: they span no plane to circle in")
    v = across / across.norm()
    angle_b = math.atan2(float(b @ v), float(b @ u))  # in (0, pi)
    near = min(max(round(steps * angle_b / (2 * math.pi)), 1), steps - 1)  # steps from z_a to z_b
    t, s = torch.arange(near) / near, torch.arange(steps - near) / (steps - near)
    angle = torch.cat([t * angle_b, angle_b + s * (2 * math.pi - angle_b)])
    radius = torch.cat([norm_a + t * (norm_b - norm_a), norm_b + s * (norm_a - norm_b)])
    path = radius.unsqueeze(1) * (torch.cos(angle).unsqueeze(1) * u + torch.sin(angle).unsqueeze(1) * v)
    path[0], path[near] = a, b  # exact, whatever the rounding
    return path


# ---- what each dimension does --------------------------------------------------------------
@dataclass
class Effects:
    """What moving each dimension of one code does to its decoding."""

    base: str  # the unmoved code's line
    dims: list[int]
    values: list[float]
    lines: list[list[str]]  # [len(dims)][len(values)]: the line with dimension dims[i] set to values[j]
    change: np.ndarray  # [len(dims)]: mean share of words that differ from ``base`` (0 unchanged, 1 all)


def dimension_effects(sampler, z, values, dims=None, method: str = "greedy", centre=None, scale=None,
                      **options) -> Effects:
    """Decode one code with each of ``dims`` (default: all) set to each of ``values``, the whole grid
    and the unmoved code in one batched decoding (``method`` and ``options`` as ``Sampler.decode``),
    and score each dimension by how much it changes the line: the mean over values of 1 minus
    difflib's word-sequence similarity to the unmoved line. Order dimensions by ``-change`` to show
    the busiest first. With ``centre`` and ``scale`` (``[nz]``, say the corpus mean and
    ``dimension_spread``), dimension d is set to ``centre[d] + value * scale[d]``: values in spreads."""
    z = sampler.check_z(z)
    if len(z) != 1:
        raise ValueError(f"dimension_effects takes one code, got {len(z)}")
    values = _values("values", values)
    dims = list(range(sampler.nz)) if dims is None else [_count("dim", d, maximum=sampler.nz - 1) for d in dims]
    if not dims:
        raise ValueError("dims must name at least one dimension")
    centre = torch.zeros(sampler.nz) if centre is None else _code("centre", centre, sampler.nz)
    scale = torch.ones(sampler.nz) if scale is None else _code("scale", scale, sampler.nz)
    chosen = torch.tensor(dims)
    grid = z.repeat(len(dims), len(values), 1)  # [D, V, nz]
    grid[torch.arange(len(dims)).unsqueeze(1), torch.arange(len(values)), chosen.unsqueeze(1)] = (
        centre[chosen].unsqueeze(1) + values * scale[chosen].unsqueeze(1))
    decoded = sampler.decode(torch.cat([z, grid.flatten(0, 1)]), method, **options)
    base, rows = decoded[0], [decoded[1 + i * len(values): 1 + (i + 1) * len(values)] for i in range(len(dims))]
    base_words = words(base)
    change = np.array([np.mean([1 - SequenceMatcher(None, base_words, words(line)).ratio() for line in row])
                       for row in rows])
    return Effects(base, dims, values.tolist(), rows, change)


# ---- what the codes know -------------------------------------------------------------------
def probe_table(corpus, seed: int = 0, max_lines: int = MAX_LINES) -> list[dict]:
    """How well a linear probe from the codes predicts each property of held-out lines (a seeded
    70/30 split of at most ``max_lines``), beside two baselines: ``baseline`` knows nothing (it
    predicts the training mean or majority class) and ``length_only`` is the same probe from the
    line's piece count alone, so a property the codes know only through length shows as such.
    Numeric properties: ridge regression, R^2. Categorical ones: logistic regression over the
    ``TOP_CLASSES`` most frequent classes and "other", accuracy."""
    codes, fields = _fitting_sample(corpus, seed, max_lines)
    if "pieces" not in fields:
        raise ValueError("probe_table needs the 'pieces' field for its length-only baseline")
    length = torch.as_tensor(fields["pieces"], dtype=torch.float32).unsqueeze(1)
    fit, test = _split(len(codes), seed)
    rows = []
    for prop, y in fields.items():
        categorical = prop in corpus.names
        probe, measure, y = (_classify, "accuracy", _top(y)) if categorical else (_regress, "R^2", y)
        score, baseline = probe(codes, y, fit, test)
        rows.append({"property": prop, "measure": measure, "probe": score, "baseline": baseline,
                     "length_only": probe(length, y, fit, test)[0], "held_out": len(test)})
    return rows


def dimension_correlations(corpus, seed: int = 0, max_lines: int = MAX_LINES) -> tuple[np.ndarray, list[str]]:
    """How each dimension goes with each property over (a seeded sample of) the corpus: a matrix
    ``[nz, n_props]`` and the properties' names. A numeric property gets Pearson's correlation (-1 to
    1); a categorical one the correlation ratio eta (0 to 1: the square root of the share of the
    dimension's variance that the class means explain) over its ``TOP_CLASSES`` classes and "other",
    since a category has no sign and rare classes would inflate eta."""
    codes, fields = _fitting_sample(corpus, seed, max_lines)
    x = codes.double()
    x = (x - x.mean(dim=0)) / x.std(dim=0, unbiased=False).clamp_min(1e-12)
    columns = []
    for prop, y in fields.items():
        if prop in corpus.names:
            onehot = torch.nn.functional.one_hot(torch.as_tensor(_top(y), dtype=torch.long)).double()
            means = (onehot.T @ x) / onehot.sum(dim=0).unsqueeze(1)  # [K, nz] class means of standardised x
            columns.append(((onehot.sum(dim=0).unsqueeze(1) * means**2).sum(dim=0) / len(x)).sqrt())
        else:
            y = torch.as_tensor(y, dtype=torch.float64)
            columns.append((x * ((y - y.mean()) / y.std(unbiased=False).clamp_min(1e-12)).unsqueeze(1)).mean(dim=0))
    return torch.stack(columns, dim=1).numpy(), list(fields)


def _fitting_sample(corpus, seed: int, max_lines: int) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """A seeded sample of at most ``max_lines`` of the corpus's codes and fields."""
    seed = SEED.check("seed", seed)
    codes = as_codes("corpus.codes", corpus.codes)
    if len(codes) < MIN_LINES:
        raise ValueError(f"a probe needs a corpus of at least {MIN_LINES} lines, got {len(codes)}")
    if not corpus.fields:
        raise ValueError("the corpus has no properties to probe")
    sample = torch.randperm(len(codes), generator=torch.Generator().manual_seed(seed))[: _count(
        "max_lines", max_lines, minimum=MIN_LINES)]
    return codes[sample], {prop: _field(corpus, prop, len(codes))[sample.numpy()] for prop in corpus.fields}


def _regress(x: torch.Tensor, y: np.ndarray, fit, test) -> tuple[float, float]:
    """Held-out R^2 of the ridge regression of ``y`` on ``x``, and of predicting the training mean."""
    x, y = x.double(), torch.as_tensor(y, dtype=torch.float64)
    w, bias = _ridge(x[fit], y[fit])
    return _r2(y[test], x[test] @ w + bias), _r2(y[test], y[fit].mean().expand(len(test)))


def _classify(x: torch.Tensor, y: np.ndarray, fit, test) -> tuple[float, float]:
    """Held-out accuracy of a logistic regression of the classes ``y`` on (standardised) ``x``, and of
    predicting the training majority class."""
    x = x.numpy()
    fit, test = fit.numpy(), test.numpy()
    mean, std = x[fit].mean(axis=0), x[fit].std(axis=0) + 1e-12
    baseline = float(np.mean(y[test] == np.bincount(y[fit]).argmax()))
    if len(np.unique(y[fit])) < 2:  # one class only: nothing to learn beyond the majority
        return baseline, baseline
    with threadpool_limits(PROBE_THREADS):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=300).fit((x[fit] - mean) / std, y[fit])
    return float(model.score((x[test] - mean) / std, y[test])), baseline


def _top(labels: np.ndarray) -> np.ndarray:
    """Class labels with the ``TOP_CLASSES`` most frequent kept (as 0, 1, ...) and the rest one "other"
    class."""
    codes, _ = properties.encode_categories(np.asarray(labels).astype(str), top=TOP_CLASSES)
    return codes.astype(np.int64)


# ---- small tools ---------------------------------------------------------------------------
def _ridge(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and intercept of the ridge regression of ``y [N]`` on ``x [N, d]`` (closed form)."""
    mean_x, mean_y = x.mean(dim=0), y.mean()
    centred = x - mean_x
    w = torch.linalg.solve(centred.T @ centred + RIDGE * torch.eye(x.shape[1], dtype=x.dtype),
                           centred.T @ (y - mean_y))
    return w, mean_y - mean_x @ w


def _r2(y: torch.Tensor, predicted: torch.Tensor) -> float:
    """The coefficient of determination of ``predicted`` against ``y``."""
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - ((y - predicted) ** 2).sum() / total) if total > 0 else 0.0


def _auc(a: torch.Tensor, b: torch.Tensor) -> float:
    """The chance that a score from ``b`` exceeds one from ``a`` (ties count half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], torch.cat([a, b]).numpy()))


def _split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded split of ``range(n)`` into rows to fit on and ``HELD_OUT`` of them (at least one) to score on."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = min(max(1, round(n * HELD_OUT)), n - 1)
    return order[k:], order[:k]


def _subset(rows: np.ndarray, k: int, generator: torch.Generator) -> torch.Tensor:
    """At most ``k`` of ``rows``, drawn with ``generator``."""
    return torch.as_tensor(rows)[torch.randperm(len(rows), generator=generator)[:k]]


def _spread(codes: torch.Tensor, vector: torch.Tensor) -> float:
    """The standard deviation of ``codes`` along ``vector``: positive, or a ValueError."""
    spread = float((codes @ vector).std()) if len(codes) > 1 else 0.0
    if not spread > 0:
        raise ValueError("the corpus codes do not spread along this direction: give more varied corpus codes")
    return spread


def _unit(vector: torch.Tensor, why: str) -> torch.Tensor:
    """``vector`` scaled to norm 1; a zero vector is a ValueError saying ``why``."""
    norm = vector.norm()
    if not norm > 0:
        raise ValueError(f"no direction: {why}")
    return vector / norm


def _field(corpus, prop: str, n: int) -> np.ndarray:
    """The corpus's field ``prop``, checked to hold one value for each of its ``n`` codes."""
    values = np.asarray(corpus.fields[prop])
    if values.shape != (n,):
        raise ValueError(f"field {prop!r} has shape {values.shape}, expected one value per code ({n})")
    return values


def _code(name: str, value, width: int | None = None) -> torch.Tensor:
    """``value`` as one code ``[nz]`` (``[nz]`` or ``[1, nz]`` given)."""
    codes = as_codes(name, value, width)
    if len(codes) != 1:
        raise ValueError(f"{name} must be one code, got {len(codes)}")
    return codes[0]


def _values(name: str, values) -> torch.Tensor:
    """``values`` (a number or a sequence of them) as a non-empty, finite 1-D float tensor."""
    try:
        values = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a sequence of numbers, got {values!r}") from err
    if len(values) == 0:
        raise ValueError(f"{name} must hold at least one number")
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} must be finite numbers, got {values.tolist()}")
    return values


def _count(name: str, value, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` as an int from ``minimum`` to ``maximum`` (a bool is not one)."""
    return Range(int, minimum, math.inf if maximum is None else maximum).check(name, value)
