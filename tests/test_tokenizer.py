import os
import subprocess
import sys

import pytest

from vae_core import checkpoint as ckpt
from vae_core.tokenizer import BOS, EOS, Tokenizer, TokenizerError, clean, detokenize

TOKENIZER_DIR = ckpt.SHIPPED / "tokenizer"


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(TOKENIZER_DIR, max_len=16)


def test_loads_offline_with_an_empty_home(tmp_path):
    """A fresh process with no network and an empty HOME loads the shipped model file."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network disabled in test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from vae_core.tokenizer import Tokenizer\n"
        f"t = Tokenizer({str(TOKENIZER_DIR)!r})\n"
        "print(t.encode(['the sea at night']))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            cwd=ckpt.SHIPPED.parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("[[")
    assert list(tmp_path.iterdir()) == []  # nothing was cached or downloaded into HOME


def test_missing_model_file_names_the_path(tmp_path):
    with pytest.raises(TokenizerError, match=r"en\.wiki\.bpe\.vs10000\.model"):
        Tokenizer(tmp_path)


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "en.wiki.bpe.vs10000.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(TokenizerError, match="could not be read"):
        Tokenizer(tmp_path)


def test_round_trip_of_a_corpus_line(tok):
    ids = tok.encode(["i wandered lonely as a cloud"])[0]
    assert tok.decode(ids) == "I wandered lonely as a cloud"


def test_detokenize_restores_spaces_and_capitals():
    pieces = ["▁the", "▁sun", "▁is", "▁high", ".", "▁and", "▁i", "▁sing", "!", "▁o", "▁night"]
    assert detokenize(pieces) == "The sun is high. And I sing! O night"
    assert detokenize(["▁\"", "o", "h", "▁i", "'", "ll", "▁go", "\""]) == "\"Oh I'll go\""
    assert detokenize([]) == ""


def test_detokenize_capitalises_past_quotes_and_accented_letters():
    assert detokenize(["▁the", "▁end", ".", "▁\"", "what", "▁now"]) == 'The end. "What now'
    assert detokenize(["▁stop", ".\"", "▁then", "▁go"]) == 'Stop." Then go'
    assert detokenize(["▁été", "▁(", "o", "▁night", ")"]) == "Été (o night)"
    assert detokenize(["▁ß", "ee"]) == "ßee"  # upper case would be two letters ("SS"): left as it is


def test_detokenize_capitalises_past_typographic_quotes():
    """The corpus opens lines with curly quotes too (“the ...), and decoded lines do the same."""
    assert detokenize(["▁“", "the", "▁old", "est"]) == "“The oldest"
    assert detokenize(["▁stop", ".", "”", "▁‘", "then", "▁go"]) == "Stop.” ‘Then go"
    assert detokenize(["▁«", "o", "▁night", "»"]) == "«O night»"
    assert detokenize(["▁¡", "ay", "!"]) == "¡Ay!"


def test_clean_removes_control_characters_and_folds_space():
    assert clean("a\x00b\tc\n\u200bd  e\x7f") == "a b c d e"


def test_a_data_file_keeps_the_lines_that_cleaning_leaves_something_of(tmp_path):
    from vae_core.data import read_lines

    raw = ["a", "\u200b", " \t ", "¨", "\x85x", "\u3000", "\ufeffq", "  b ", "\x00", "é\u200bt", "", "\u2028"]
    (tmp_path / "lines.txt").write_text("\n".join(raw) + "\n", encoding="utf-8")
    assert read_lines(tmp_path / "lines.txt") == [line.strip() for line in raw if clean(line)]
    assert read_lines(tmp_path / "lines.txt") == ["a", "¨", "x", "\ufeffq", "b", "é\u200bt"]


def test_odd_characters_encode_without_crashing(tok):
    lines = ["🌞🌙 moon", "日本語の詩", "Ωμέγα", "\x07\x1b[31m red", "é è ê"]
    ids = tok.encode(lines)
    assert len(ids) == len(lines) and all(len(seq) > 0 for seq in ids)
    assert all(0 <= i < tok.vocab_size for seq in ids for i in seq)


def test_long_lines_are_truncated_with_a_warning(tok):
    with pytest.warns(UserWarning, match="truncated"):
        ids = tok.encode(["the wind " * 200])
    assert len(ids[0]) == 16


def test_batch_pads_with_bos_and_eos(tok):
    tokens, lengths = tok.batch([[10, 11, 12], [13]])
    assert lengths.tolist() == [4, 2]
    assert tokens.tolist() == [[BOS, 10, 11, 12, EOS], [BOS, 13, EOS, EOS, EOS]]


def test_decode_stops_at_end_of_line(tok):
    ids = tok.encode(["the sea"])[0]
    assert tok.decode(ids + [EOS] + ids) == "The sea"
