"""Per-line properties of verse that need no model: length, metre, rhyme, opening word, final mark.

The explorer colours its map by them and the recall measures compare lines by their words, so all
of them are computed for a whole corpus at once (``line_properties``) and categorical ones can be
stored as integer codes plus a short list of names (``encode_categories``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np

from .stop_words import ENGLISH_STOP_WORDS
from .syllables import count as syllable_count
from .syllables import pronunciation, words
from .tokenizer import clean

__all__ = ["normalise", "words", "STOP_WORDS", "content_words", "rhyme_sound", "final_punctuation",
           "line_properties", "encode_categories", "OTHER"]

# scikit-learn's list holds words that carry a line of verse ("fire", "cry", "alone"): they stay content
_VERSE_CONTENT = {"alone", "bill", "bottom", "cry", "empty", "fire", "front", "full", "mill", "side",
                  "sincere", "thick", "thin", "top", "whole", "serious"}
_ARCHAIC = {"thee", "thou", "thy", "thine", "ye", "yon", "hath", "doth", "dost", "hast", "art", "shalt",
            "wilt", "canst", "couldst", "wouldst", "shouldst", "didst", "hadst", "wast", "wert", "o", "oh",
            "ah", "ay", "aye", "lo", "ere", "nay", "yea", "unto", "oft", "'tis", "'twas", "'twere", "'twill",
            "ne'er", "e'er", "o'er", "e'en", "thro'", "tho'", "'mid", "'neath", "an'", "th'", "wi'", "o'"}
_COMMON = {"did", "does", "doing", "just", "shall", "let", "like", "i'm", "i'll", "i've", "i'd", "it's",
           "that's", "there's", "don't", "can't", "won't", "he's", "she's", "let's", "'s", "'t", "'d", "'ll"}
STOP_WORDS = frozenset((ENGLISH_STOP_WORDS - _VERSE_CONTENT) | _ARCHAIC | _COMMON)

OTHER = "other"  # the name of the values that ``encode_categories`` does not keep

_DIGIT = re.compile(r"\d")
_CLOSERS = "\"'”’»)]}"  # quotes and brackets that may follow a line's last mark


def normalise(line: str) -> str:
    """A line as BPEmb sees it, for word-for-word comparison: cleaned, lower case, every digit "0"
    (BPEmb's corpus was lowercased and its digits replaced by 0; decoded lines are capitalised)."""
    return _DIGIT.sub("0", clean(line).lower())


def content_words(line: str) -> list[str]:
    """The line's words less the stop words."""
    return [w for w in words(line) if w not in STOP_WORDS]


@lru_cache(maxsize=100_000)
def rhyme_sound(word: str) -> str:
    """The phonemes from a word's last stressed vowel on, without stress marks ("night" and "light"
    both give "AY T"), or "" when the pronouncing dictionary does not know the word."""
    import pronouncing

    phones = pronunciation(word.lower())
    return re.sub(r"\d", "", pronouncing.rhyming_part(phones)) if phones else ""


def final_punctuation(line: str) -> str:
    """The punctuation mark that ends a line, looking past closing quotes and brackets (``,"`` gives
    ","), or "none"."""
    end = clean(line).rstrip(_CLOSERS)
    return end[-1] if end and unicodedata.category(end[-1]).startswith("P") else "none"


def line_properties(lines: list[str], tokenizer=None) -> dict[str, np.ndarray]:
    """Properties of every line: counts of ``words``, ``syllables`` and (given a ``Tokenizer``) BPEmb
    ``pieces`` as integer arrays; the last word's ``rhyme`` sound, the ``first_word`` and the
    ``final_punct`` mark as string arrays ("" or "none" for a line without them)."""
    if isinstance(lines, str) or not all(isinstance(line, str) for line in lines):
        raise ValueError("lines must be a list of strings")
    tokens = [words(line) for line in lines]
    out = {
        "words": np.array([len(t) for t in tokens], dtype=np.int32),
        "syllables": np.array([syllable_count(line) for line in lines], dtype=np.int32),
        "rhyme": np.array([rhyme_sound(t[-1]) if t else "" for t in tokens], dtype=str),
        "first_word": np.array([t[0] if t else "" for t in tokens], dtype=str),
        "final_punct": np.array([final_punctuation(line) for line in lines], dtype=str),
    }
    if tokenizer is not None:
        out["pieces"] = np.array([len(ids) for ids in tokenizer.encode(list(lines))], dtype=np.int32)
    return out


def encode_categories(values, top: int | None = None, weights=None) -> tuple[np.ndarray, list[str]]:
    """Integer codes of string values and the names they stand for, the most frequent first (ties in
    alphabetical order); with ``top``, only the ``top`` most frequent values keep their own name and
    the rest share the name "other". ``weights``: how many times each value counts (default once)."""
    values = np.asarray(values, dtype=str)
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise ValueError(f"top must be a positive integer or None, got {top!r}")
    if weights is not None and np.shape(weights) != values.shape:
        raise ValueError(f"weights must hold one number per value, got shape {np.shape(weights)}")
    names, inverse = np.unique(values, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(names))
    order = np.argsort(-counts, kind="stable")  # np.unique sorted the names: ties stay alphabetical
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes, names = rank[inverse].astype(np.int32), names[order].tolist()
    if top is not None and len(names) > top:
        names = names[:top]
        if OTHER not in names:
            names.append(OTHER)
        codes = np.where(codes < top, codes, names.index(OTHER)).astype(np.int32)
    return codes, names
