"""The repository stays small, and speaks of the product, not of how it was made.

Every tracked file together stays under 60 MiB. No text in it (documentation, model cards, configs,
metrics, source and docstrings, benchmarks) and no ``--help`` of a command-line module refers to
the stages of the project's own making, to the maker's machine by an absolute path, or to the
source documents by file number.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

LIMIT = 60 * 2**20

# The corpus itself: verse, not the project's own words.
CORPUS = {"data/poetry/train.txt", "data/poetry/valid.txt", "data/poetry/test.txt"}

# What a text about the product never says. "session" alone is fine (Streamlit's session state,
# pytest's session fixtures); only a numbered one, or one placed in the project's past, is history.
HISTORY = {
    "a numbered session": r"(?<!-)\bsessions?\s+#?\d+",  # not an option such as --sessions 30
    "an earlier session": r"\b(earlier|previous|past|later)\s+sessions?\b",
    "what a session shipped": r"\bshipped\s+in\s+(\w+\s+)?session",
    "a numbered issue": r"\bissues?\s+#?\d+",
    "an acceptance bar": r"\bacceptance\s+bar",
    "a path of the maker's machine": r"(?<![\w.~-])/(tmp|work|root|home)\b",
    "a source document by file number": r"\bseed\s+00\d\b|\b00\d_[0-9a-f]{16}\b|\b(notebook|document)\s+#?\d+\b",
}
PATTERN = re.compile("|".join(f"(?:{p})" for p in HISTORY.values()), re.IGNORECASE)

CLI_MODULES = ["vae_core.train", "vae_core.evaluate", "vae_core.projection", "vae_core.card", "vae_core.demo"]


def repository_files(*options: str) -> list:
    try:
        listing = subprocess.run(["git", "ls-files", "-z", *options], cwd=ROOT, capture_output=True, check=True,
                                 timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def tracked_files() -> list:
    return repository_files()


def text_files() -> list:
    """Tracked files and new ones git does not ignore, read as text (binary files and the corpus left out)."""
    texts = []
    for path in repository_files("--cached", "--others", "--exclude-standard"):
        # This file's examples are the patterns themselves.
        if not path.is_file() or path.relative_to(ROOT).as_posix() in CORPUS or path == Path(__file__).resolve():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            texts.append((path, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return texts


def history_hits(name: str, text: str) -> list[str]:
    """``name:line: match`` for every place in ``text`` that speaks of the project's making (a match may
    span a line break, as where argparse wraps its help)."""
    return [f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}"
            for match in PATTERN.finditer(text)]


def test_tracked_tree_stays_under_60_mib():
    sizes = {path: path.stat().st_size for path in tracked_files() if path.is_file()}
    largest = sorted(sizes, key=sizes.get, reverse=True)[:5]
    assert sum(sizes.values()) < LIMIT, [f"{path.relative_to(ROOT)}: {sizes[path]}" for path in largest]


@pytest.mark.parametrize("text, kind", [
    ("the model shipped in session 11", "a numbered session"),
    ("see Session 12 below", "a numbered session"),
    ("as in earlier sessions", "an earlier session"),
    ("fixed in issue #4", "a numbered issue"),
    ("## Acceptance bar", "an acceptance bar"),
    ("--init /tmp/s14/g89", "a path of the maker's machine"),
    ('"out": "/work/main/runs"', "a path of the maker's machine"),
    ("the sampler of seed 000", "a source document by file number"),
    ("see 002_11a717250049576a.txt", "a source document by file number"),
    ("a code of bits (seed\n                        002)", "a source document by file number"),
])
def test_the_history_patterns_catch_what_they_name(text, kind):
    assert re.search(HISTORY[kind], text, re.IGNORECASE)


@pytest.mark.parametrize("text", [
    "st.session_state keeps the widgets", "python bench/load.py --sessions 30", "a fixture of scope session",
    "executable_path=/usr/bin/chromium",
    "lines/s on one worker", "https://example.org/home/page", "--seed 0 --work runs/scale", "the homotopy",
])
def test_the_history_patterns_let_the_product_speak(text):
    assert not PATTERN.search(text)


def test_a_hit_names_its_line():
    assert history_hits("notes.md", "one\ntwo, as in session\n 4\n") == ["notes.md:2: 'session\\n 4'"]


def test_no_text_in_the_repository_speaks_of_its_making():
    files = text_files()
    names = {path.relative_to(ROOT).as_posix() for path, _ in files}
    assert {"README.md", "vae_core/sampler.py", "checkpoints/poetry/README.md",
            "checkpoints/poetry/config.json"} <= names  # the scan reads the files it is meant to
    hits = [hit for path, text in files for hit in history_hits(path.relative_to(ROOT).as_posix(), text)]
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("module", CLI_MODULES)
def test_no_command_line_help_speaks_of_its_making(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("usage:"), result.stderr[-2000:]
    hits = history_hits(f"{module} --help", result.stdout)
    assert not hits, "\n".join(hits)
