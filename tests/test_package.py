"""The installed package: ``pip install -e .`` (or a wheel) gives ``import vae_core``, the explorer and the
``latent-verse`` command in any folder, and the shipped checkpoints are found from there.

Each test installs the project offline into a fresh virtual environment over the system's packages
(``--no-deps --no-build-isolation --no-index``) and runs it from a folder outside the checkout.
"""

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vae_core import commands, train

from .conftest import ROOT

LINE = "the sea is calm tonight"
PROBE = f"""
import json, vae_core, explorer_app
from vae_core.checkpoint import SHIPPED
vae = vae_core.load()
print(json.dumps({{"module": vae_core.__file__, "app": explorer_app.__file__, "shipped": str(SHIPPED),
                  "decoded": vae.beam(vae.mu([{LINE!r}]), width=4)}}))
"""


@pytest.fixture(scope="module", autouse=True)
def build_tools():
    if importlib.util.find_spec("setuptools") is None or importlib.util.find_spec("pip") is None:
        pytest.skip("installing the package offline needs pip and setuptools installed system-wide")
    version = importlib.metadata.version("setuptools")
    if int(version.split(".")[0]) < 64:
        pytest.skip(f"an editable install needs setuptools 64 or later, not {version}")


def clean_env(**extra: str) -> dict:
    """This process's environment without anything that could point Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENT_VERSE_") and k != "PYTHONPATH"}
    return env | {"COLUMNS": "100"} | extra


def install(folder: Path, *target: str) -> Path:
    """A virtual environment over the system's packages with the project installed from ``target``; its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
                   check=True, timeout=120)
    result = subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                             "--no-build-isolation", "--no-index", *target],
                            capture_output=True, text=True, timeout=300, env=clean_env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return folder / "bin"


def run(scripts: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(scripts / args[0]), *args[1:]], cwd=cwd, env=clean_env(**env), capture_output=True,
                          text=True, timeout=300)


def probe(scripts: Path, cwd: Path, **env: str) -> dict:
    result = run(scripts, "python", "-c", PROBE, cwd=cwd, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_an_editable_install_works_from_any_folder(tmp_path, shipped, capsys, monkeypatch):
    scripts = install(tmp_path / "venv", "-e", str(ROOT))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    found = probe(scripts, outside)
    assert Path(found["module"]).resolve() == ROOT / "vae_core" / "__init__.py"
    assert Path(found["app"]).resolve() == ROOT / "explorer_app" / "__init__.py"
    assert Path(found["shipped"]).resolve() == ROOT / "checkpoints" / "poetry"
    assert found["decoded"] == shipped.beam(shipped.mu([LINE]), width=4)

    listing = run(scripts, "latent-verse", "--help", cwd=outside)
    assert listing.returncode == 0, listing.stderr[-2000:]
    for command in ("explore", "train", "evaluate", "map", "card", "demo"):
        assert f"\n  {command} " in listing.stdout
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        train.main(["--help"])
    expected = capsys.readouterr().out
    helped = run(scripts, "latent-verse", "train", "--help", cwd=outside)
    assert helped.returncode == 0 and helped.stdout == expected, helped.stderr[-2000:]


def test_a_wheel_ships_the_app_and_finds_the_checkpoints_it_is_pointed_at(tmp_path, shipped):
    source = tmp_path / "source"
    for package in ("vae_core", "explorer_app"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "wheels"), str(source)],
                           capture_output=True, text=True, timeout=300, env=clean_env())
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp_path / "wheels").glob("latent_verse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"vae_core/commands.py", "explorer_app/app.py", "explorer_app/map_frontend/index.html",
            "explorer_app/.streamlit/config.toml"} <= names
    assert not any(name.startswith(("tests/", "bench/", "checkpoints/", "data/")) for name in names)
    scripts = install(tmp_path / "venv", str(wheel))

    # The checkpoint's files in a folder of their own, away from the data its map refers to.
    models = tmp_path / "models" / "poetry"
    models.mkdir(parents=True)
    for item in (ROOT / "checkpoints" / "poetry").iterdir():
        if item.name != "resume":
            (models / item.name).symlink_to(item, target_is_directory=item.is_dir())
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"LATENT_VERSE_CHECKPOINTS": str(models.parent), "LATENT_VERSE_DATA": str(ROOT / "data")}
    mapped = "from vae_core.projection import Projection\nprint(len(Projection.load(SHIPPED)))\n"
    result = run(scripts, "python", "-c", PROBE + mapped, cwd=outside, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    found, lines = result.stdout.splitlines()
    found = json.loads(found)
    assert Path(found["module"]).is_relative_to(tmp_path / "venv")  # the installed copy, not the checkout's
    assert (Path(found["app"]).parent / ".streamlit" / "config.toml").is_file()
    assert Path(found["shipped"]) == models
    assert found["decoded"] == shipped.beam(shipped.mu([LINE]), width=4)
    assert int(lines) == 95_000  # every corpus line, read from the data folder the environment names

    roots = run(scripts, "python", "-c", "from vae_core.checkpoint import data_root, shipped_root\n"
                "print(shipped_root(), data_root())", cwd=outside)
    assert roots.stdout.split() == ["checkpoints", "data"], roots.stderr[-2000:]  # no checkout beside: ./


def test_the_explorer_without_checkpoints_says_what_to_do(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LATENT_VERSE_CHECKPOINTS", str(tmp_path / "none here"))
    at = AppTest.from_file(str(ROOT / "explorer_app" / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    [error] = [e.value for e in at.error]
    assert error.startswith("No checkpoint was found") and "LATENT_VERSE_CHECKPOINTS" in error
    assert str(tmp_path) not in error  # the page shows no server path; the log says where it looked


def test_no_command_or_an_unknown_one_gets_the_list_of_commands(capsys):
    for args in ([], ["fly"]):
        assert commands.main(args) == 2
        refused = capsys.readouterr().err
        assert "usage: latent-verse <command>" in refused
        assert all(f"\n  {name} " in refused for name in commands.COMMANDS)
    assert "unknown command 'fly'" in refused
