"""Property-based fuzzing of the public API and of a shared link's query parameters.

Whatever goes in (text of any kind, numbers from NaN to huge, codes of any shape and dtype, seeds of
any type), a call of the latent API or of a direction gives a result (finite codes, one decoded line per
row) or a ValueError that says why; and a generated link opens the page with every setting in its
range and at most one notice. The tiny models answer 16 API tests, 3,750 generated calls
in all, and the app 42 generated links (7 on each tab). Examples are derandomized, so every run tries the same inputs.
The plain tests at the end pin the edges that the API's limits guard: float32 underflow and overflow,
seeds, unhashable names, allocations too large to make."""

import operator
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from streamlit.testing.v1 import AppTest

from explorer_app import cache, state
from explorer_app import directions as directions_tab
from vae_core import directions as D
from vae_core.data import read_lines
from vae_core.projection import CATEGORICAL, NUMERIC
from vae_core.sampler import INTERPOLATIONS, METHODS

from .conftest import POETRY, ROOT, TINY

NZ = TINY["nz"]
FUZZ = settings(database=None, derandomize=True, deadline=timedelta(seconds=5),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# ---- what goes in --------------------------------------------------------------------------
def mostly(valid, odd, one_in: int = 10):
    """All draws but one in ``one_in`` from ``valid``, so that most calls get past the checks and run."""
    return st.integers(1, one_in).flatmap(lambda i: odd if i == one_in else valid)


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # any Unicode but lone surrogates
CONTROL = st.text(st.sampled_from("\x00\t\n\r\x0b\x1b\x7f\x85\u200b\u2028\ufeff "), max_size=8)
WORDS = st.lists(st.sampled_from(["the", "sea", "night", "o", "rose", "i", "cloud", "é", "and"]), min_size=1,
                 max_size=8).map(" ".join)
HUGE = st.builds(operator.mul, WORDS | TEXT, st.integers(200, 3000))  # up to 120,000 characters
LINE = mostly(WORDS | TEXT, st.one_of(st.just(""), CONTROL, HUGE, st.builds(operator.add, CONTROL, WORDS)))
JUNK = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=8),
                 st.dictionaries(TEXT, st.integers(), max_size=2))
LINES = mostly(LINE | st.lists(LINE, min_size=1, max_size=6),
               st.lists(LINE, max_size=0) | st.lists(LINE | JUNK, max_size=4) | st.tuples(LINE, WORDS) | JUNK)
NUMBER = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), TEXT, st.just("3"),
                   st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)), st.builds(np.float32, st.floats(width=32)))
NUMBERS = NUMBER | st.lists(NUMBER, max_size=4) | hnp.arrays(np.float64, st.integers(0, 4))
ODD_SEED = st.integers() | st.integers(2**64, 2**70) | st.floats() | st.booleans() | TEXT
FIT_SEED = mostly(st.integers(0, 2**64 - 1) | st.builds(np.uint64, st.integers(0, 2**64 - 1)), ODD_SEED | st.none())
SEED = mostly(st.none() | FIT_SEED, ODD_SEED)  # a sampler's seed may be None: unseeded


def count(low: int, high: int):
    """Mostly an integer from ``low`` to ``high``, else any number or none."""
    return mostly(st.integers(low, high), NUMBER)


def number(low: float, high: float):
    """Mostly a real number from ``low`` to ``high``, else any number or none."""
    return mostly(st.floats(low, high), NUMBER)


def amounts(size: int = 4):
    """Mostly one amount or up to ``size`` of them in [-3, 3], else anything number-like."""
    return mostly(st.floats(-3, 3) | st.lists(st.floats(-3, 3), min_size=1, max_size=size), NUMBERS)


def as_any(arrays):
    """The arrays as they are, as tensors, or as nested lists."""
    return st.one_of(arrays, arrays.map(torch.from_numpy), arrays.map(np.ndarray.tolist))


def codes(good):
    """Codes for an ``NZ``-dimensional model: mostly of a ``good`` shape, holding bit probabilities or values in
    [-3, 3], as arrays, tensors or lists; else any finite float32 values (up to the largest), any dtype
    (NaN and infinities too), any shape, or junk."""
    tame = st.one_of(*(hnp.arrays(np.float32, good, elements=e) for e in (st.floats(0, 1, width=32),
                                                                         st.floats(-3, 3, width=32))))
    extreme = hnp.arrays(np.float32, good, elements=st.floats(width=32, allow_nan=False, allow_infinity=False))
    shapes = good | hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=NZ + 1)
    wild = hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.uint8, np.bool_,
                                       np.complex64]), shapes)
    return mostly(as_any(tame), as_any(extreme) | as_any(wild) | TEXT | JUNK, one_in=5)


ONE = codes(st.sampled_from([(NZ,), (1, NZ)]))  # one code
ROWS = codes(st.just((NZ,)) | st.tuples(st.integers(1, 4), st.just(NZ)))  # codes to decode
MANY = codes(st.tuples(st.integers(2, 12), st.just(NZ)))  # sets of codes
LENGTH = mostly(st.integers(1, 4), NUMBER)  # max_len: short decodes
COUNTS = st.integers(0, 30) | st.lists(st.integers(0, 30), min_size=1, max_size=4) | NUMBERS
# a model and the syllable counts to ask of it (mostly none for a model not conditioned on them)
MODELS = st.sampled_from(["gaussian", "bits", "syllables"]).flatmap(
    lambda name: st.tuples(st.just(name), mostly(st.none() | COUNTS, st.none()) if name == "syllables"
                           else mostly(st.none(), COUNTS)))


@pytest.fixture(scope="module")
def models(vae, bits_vae, tiny_syllable_vae) -> dict:
    return {"gaussian": vae, "bits": bits_vae, "syllables": tiny_syllable_vae}


@pytest.fixture(scope="module")
def vrnn(tmp_path_factory, data_dir):
    """A tiny VRNN (a latent per piece: the sequence API)."""
    import vae_core
    from vae_core.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "fuzz-vrnn"
    return vae_core.load(train(TrainConfig(data=str(data_dir), out=str(out), model="vrnn", epochs=1,
                                           **{**TINY, "card_iw_samples": 0})))


@pytest.fixture(scope="module")
def corpus(vae) -> D.Corpus:
    return D.Corpus.encode(vae, read_lines(POETRY / "train.txt")[:80])


# ---- what comes out ------------------------------------------------------------------------
def outcome(call, *args, **kwargs):
    """The call's result, or None when it refused its input with a ValueError that says why; any other
    exception fails the test."""
    try:
        return call(*args, **kwargs)
    except ValueError as err:
        assert str(err).strip(), f"{call.__name__} raised a ValueError without a message"
        return None


def n_rows(z) -> int:
    """How many codes an accepted ``z`` holds (one for a single ``[nz]`` code)."""
    return 1 if np.ndim(z) == 1 else len(z)


def assert_codes(out: torch.Tensor, rows: int, bits: bool = False) -> None:
    assert out.dtype == torch.float32 and out.shape == (rows, NZ)
    assert torch.isfinite(out).all()
    if bits:
        assert ((out == 0) | (out == 1)).all()


def assert_decoded(out, rows: int) -> None:
    assert isinstance(out, list) and len(out) == rows and all(isinstance(line, str) for line in out)


# ---- the latent API ------------------------------------------------------------------------
@fuzz(200)
@given(model=MODELS, lines=LINES, seed=SEED, sample=st.booleans())
def test_encoding(models, model, lines, seed, sample):
    vae = models[model[0]]
    z = outcome(vae.z, lines, seed=seed) if sample else outcome(vae.mu, lines)
    if z is not None:
        assert_codes(z, 1 if isinstance(lines, str) else len(list(lines)), bits=sample and vae.bits)
        assert not vae.bits or ((z >= 0) & (z <= 1)).all()


@fuzz(150)
@given(model=MODELS, n=count(0, 20), seed=SEED)
def test_prior(models, model, n, seed):
    vae = models[model[0]]
    z = outcome(vae.prior, n, seed=seed)
    if z is not None:
        assert_codes(z, int(n), bits=vae.bits)


@fuzz(300)
@given(model=MODELS, z=ROWS, max_len=LENGTH)
def test_greedy(models, model, z, max_len):
    name, syllables = model
    out = outcome(models[name].greedy, z, max_len=max_len, syllables=syllables)
    if out is not None:
        assert_decoded(out, n_rows(z))


@fuzz(300)
@given(model=MODELS, z=ROWS, temperature=number(0, 3), top_k=mostly(st.none() | st.integers(1, 20), NUMBER),
       top_p=mostly(st.none() | st.floats(0, 1, exclude_min=True), NUMBER), seed=SEED, max_len=LENGTH)
def test_sample(models, model, z, temperature, top_k, top_p, seed, max_len):
    name, syllables = model
    out = outcome(models[name].sample, z, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                  max_len=max_len, syllables=syllables)
    if out is not None:
        assert_decoded(out, n_rows(z))


@fuzz(300)
@given(model=MODELS, z=ROWS, width=count(1, 6), max_len=LENGTH, length_penalty=number(0, 3))
def test_beam(models, model, z, width, max_len, length_penalty):
    name, syllables = model
    out = outcome(models[name].beam, z, width=width, max_len=max_len, length_penalty=length_penalty,
                  syllables=syllables)
    if out is not None:
        assert_decoded(out, n_rows(z))


@fuzz(250)
@given(model=MODELS, z_a=ONE, z_b=ONE, steps=count(1, 12), method=mostly(st.sampled_from(INTERPOLATIONS), TEXT | JUNK))
def test_interpolate(models, model, z_a, z_b, steps, method):
    path = outcome(models[model[0]].interpolate, z_a, z_b, steps=steps, method=method)
    if path is not None:
        assert_codes(path, int(steps) + 1)
        assert torch.equal(path[0], torch.as_tensor(np.asarray(z_a, dtype=np.float32)).reshape(NZ))


@fuzz(250)
@given(model=MODELS, z=ONE, n=count(0, 12), noise=number(0, 1), seed=SEED, std=mostly(st.none(), ONE))
def test_neighbours(models, model, z, n, noise, seed, std):
    vae = models[model[0]]
    out = outcome(vae.neighbours, z, n=n, noise=noise, seed=seed, std=std)
    if out is not None:
        assert_codes(out, int(n), bits=vae.bits)


# ---- directions ----------------------------------------------------------------------------
def assert_direction(found: D.Direction) -> None:
    assert found.vector.shape == (NZ,) and torch.isfinite(found.vector).all()
    assert abs(float(found.vector.norm()) - 1) < 1e-4
    assert np.isfinite(found.spread) and found.spread > 0 and np.isfinite(found.score)


@fuzz(250)
@given(codes_a=MANY, codes_b=MANY, probe=st.booleans(), seed=FIT_SEED, corpus_codes=mostly(st.none(), MANY))
def test_direction(codes_a, codes_b, probe, seed, corpus_codes):
    found = outcome(D.direction, codes_a, codes_b, probe=probe, seed=seed, corpus_codes=corpus_codes)
    if found is not None:
        assert_direction(found)
        assert 0 <= found.score <= 1


@fuzz(300)
@given(prop=mostly(st.sampled_from(["pieces", "words", "syllables", "code_norm", "rhyme", "first_word",
                                    "final_punct", "word"]), TEXT | JUNK),
       value=mostly(st.none() | st.sampled_from(["the", "and", ".", ",", "none", "o", "night"]), WORDS | TEXT | NUMBER),
       probe=st.booleans(), seed=FIT_SEED, max_lines=count(10, 100))
def test_direction_for(corpus, prop, value, probe, seed, max_lines):
    found = outcome(D.direction_for, corpus, prop, value, probe=probe, seed=seed, max_lines=max_lines)
    if found is not None:
        assert_direction(found)


@fuzz(200)
@given(z=ONE, spread=st.floats(1e-6, 3e38), amounts=amounts())
def test_steer(z, spread, amounts):
    along = D.Direction(torch.eye(NZ)[3], spread, 0.9, "AUC")
    moved = outcome(D.steer, z, along, amounts)
    if moved is not None:
        assert_codes(moved, np.size(amounts))


@fuzz(150)
@given(line_count=count(0, 100), amounts=amounts())
def test_steer_counts(corpus, line_count, amounts):
    counts = outcome(D.steer_counts, line_count, corpus, amounts)
    if counts is not None:
        assert len(counts) == np.size(amounts) and all(isinstance(c, int) and 1 <= c <= 100 for c in counts)


@fuzz(250)
@given(a=ONE | MANY, b=ONE | MANY, c=ONE | MANY, keep_norm=st.booleans())
def test_analogy(a, b, c, keep_norm):
    answer = outcome(D.analogy, a, b, c, keep_norm=keep_norm)
    if answer is not None:
        assert_codes(answer, max(n_rows(a), n_rows(b), n_rows(c)))


@fuzz(200)
@given(z=ONE, dim=count(0, NZ), values=amounts())
def test_traverse(z, dim, values):
    path = outcome(D.traverse, z, dim, values)
    if path is not None:
        assert_codes(path, np.size(values))


@fuzz(250)
@given(z_a=ONE, z_b=ONE, steps=count(2, 12))
def test_circle(z_a, z_b, steps):
    loop = outcome(D.circle, z_a, z_b, steps)
    if loop is not None:
        assert_codes(loop, int(steps))


SHORT = {"max_len": st.integers(1, 3)}
DECODERS = mostly(  # a decoding method and its options, always a short max_len
    st.tuples(st.just("greedy"), st.fixed_dictionaries(SHORT))
    | st.tuples(st.just("sample"), st.fixed_dictionaries(SHORT, optional={"temperature": number(0, 2), "seed": SEED}))
    | st.tuples(st.just("beam"), st.fixed_dictionaries(SHORT, optional={"width": count(1, 4)})),
    st.tuples(st.sampled_from(METHODS) | TEXT,
              st.fixed_dictionaries(SHORT, optional={"bogus": NUMBER, "width": NUMBER})))
DIMS = mostly(st.none() | st.lists(st.integers(0, NZ - 1), min_size=1, max_size=3), st.lists(NUMBER, max_size=3))


@fuzz(150)
@given(lines=LINES, latents=mostly(st.sampled_from(["posterior", "prior"]), TEXT | JUNK), n=count(0, 6),
       temperature=number(0, 2), seed=SEED, max_len=LENGTH, line=mostly(LINE, JUNK), fixed=count(0, 6))
def test_sequence(vrnn, lines, latents, n, temperature, seed, max_len, line, fixed):
    """A VRNN's reconstructions (from its own or its prior's latents) and its samples (from a line's
    first latents)."""
    out = outcome(vrnn.reconstruct, lines, latents=latents)
    if out is not None:
        assert_decoded(out, 1 if isinstance(lines, str) else len(list(lines)))
    out = outcome(vrnn.sample, n, temperature=temperature, seed=seed, max_len=max_len, line=line, fixed=fixed)
    if out is not None:
        assert_decoded(out, n)


@fuzz(250)
@given(model=MODELS, z=ONE, values=amounts(3), dims=DIMS, decoder=DECODERS, centre=mostly(st.none(), ONE),
       scale=mostly(st.none(), ONE))
def test_dimension_effects(models, model, z, values, dims, decoder, centre, scale):
    (name, syllables), (method, options) = model, decoder
    if syllables is not None:
        options = {**options, "syllables": syllables}
    effects = outcome(D.dimension_effects, models[name], z, values, dims, method, centre, scale, **options)
    if effects is not None:
        assert isinstance(effects.base, str) and len(effects.lines) == len(effects.dims) == len(effects.change)
        assert all(len(row) == np.size(values) and all(isinstance(line, str) for line in row) for row in effects.lines)
        assert np.isfinite(effects.change).all() and ((effects.change >= 0) & (effects.change <= 1)).all()


# ---- a shared link -------------------------------------------------------------------------
APP = str(ROOT / "explorer_app" / "app.py")
CHOICES = {"tab": ["Lines", "Interpolate", "Neighbours", "Sample", "Directions", "Model"],
           "settings.checkpoint": cache.checkpoint_names(), "settings.method": METHODS,
           "settings.encode": ("mean", "sample"), "interp.method": INTERPOLATIONS, "dir.view": directions_tab.VIEWS,
           "dir.towards": list(directions_tab.TOWARDS), "map.colour": ["", *NUMERIC, *CATEGORICAL]}
NOTICE = "Some of this link's settings could not be used"
ANY_VALUE = st.one_of(
    TEXT, WORDS, CONTROL, HUGE, st.sampled_from([v for options in CHOICES.values() for v in options]),
    st.integers(-10, 2000).map(str), st.floats().map(str), st.sampled_from(["true", "False", "yes", "0", "1e3"]))


def link_value(key: str):
    """Mostly a value that fits ``key`` (an option, a boolean, a number in range, lines of words), else anything."""
    default = state.DEFAULTS.get(key)
    if key in CHOICES:
        fits = st.sampled_from(list(CHOICES[key]))
    elif isinstance(default, bool):
        fits = st.sampled_from(sorted(state.BOOLEANS))
    elif key in state.RANGES:
        low, high = state.RANGES[key]
        fits = (st.integers(low, high) if isinstance(default, int) else st.floats(low, high)).map(str)
    else:
        fits = WORDS | st.lists(WORDS, min_size=1, max_size=4).map("\n".join)
    return mostly(fits, ANY_VALUE)


# up to six settings or unknown keys
LINKS = st.lists(mostly(st.sampled_from(sorted(state.DEFAULTS)), TEXT), unique=True, max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({key: link_value(key) for key in keys}))
# every tab, each with another checkpoint: the link opens there unless its own tab or checkpoint says otherwise
OPENED = [(tab, CHOICES["settings.checkpoint"][i % len(CHOICES["settings.checkpoint"])])
          for i, tab in enumerate(CHOICES["tab"])]


@pytest.mark.parametrize("tab, checkpoint", OPENED)
@settings(FUZZ, max_examples=7, deadline=None)
@given(link=LINKS)
def test_a_generated_link_opens_the_page(tab, checkpoint, link):
    params = {"tab": tab, "settings.checkpoint": checkpoint, **link}
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert not [e for e in at.error if e.value.startswith("Sorry")], "an unexpected error was apologised for"
    for key, default in state.DEFAULTS.items():
        value = at.session_state[key]
        assert isinstance(value, type(default)), (key, value)
        if key in state.RANGES:
            low, high = state.RANGES[key]
            assert low <= value <= high, (key, value)
        if key in CHOICES:
            assert value in CHOICES[key], (key, value)
    refused = [key for key, raw in params.items()
               if key not in state.DEFAULTS or outcome(state.parse, key, raw, CHOICES) is None]
    assert len(at.warning) <= 1
    assert len([w for w in at.warning if w.value.startswith(NOTICE)]) == (1 if refused else 0)


# ---- the edges the limits guard -----------------------------------------------------------
def test_a_temperature_or_top_p_below_float32_samples_the_greedy_line(vae):
    """In float32 such a temperature is 0 and such a top_p cuts every piece: each would make every
    probability NaN (a 0 / 0) and sampling raise a RuntimeError. Both are the limit, the greedy line."""
    z = vae.prior(3, seed=0)
    greedy = vae.greedy(z, max_len=6)
    assert vae.sample(z, temperature=1e-300, max_len=6, seed=0) == greedy
    assert vae.sample(z, temperature=5e-324, max_len=6, seed=0) == greedy
    assert vae.sample(z, temperature=1.0, top_p=5e-324, max_len=6, seed=0) == greedy


def test_codes_past_the_limit_are_refused_and_codes_at_it_stay_finite(vae):
    """float32's largest values overflow a norm or a mean: slerp would give NaN codes, a direction a NaN
    vector. Codes at the limit still give finite answers."""
    big = torch.full((NZ,), 3e38)
    with pytest.raises(ValueError, match="beyond"):
        vae.interpolate(big, -big, method="slerp")
    with pytest.raises(ValueError, match="beyond"):
        D.direction(big.repeat(4, 1), -big.repeat(4, 1))
    edge = torch.full((NZ,), 1e6)
    edge[0] = -1e6
    assert torch.isfinite(vae.interpolate(edge, -edge.flip(0), steps=4, method="slerp")).all()
    assert torch.isfinite(D.analogy(edge, -edge, edge, keep_norm=True)).all()


def test_moves_that_overflow_are_refused(vae):
    """A huge noise or steering amount would give infinite codes."""
    with pytest.raises(ValueError, match="noise 1e\\+300 is too large"):
        vae.neighbours(torch.zeros(NZ), noise=1e300)
    with pytest.raises(ValueError, match="too large"):
        D.steer(torch.zeros(NZ), D.Direction(torch.eye(NZ)[0], 1e30, 0.9, "AUC"), [1e30])


def test_a_direction_seed_must_be_a_seed():
    """A seed of the wrong type would reach torch.manual_seed and raise a RuntimeError."""
    a, b = torch.randn(6, NZ), torch.randn(6, NZ) + 1
    for seed in ("a", 1.5, None, -1, 2**70):
        with pytest.raises(ValueError, match="seed must be an integer"):
            D.direction(a, b, seed=seed)


def test_a_property_that_is_not_a_name_is_refused(corpus):
    """An unhashable prop would raise a TypeError from the look-up of the corpus's categories."""
    for prop in ({}, ["words"]):
        with pytest.raises(ValueError, match="prop must be the name of a property"):
            D.direction_for(corpus, prop)


def test_allocations_too_large_to_make_are_refused(vae):
    """A circle of a trillion steps would ask for 2 TB, and a beam as wide as the vocabulary scores
    rows x 10,000 x 10,000 logits a step: out of memory either way."""
    with pytest.raises(ValueError, match="steps must be an integer from 2 to 100000"):
        D.circle(torch.eye(NZ)[0], torch.eye(NZ)[1], 10**12)
    with pytest.raises(ValueError, match="width must be an integer from 1 to 100"):
        vae.beam(vae.prior(4, seed=0), width=vae.model.config.vocab_size)
    assert len(vae.beam(vae.prior(4, seed=0), width=100, max_len=2)) == 4
