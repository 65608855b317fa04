"""What generated lines recall from the corpus: word-for-word matches, BM25 matches and nearest codes."""


from collections import Counter

import numpy as np
import pytest
import torch

from vae_core.recall import ONE_BY_ONE, PROBE, CodeIndex, InvertedLists, WordIndex, line_words, word_counts
from vae_core.tokenizer import detokenize

from .conftest import POETRY


@pytest.fixture(scope="module")
def verse() -> list[str]:
    return (POETRY / "valid.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def words(verse) -> WordIndex:
    return WordIndex(verse)


def test_a_corpus_line_is_found_word_for_word_as_the_decoder_prints_it(words, verse):
    line = "where is he now, that all this life has seen?"
    corpus = ["the sea is calm tonight", line, "i wandered lonely as a cloud", line]
    index = WordIndex(corpus)
    printed = detokenize(["▁" + piece for piece in line.split()])  # capitalised as decoded lines are
    assert printed.startswith("Where") and printed != line
    assert index.exact([printed, "the sea is calm", line.upper()]).tolist() == [1, -1, 1]  # the first copy
    assert words.exact(verse[100:110]).tolist() == [verse.index(line) for line in verse[100:110]]


ODD = ["the sea, the sea!", "", "'' o'er the hill ''", "two\nlines in one", "ﬁne ｆｕｌｌ width", "-- 12 --",
       "Été\u200bwhen\x00ALL's", "   ", "the sea, the sea!", "x"]


def test_word_counts_of_the_joined_lines_are_each_line_s_own(verse):
    lines = ODD + verse[:500]
    tf, vocabulary = word_counts(lines)
    assert tf.shape == (len(lines), len(vocabulary)) and len(set(vocabulary)) == len(vocabulary)
    for i, line in enumerate(lines):
        row = tf.getrow(i)
        assert {vocabulary[j]: c for j, c in zip(row.indices, row.data)} == Counter(line_words(line)), line


def test_word_for_word_matches_of_odd_lines_are_the_first_of_the_same_normalised_text():
    index = WordIndex(ODD)
    queries = ["THE SEA, THE SEA!", "-- 34 --", "fine full width", "two lines in one", "Été when all's",
               "the sea", "o'er the hill", "", "  x  "]
    assert index.exact(queries).tolist() == [0, 5, 4, 3, 6, -1, -1, 1, 9]


def test_the_best_word_match_of_a_paraphrase_is_its_source(words, verse):
    source = verse.index("only thy face, of all that's dear,")
    index, shared = words.best(["Of all that is dear, thy face only", verse[42].upper()])
    assert index.tolist() == [source, verse.index(verse[42])]
    assert 0.5 < shared[0] < 1 and shared[1] == 1


def test_the_best_word_match_scores_content_words_and_breaks_ties_deterministically():
    corpus = ["the night of the day and the night", "a lantern", "of the and of the night", "lantern bright"]
    index, shared = WordIndex(corpus).best(["of the lantern and the", "the of and", "", "-- 12 --", "zzqx"])
    assert index.tolist() == [1, 2, -1, -1, -1]  # "lantern" decides, the shorter line wins the tie
    assert shared.tolist() == [pytest.approx(1 / 4), 1.0, 0.0, 0.0, 0.0]


def test_an_exact_match_always_wins():
    corpus = ["sorrow sorrow sorrow", "sorrow is the night"]
    assert WordIndex(corpus).best(["Sorrow is the night"])[0].tolist() == [1]


def test_a_corpus_code_is_its_own_cosine_nearest():
    codes = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    index, score = CodeIndex(codes).nearest(codes[:20], k=3)
    assert index[:, 0].tolist() == list(range(20))
    assert np.allclose(score[:, 0], 1, atol=1e-5) and (np.diff(score, axis=1) <= 1e-6).all()
    index, distance = CodeIndex(codes).nearest(codes[5], k=1, measure="euclidean")
    assert index.tolist() == [[5]] and distance[0, 0] == pytest.approx(0, abs=1e-3)


def test_csls_is_cosine_less_the_hubness_of_both_ends():
    codes = torch.randn(40, 4, generator=torch.Generator().manual_seed(1))
    index = CodeIndex(codes)
    unit = torch.nn.functional.normalize(codes, dim=1)
    cosine = unit @ unit.T
    hubness = cosine.topk(11, dim=1).values[:, 1:].mean(dim=1)
    assert torch.allclose(index.hubness, hubness, atol=1e-6)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    query = torch.nn.functional.normalize(z, dim=1) @ unit.T
    expected = 2 * query - hubness - query.topk(10, dim=1).values.mean(dim=1, keepdim=True)
    found, score = index.nearest(z, k=2, measure="csls")
    assert np.allclose(score, expected.topk(2, dim=1).values.numpy(), atol=1e-5)
    assert found.tolist() == expected.topk(2, dim=1).indices.tolist()
    stored = CodeIndex(codes, hubness=index.hubness.numpy() + 1)  # a stored hubness is used as given
    assert np.allclose(stored.nearest(z, 2, "csls")[1], score - 1, atol=1e-5)


def test_csls_stops_a_planted_hub_winning_every_query():
    rng = np.random.default_rng(0)
    e = np.eye(16)[0]
    sides = rng.standard_normal((100, 16)) * (np.arange(16) > 0)  # each query's own corpus line
    hubs = e + 0.01 * rng.standard_normal((10, 16))  # near every query, and near each other
    index = CodeIndex(np.vstack([sides, hubs]))
    queries = 4.5 * e + sides
    by_cosine = index.nearest(queries, measure="cosine")[0][:, 0]
    by_csls = index.nearest(queries, measure="csls")[0][:, 0]
    assert (by_cosine >= 100).sum() > 80
    assert (by_csls >= 100).sum() < 30 and (by_csls == np.arange(100)).sum() > 70


def test_zero_codes_give_no_nan():
    codes = torch.zeros(5, 4)
    codes[1:, 0] = torch.arange(1, 5.0)
    index = CodeIndex(codes)
    assert torch.isfinite(index.hubness).all()
    for measure in ("cosine", "csls", "euclidean"):
        found, score = index.nearest(torch.zeros(2, 4), k=2, measure=measure)
        assert np.isfinite(score).all() and found.shape == (2, 2)
    found, distance = index.nearest(torch.zeros(1, 4), k=1, measure="euclidean")
    assert found.tolist() == [[0]] and distance[0, 0] == pytest.approx(0, abs=1e-3)  # the zero code itself


@pytest.mark.parametrize("call, message", [
    (lambda i: i.nearest(torch.zeros(2, 4), k=0), "k must"),
    (lambda i: i.nearest(torch.zeros(2, 4), k=11), "k must"),
    (lambda i: i.nearest(torch.zeros(2, 5)), "shape"),
    (lambda i: i.nearest(torch.full((1, 4), float("nan"))), "NaN"),
    (lambda i: i.nearest(torch.zeros(1, 4), measure="manhattan"), "measure"),
    (lambda i: CodeIndex(torch.zeros(10, 4), hubness=np.zeros(3)), "hubness"),
    (lambda i: CodeIndex(np.full((3, 2), np.inf)), "NaN"),
    (lambda i: CodeIndex(torch.zeros(0, 4)), "at least one"),
    (lambda i: WordIndex(["", "-- 12 --"]), "at least one"),
    (lambda i: WordIndex("one line"), "list of strings"),
    (lambda i: WordIndex(["a line"]).best([None]), "list of strings"),
])
def test_bad_input_is_a_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(CodeIndex(torch.randn(10, 4)))


def test_the_approximate_search_agrees_with_the_exhaustive_one():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 8))
    codes = np.repeat(centres, 150, axis=0) + 0.1 * rng.standard_normal((3000, 8))
    lists = InvertedLists.build(torch.nn.functional.normalize(torch.as_tensor(codes).float(), dim=1), size=50)
    exhaustive, approximate = CodeIndex(codes), CodeIndex(codes, lists=lists)
    assert len(lists.centroids) == 60 and lists.assignment.shape == (3000,) and len(lists.near[0]) == PROBE
    assert np.abs(approximate.hubness.numpy() - exhaustive.hubness.numpy()).max() < 0.05
    few = centres + 0.05 * rng.standard_normal((20, 8))  # each probes its own nearest lists
    many = np.repeat(centres, 15, axis=0) + 0.05 * rng.standard_normal((300, 8))  # past ONE_BY_ONE: in groups
    assert len(many) > ONE_BY_ONE
    for queries in (few, many):
        for measure in ("cosine", "csls"):
            found, exact = approximate.nearest(queries, 1, measure)[0], exhaustive.nearest(queries, 1, measure)[0]
            assert (found == exact).mean() > 0.9
    queries = few
    stored = InvertedLists(approximate.lists.centroids.half(), approximate.lists.assignment.short())
    again = CodeIndex(codes, hubness=approximate.hubness, lists=stored)  # as a map stores them
    assert np.array_equal(again.nearest(queries, 3, "csls")[0], approximate.nearest(queries, 3, "csls")[0])
    with pytest.raises(ValueError, match="inverted lists hold"):
        CodeIndex(codes[:10], lists=stored)
