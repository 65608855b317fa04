"""Syllable counts of lines of verse, the condition a poet controls when writing metre.

Words are looked up in the CMU pronouncing dictionary (the ``pronouncing`` package ships it); a
word it does not know, such as an archaic "belov'd" or a misspelling, is counted by rule: groups
of vowels, less a silent final "e" or "-ed".
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[a-z']+")
_VOWELS = re.compile(r"[aeiouy]+")


def rule_syllables(word: str) -> int:
    """A spelling-based count for words the dictionary lacks (at least one)."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    n = len(_VOWELS.findall(letters))
    if n > 1 and letters.endswith("e") and not re.search(r"[^aeiouy]le$", letters):
        n -= 1  # silent final e ("stone"), but not "table"
    elif n > 1 and letters.endswith("ed") and not letters.endswith(("ted", "ded")):
        n -= 1  # "walked", but "wanted"
    return max(1, n)


def words(line: str) -> list[str]:
    """The line's lower-case words (apostrophes kept: "'tis", "o'er")."""
    return [w for w in _WORD.findall(line.lower()) if w.strip("'")]


@lru_cache(maxsize=100_000)
def pronunciation(word: str) -> str:
    """The dictionary's first pronunciation of a lower-case word (also looked up without its outer
    apostrophes), or "" when the dictionary does not know it."""
    import pronouncing  # loads the dictionary (about a second) on first use

    for form in (word, word.strip("'")):
        phones = pronouncing.phones_for_word(form)
        if phones:
            return phones[0]
    return ""


@lru_cache(maxsize=100_000)
def word_syllables(word: str) -> int:
    """Syllables of one lower-case word: the dictionary's first pronunciation, else the rule."""
    import pronouncing

    phones = pronunciation(word)
    return pronouncing.syllable_count(phones) if phones else rule_syllables(word)


def count(line: str) -> int:
    """Syllables in a line (0 for a line without words)."""
    return sum(word_syllables(w) for w in words(line))
