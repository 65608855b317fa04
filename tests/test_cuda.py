"""Training and evaluation on a GPU ("CUDA when present"): run where CUDA is, skipped elsewhere; without
CUDA, asking for it is a clear error."""

import pytest
import torch

import vae_core
from vae_core import checkpoint as ckpt
from vae_core.card import main as card_main
from vae_core.evaluate import evaluate
from vae_core.evaluate import main as evaluate_main
from vae_core.train import TrainConfig, train

from .conftest import POETRY, TINY

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
def test_training_on_cuda_lowers_its_loss_and_writes_a_checkpoint_the_cpu_loads(data_dir, tmp_path):
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "gpu"), epochs=4, device="cuda",
                            **{**TINY, "z_skip": True, "bn_gamma": 1.0}))
    rows = ckpt.read_metrics(out)
    assert rows[-1]["train_rec"] < rows[0]["train_rec"] - 5
    sampler = vae_core.load(out)  # on the CPU
    assert next(sampler.model.parameters()).device.type == "cpu"
    assert len(sampler.greedy(sampler.mu(["the sea is calm tonight", "o rose thou art sick"]))) == 2
    assert (out / "evaluation.json").is_file()


@needs_cuda
def test_evaluation_on_cuda_agrees_with_the_cpu(tiny_checkpoint):
    lines = (POETRY / "valid.txt").read_text(encoding="utf-8").splitlines()[:80]
    cpu = evaluate(tiny_checkpoint, lines, iw_samples=30)
    gpu = evaluate(tiny_checkpoint, lines, iw_samples=30, device=torch.device("cuda"))
    assert gpu["kl"] == pytest.approx(cpu["kl"], rel=1e-3)  # closed form: equal up to float rounding
    assert gpu["iw_nll"] == pytest.approx(cpu["iw_nll"], rel=0.02)  # other posterior samples
    assert gpu["recon_f1"] == pytest.approx(cpu["recon_f1"], abs=0.03)  # greedy: ties may break otherwise
    assert gpu["active_units"] == cpu["active_units"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
@pytest.mark.parametrize("command", [evaluate_main, card_main])
def test_asking_for_cuda_without_it_is_a_clear_error(command, tiny_checkpoint, capsys):
    test = POETRY / "test.txt"
    args = ["--checkpoint", str(tiny_checkpoint), "--device", "cuda"]
    args += ["--data", str(test)] if command is evaluate_main else ["--test", str(test)]
    assert command(args) == 2
    assert "CUDA is not available" in capsys.readouterr().err
