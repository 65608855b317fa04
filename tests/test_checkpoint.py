"""Checkpoint files: exact round trips, no pickle, and clear errors for damaged directories."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import vae_core
from vae_core import checkpoint as ckpt
from vae_core.model import ModelConfig, SentenceVAE

from .conftest import ROOT


@pytest.fixture
def copy(tiny_checkpoint, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_checkpoint, target)
    return target


@pytest.mark.parametrize("fixture", ["vae", "bits_vae"])  # a Gaussian and a bit-vector code
def test_save_load_round_trip_is_bit_exact(fixture, request, tmp_path):
    vae = request.getfixturevalue(fixture)
    out = tmp_path / "saved"
    ckpt.save_model(out, vae.model, {"kind": vae.config["kind"]})
    ckpt.copy_tokenizer(vae.directory / "tokenizer", out)
    again = vae_core.load(out)
    for (name, a), (_, b) in zip(vae.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name
    z = vae.prior(8, seed=0)
    assert again.beam(z) == vae.beam(z)
    assert torch.equal(again.mu(["the sea"]), vae.mu(["the sea"]))


def test_parameters_are_stored_in_float16_and_load_as_float32(tmp_path):
    """On disk parameters are float16, except one float16 cannot hold; batch-norm statistics and integer
    buffers stay as they were. Loaded back, everything is float32 again and equals what was stored."""
    model = SentenceVAE(ModelConfig(vocab_size=50, emb_dim=8, enc_hidden=8, dec_hidden=16, nz=4, bn_gamma=0.8,
                                    cutoffs=(10, 30)))
    model.mu_norm.running_var.uniform_(1e-4, 2.0)
    nn.init.constant_(model.mu_shift, 1e5)  # beyond float16's largest value, 65504
    ckpt.save_model(tmp_path, model, {"kind": "vae"})
    stored = load_file(tmp_path / "model.safetensors")
    halved = {name for name, _ in model.named_parameters()} - {"mu_shift"}
    assert {stored[name].dtype for name in halved} == {torch.float16}
    assert {stored[name].dtype for name in ("mu_shift", "mu_norm.running_var")} == {torch.float32}
    assert stored["rank_of"].dtype == torch.int64
    loaded, _ = ckpt.build_model(tmp_path)
    for name, value in loaded.state_dict().items():
        original = model.state_dict()[name]
        assert value.dtype == original.dtype, name
        assert torch.equal(value, original.half().float() if name in halved else original), name


def test_checkpoint_holds_no_pickle(tiny_checkpoint):
    names = {p.name for p in tiny_checkpoint.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "README.md", "en.wiki.bpe.vs10000.model"} <= names
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin"))]
    load_file(tiny_checkpoint / "model.safetensors")  # plain tensors


def test_missing_directory(tmp_path):
    with pytest.raises(vae_core.CheckpointError, match="not found"):
        vae_core.load(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer/en/en.wiki.bpe.vs10000.model"])
def test_missing_file_is_named(copy, name):
    (copy / name).unlink()
    with pytest.raises(vae_core.CheckpointError, match=name.split("/")[-1].replace(".", r"\.")):
        vae_core.load(copy)


def test_truncated_weights(copy):
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(vae_core.CheckpointError, match="corrupt weights"):
        vae_core.load(copy)


def test_garbage_weights(copy):
    (copy / "model.safetensors").write_bytes(b"\x80\x04 this is a pickle, not safetensors")
    with pytest.raises(vae_core.CheckpointError, match="corrupt weights"):
        vae_core.load(copy)


def test_gzipped_tensors_round_trip_and_damage_is_a_checkpoint_error(tmp_path):
    tensors = {"codes": torch.randn(50, 8).half(), "index": torch.arange(50)}
    path = tmp_path / "map.safetensors.gz"
    ckpt.write_tensors(path, tensors)
    first = path.read_bytes()
    back = ckpt.read_tensors(path)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    ckpt.write_tensors(path, tensors)
    assert path.read_bytes() == first  # no time stamp: the same tensors give the same file
    for damaged in (first[: len(first) // 2], b"not gzip at all", first[:10] + bytes(20) + first[30:]):
        path.write_bytes(damaged)
        with pytest.raises(vae_core.CheckpointError, match="corrupt weights"):
            ckpt.read_tensors(path)


def test_corrupt_config(copy):
    (copy / "config.json").write_text("{not json")
    with pytest.raises(vae_core.CheckpointError, match="corrupt JSON"):
        vae_core.load(copy)


def test_config_that_does_not_match_the_weights(copy):
    config = json.loads((copy / "config.json").read_text())
    config["model"]["dec_hidden"] += 1
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(vae_core.CheckpointError, match="shape"):
        vae_core.load(copy)


def test_unknown_format_and_keys(copy):
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "format": "something-else"}))
    with pytest.raises(vae_core.CheckpointError, match="format"):
        vae_core.load(copy)
    config["model"]["colour"] = "blue"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(vae_core.CheckpointError, match="colour"):
        vae_core.load(copy)


@pytest.mark.parametrize("key, value, message", [
    ("max_len", 0, "max_len must be an integer from 1 to 256"),
    ("max_len", -5, "max_len must be an integer from 1 to 256"),
    ("max_len", 10**9, "max_len must be an integer from 1 to 256"),
    ("max_len", "48", "max_len must be an integer from 1 to 256"),
    ("nz", -1, "nz must be a non-negative integer"),
    ("bn_gamma", float("nan"), "bn_gamma must be a non-negative number"),
    ("kind", "banana", "unknown kind 'banana'"),
])
def test_bad_config_values_are_blamed_on_config_json(copy, key, value, message):
    config = json.loads((copy / "config.json").read_text())
    (config if key == "kind" else config["model"])[key] = value
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(vae_core.CheckpointError, match=rf"config\.json: .*{message}"):
        vae_core.load(copy)


@pytest.mark.parametrize("damage", [torch.zeros_like, lambda ranks: ranks + 1])
def test_piece_order_must_be_a_permutation(copy, damage):
    from safetensors.torch import save_file

    state = load_file(copy / "model.safetensors")
    state["rank_of"] = damage(state["rank_of"])
    save_file(state, copy / "model.safetensors")
    with pytest.raises(vae_core.CheckpointError, match=r"model\.safetensors: rank_of must be a permutation"):
        vae_core.load(copy)


def test_tokenizer_must_have_the_configs_vocabulary(copy):
    import sentencepiece as spm

    model_file = copy / "tokenizer" / "en" / "en.wiki.bpe.vs10000.model"
    lines = (ROOT / "data" / "poetry" / "valid.txt").read_text(encoding="utf-8").splitlines()[:300]
    with open(model_file, "wb") as f:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=f, vocab_size=200, minloglevel=2)
    with pytest.raises(vae_core.CheckpointError, match=r"en\.wiki\.bpe\.vs10000\.model has 200 pieces"):
        vae_core.load(copy)


def test_non_finite_weights_are_refused(copy):
    from safetensors.torch import save_file

    state = load_file(copy / "model.safetensors")
    state["out.head.weight"][0, 0] = float("nan")
    save_file(state, copy / "model.safetensors")
    with pytest.raises(vae_core.CheckpointError, match="NaN"):
        vae_core.load(copy)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "config.json"
    ckpt.write_json(path, {"a": 1})

    def explode(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt  # a run killed mid-write

    with pytest.raises(KeyboardInterrupt):
        ckpt._atomic(path, explode)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_metrics_log_skips_damaged_lines(copy):
    rows = ckpt.read_metrics(copy)
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    with open(copy / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 99, "trunc')
    assert len(ckpt.read_metrics(copy)) == len(rows)
