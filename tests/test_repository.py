"""The repository stays small: every tracked file together under 60 MiB."""

import subprocess

import pytest

from .conftest import ROOT

LIMIT = 60 * 2**20


def tracked_files() -> list:
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True,
                                 timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def test_tracked_tree_stays_under_60_mib():
    sizes = {path: path.stat().st_size for path in tracked_files() if path.is_file()}
    largest = sorted(sizes, key=sizes.get, reverse=True)[:5]
    assert sum(sizes.values()) < LIMIT, [f"{path.relative_to(ROOT)}: {sizes[path]}" for path in largest]
