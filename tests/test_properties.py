"""Per-line properties of verse: normalisation, words, rhyme, punctuation and their category codes."""

import numpy as np
import pytest

from vae_core import properties, syllables
from vae_core.tokenizer import Tokenizer, detokenize

from .conftest import POETRY, ROOT


def test_a_decoded_line_normalises_to_its_corpus_line():
    line = "and i saw 1865 ships;  o'er the sea."
    decoded = detokenize(["▁and", "▁i", "▁saw", "▁0000", "▁ships", ";", "▁o", "'", "er", "▁the", "▁sea", "."])
    assert decoded == "And I saw 0000 ships; o'er the sea."
    assert properties.normalise(decoded) == properties.normalise(line) == "and i saw 0000 ships; o'er the sea."


def test_words_and_content_words():
    assert properties.words("'Tis O'er the HILLS -- 3 times!") == ["'tis", "o'er", "the", "hills", "times"]
    assert properties.content_words("Thou art the fire of thy heart, O sea") == ["fire", "heart", "sea"]
    archaic = {"thee", "thou", "thy", "thine", "ye", "hath", "doth", "art", "shalt", "o", "oh", "'tis"}
    assert archaic <= properties.STOP_WORDS


def test_rhyme_sounds_come_from_the_dictionary():
    assert properties.rhyme_sound("night") == properties.rhyme_sound("light") == "AY T"
    assert properties.rhyme_sound("sea") != properties.rhyme_sound("night")
    assert properties.rhyme_sound("zzqxv") == ""


@pytest.mark.parametrize("line, mark", [
    ("the end.", "."), ('he said,"', ","), ("and so?)", "?"), ("’tis done!’", "!"), ("wait--", "-"),
    ("o'er the hill", "none"), ("an'", "none"), ("", "none"), ("   ", "none"),
])
def test_final_punctuation(line, mark):
    assert properties.final_punctuation(line) == mark


def test_line_properties_of_real_verse():
    tokenizer = Tokenizer(ROOT / "checkpoints" / "poetry" / "tokenizer")
    lines = (POETRY / "valid.txt").read_text(encoding="utf-8").splitlines()[:300] + ["", "12 34"]
    props = properties.line_properties(lines, tokenizer)
    assert {len(v) for v in props.values()} == {len(lines)}
    assert props["syllables"].tolist() == [syllables.count(line) for line in lines]
    assert props["pieces"].tolist() == [len(ids) for ids in tokenizer.encode(lines)]
    assert props["words"][0] == len(properties.words(lines[0])) > 0
    first = properties.words(lines[1])
    assert props["first_word"][1] == first[0] and props["rhyme"][1] == properties.rhyme_sound(first[-1])
    for empty in (-2, -1):  # no words: zeros and empty names, no crash
        assert (props["words"][empty], props["syllables"][empty], props["rhyme"][empty],
                props["first_word"][empty], props["final_punct"][empty]) == (0, 0, "", "", "none")
    assert "pieces" not in properties.line_properties(lines[:3])


def test_encode_categories_keeps_the_most_frequent_names():
    values = ["and"] * 5 + ["the"] * 3 + ["b", "a"] * 2 + ["z"]
    codes, names = properties.encode_categories(values)
    assert names == ["and", "the", "a", "b", "z"]  # ties alphabetical
    assert [names[c] for c in codes] == values
    codes, names = properties.encode_categories(values, top=2)
    assert names == ["and", "the", "other"]
    assert codes.tolist() == [0] * 5 + [1] * 3 + [2] * 5


def test_the_stop_words_are_scikit_learn_s_and_the_explorer_does_not_import_it():
    import subprocess
    import sys

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from vae_core.stop_words import ENGLISH_STOP_WORDS as kept

    assert kept == ENGLISH_STOP_WORDS
    code = ("import sys, explorer_app.cache, explorer_app.directions, vae_core.projection; "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()[-1] == "False"


def test_weighted_categories_rank_as_the_values_repeated():
    values, weights = ["z", "the", "and", "b", "a", "the"], [1, 2, 5, 2, 2, 1]
    codes, names = properties.encode_categories(values, top=2, weights=weights)
    repeated = properties.encode_categories([v for v, w in zip(values, weights) for _ in range(w)], top=2)[1]
    assert names == repeated == ["and", "the", "other"]
    assert codes.tolist() == [2, 1, 0, 2, 2, 1]


def test_first_words_of_verse_keep_twelve_names_and_other():
    lines = (POETRY / "valid.txt").read_text(encoding="utf-8").splitlines()
    first = properties.line_properties(lines)["first_word"]
    codes, names = properties.encode_categories(first, top=12)
    assert len(names) == 13 and names[-1] == "other" and names[0] == "and"
    counts = np.bincount(codes, minlength=13)
    assert (np.diff(counts[:12]) <= 0).all() and counts.sum() == len(lines)


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="top"):
        properties.encode_categories(["a"], top=0)
    with pytest.raises(ValueError, match="one-dimensional"):
        properties.encode_categories([["a", "b"]])
    with pytest.raises(ValueError, match="weights"):
        properties.encode_categories(["a", "b"], weights=[1])
    with pytest.raises(ValueError, match="list of strings"):
        properties.line_properties("one line")
