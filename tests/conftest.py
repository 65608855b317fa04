"""Shared fixtures: a tiny corpus and a tiny model trained on it inside the test session."""

from pathlib import Path

import pytest

from vae_core import checkpoint as ckpt
from vae_core.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
POETRY = ROOT / "data" / "poetry"
# one stage without the variance head, and a code a tiny model learns in a few epochs (BN scale 1, no gate): the
# recipe's stages and defaults are tested in test_recipe.py
TINY = dict(emb_dim=32, enc_hidden=32, dec_hidden=64, nz=8, batch_size=32, dropout=0.0, threads=2, card_iw_samples=3,
            refine="none", bn_gamma=1.0, z_gate=False, spread_epochs=0)


def tiny_data(directory: Path, n_train: int = 400, n_valid: int = 60, n_test: int = 60) -> Path:
    """A data folder with the first lines of each poetry split."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        lines = (POETRY / f"{name}.txt").read_text(encoding="utf-8").splitlines()[:n]
        (directory / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tiny_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, data_dir) -> Path:
    """A tiny VAE trained for a few epochs (enough for its loss to fall), without a z skip (so that a
    fine-tuning test can add one)."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    return train(TrainConfig(data=str(data_dir), out=str(out), epochs=4, z_skip=False, **TINY))


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory, data_dir) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny-lm"
    return train(TrainConfig(data=str(data_dir), out=str(out), model="lm", epochs=2, **TINY))


@pytest.fixture(scope="session")
def vae(tiny_checkpoint):
    import vae_core

    return vae_core.load(tiny_checkpoint)


@pytest.fixture(scope="session")
def shipped():
    import vae_core

    return vae_core.load(ckpt.SHIPPED)


@pytest.fixture(scope="session")
def bits_vae(tmp_path_factory, data_dir):
    """A tiny VAE with a code of 8 bits (score-function gradients, normalised logits as shipped)."""
    import vae_core

    out = tmp_path_factory.mktemp("ckpt") / "tiny-bits"
    return vae_core.load(train(TrainConfig(data=str(data_dir), out=str(out), model="bernoulli-vae", epochs=4,
                                           **{**TINY, "bn_gamma": 2.0})))


@pytest.fixture(scope="session")
def tiny_syllable_vae(tmp_path_factory, data_dir):
    """A tiny VAE conditioned on each line's syllable count (a two-way encoder, no z skip and a smaller BN
    scale: in three epochs on 400 lines the default recipe decodes empty lines at every count)."""
    import vae_core

    out = tmp_path_factory.mktemp("ckpt") / "tiny-syllables"
    return vae_core.load(train(TrainConfig(data=str(data_dir), out=str(out), model="syllable-vae", epochs=3,
                                           bidirectional=True, z_skip=False, **{**TINY, "bn_gamma": 0.8})))
