"""The trainer: loss falls, runs resume, the CLI documents and checks its options."""

import json
import re
import subprocess
import sys

import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core.data import Corpus, read_lines, split_paths
from vae_core.evaluate import elbo_terms
from vae_core.sampler import load
from vae_core.train import TrainConfig, kl_weight, main, parse_args, train

from .conftest import ROOT, TINY


def test_tiny_model_lowers_its_loss(tiny_checkpoint):
    rows = ckpt.read_metrics(tiny_checkpoint)
    assert len(rows) == 4
    assert rows[-1]["train_rec"] < rows[0]["train_rec"] - 5
    assert rows[-1]["valid_rec"] < rows[0]["valid_rec"]
    for key in ("valid_elbo", "valid_rec", "valid_kl", "valid_active_units", "valid_mi", "lines_per_s"):
        assert key in rows[-1]
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    best = min(r["valid_elbo"] for r in rows)
    assert config["valid"]["elbo"] == pytest.approx(best)


def test_model_card_and_evaluation_are_written(tiny_checkpoint):
    card = (tiny_checkpoint / "README.md").read_text()
    for heading in ("## Settings", "## Test metrics", "## Prior (beam 4)", "## Homotopies", "## Reconstructions"):
        assert heading in card
    evaluation = json.loads((tiny_checkpoint / "evaluation.json").read_text())
    assert evaluation["test"]["n_lines"] == 60


def test_resume_continues_from_the_last_epoch(data_dir, tmp_path):
    out = tmp_path / "run"
    base = dict(data=str(data_dir), out=str(out), cutoffs=(500, 2000), **{**TINY, "card_iw_samples": 0})
    train(TrainConfig(epochs=2, **base))
    first = ckpt.read_metrics(out)
    train(TrainConfig(epochs=3, resume=True, **base))
    rows = ckpt.read_metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[:2] == first
    assert load(out).model.out.cutoffs == [500, 2000, 10000]
    with pytest.raises(ValueError, match="model options differ"):
        train(TrainConfig(epochs=4, resume=True, **{**base, "dec_hidden": 32}))
    # the resumed run matches one that never stopped
    straight = tmp_path / "straight"
    train(TrainConfig(epochs=3, **{**base, "out": str(straight)}))
    timing = {"seconds", "lines_per_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in ckpt.read_metrics(straight)] == \
        [{k: v for k, v in r.items() if k not in timing} for r in rows]


def test_refuses_to_overwrite_without_resume(tiny_checkpoint, data_dir):
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        train(TrainConfig(data=str(data_dir), out=str(tiny_checkpoint), epochs=1, **TINY))


def test_resume_without_a_run(tmp_path, data_dir):
    with pytest.raises(ValueError, match="no resumable run"):
        train(TrainConfig(data=str(data_dir), out=str(tmp_path / "x"), resume=True, **TINY))


def test_recipes_run(data_dir, tmp_path):
    """Free bits with AE pretraining, aggressive updates and cyclical annealing each train."""
    small = {**TINY, "card_iw_samples": 0}
    for name, extra in {
        "li": dict(bn_gamma=0.0, free_bits=0.25, pretrain_epochs=1, epochs=2),
        "aggressive": dict(bn_gamma=0.0, aggressive=True, aggressive_steps=3, epochs=1, max_lines=100),
        "cyclical": dict(kl_schedule="cyclical", kl_cycles=2, word_dropout=0.3, epochs=2),
        "matched": dict(bn_gamma=0.8, match_prior=True, epochs=2),
    }.items():
        out = tmp_path / name
        train(TrainConfig(data=str(data_dir), out=str(out), **{**small, **extra}))
        assert ckpt.read_metrics(out)[-1]["epoch"] == extra["epochs"]
    assert load(tmp_path / "matched").posterior(["a line"]).std.allclose(torch.tensor(0.6))


def test_workers_train_one_shared_model(data_dir, tmp_path):
    """Two Hogwild! workers: each batch is trained once, both workers' steps land in the one model and Adam
    state the parent saves, the loss falls, and the run resumes."""
    out = tmp_path / "hogwild"
    base = dict(data=str(data_dir), out=str(out), workers=2, **{**TINY, "card_iw_samples": 0})
    train(TrainConfig(epochs=3, **base))
    train(TrainConfig(epochs=4, resume=True, **base))
    rows = ckpt.read_metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert {r["batches"] for r in rows} == {13}  # 400 lines in batches of at most 32, every one trained
    assert rows[-1]["train_rec"] < rows[0]["train_rec"] - 2.5  # it falls by about 5 (4.9-5.4 in five runs)
    state = ckpt.read_tensors(out / "resume" / "state.safetensors")
    # counters both workers raise in shared memory: the batch norm's batches and Adam's steps (a lock-free
    # increment may rarely lose one to a simultaneous one)
    steps = [int(state["model.mu_norm.num_batches_tracked"])] + \
        [int(v) for k, v in state.items() if k.startswith(("enc.", "dec.")) and k.endswith(".step")]
    stepped = [n for n in steps if n]  # parameters the loss does not reach never step
    assert len(stepped) > 2 and all(50 <= n <= 52 for n in stepped), steps
    assert ckpt.read_json(out / "resume" / "state.json")["counters"]["step"] == 52


def test_more_workers_than_batches(data_dir, tmp_path):
    """A worker with no batch of its own adds nothing and breaks nothing."""
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "few"), epochs=1, workers=3, max_lines=40,
                            **{**TINY, "card_iw_samples": 0}))
    row = ckpt.read_metrics(out)[-1]
    assert row["batches"] == 2 and row["train_rec"] > 0 and row["beta"] == pytest.approx(0.5)


def test_a_failing_worker_stops_the_run_with_its_error(data_dir, tmp_path, monkeypatch):
    import vae_core.train as trainer

    def broken(*args, **kwargs):
        raise FloatingPointError("the loss is not finite")

    monkeypatch.setattr(trainer, "train_step", broken)  # the forked workers inherit it
    with pytest.raises(RuntimeError, match="worker 0 failed .*FloatingPointError: the loss is not finite"):
        train(TrainConfig(data=str(data_dir), out=str(tmp_path / "w"), epochs=1, workers=2,
                          **{**TINY, "card_iw_samples": 0}))


def test_init_starts_from_a_checkpoint_and_may_add_a_skip(tiny_checkpoint, data_dir, tmp_path):
    base = dict(data=str(data_dir), epochs=1, init=str(tiny_checkpoint), **{**TINY, "card_iw_samples": 0})
    out = train(TrainConfig(out=str(tmp_path / "skip"), z_skip=True, **base))
    assert ckpt.read_metrics(out)[0]["valid_rec"] < ckpt.read_metrics(tiny_checkpoint)[0]["valid_rec"]
    assert f"starting from the weights of `{tiny_checkpoint}`" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="does not fit the model options"):
        train(TrainConfig(out=str(tmp_path / "bigger"), **{**base, "dec_hidden": 96}))
    # a bag-of-words head is new too: it starts from scratch
    out = train(TrainConfig(out=str(tmp_path / "bow"), bow_weight=0.5, **base))
    assert "train_bow" in ckpt.read_metrics(out)[0]
    # a matched prior keeps the source's posterior means and drops its learned variances
    out = train(TrainConfig(out=str(tmp_path / "matched"), match_prior=True, lr=1e-9, **base))
    source, matched = ckpt.build_model(tiny_checkpoint)[0], ckpt.build_model(out)[0]
    assert torch.allclose(matched.to_posterior.weight, source.to_posterior.weight[:TINY["nz"]], atol=1e-6)


def test_bag_of_words_loss_trains_a_head_the_checkpoint_keeps(data_dir, tmp_path):
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "bow"), epochs=3, bow_weight=1.0,
                            **{**TINY, "card_iw_samples": 0}))
    rows = ckpt.read_metrics(out)
    assert rows[-1]["train_bow"] < rows[0]["train_bow"] - 1  # z learns which pieces a line has
    assert rows[-1]["train_loss"] == pytest.approx(rows[-1]["train_rec"] + rows[-1]["train_kl"]
                                                   + rows[-1]["train_bow"], rel=0.05)
    model, config = ckpt.build_model(out)
    assert config["model"]["bow"] and model.bow is not None
    assert len(load(out).greedy(torch.zeros(2, TINY["nz"]))) == 2


def test_kl_schedules():
    cfg = TrainConfig(kl_schedule="linear", kl_warmup=2.0)
    assert kl_weight(cfg, 0, 10, 100) == 0.0
    assert kl_weight(cfg, 10, 10, 100) == 0.5
    assert kl_weight(cfg, 50, 10, 100) == 1.0
    cyc = TrainConfig(kl_schedule="cyclical", kl_cycles=4)
    assert [kl_weight(cyc, s, 10, 100) for s in (0, 5, 13, 20, 25)] == [0.0, 0.4, 1.0, 1.0, 0.0]
    assert kl_weight(TrainConfig(kl_schedule="constant"), 0, 10, 100) == 1.0


def test_length_bucketed_batches_cover_every_line_once(data_dir):
    from vae_core.tokenizer import Tokenizer

    corpus = Corpus.from_lines(read_lines(split_paths(data_dir)["train"]), Tokenizer(ckpt.SHIPPED / "tokenizer"))
    batches = corpus.batches(32, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert sorted(torch.cat(batches).tolist()) == list(range(len(corpus)))

    def padding(chunks):
        return sum(int(corpus.lengths[b].max()) * len(b) - int(corpus.lengths[b].sum()) for b in chunks)

    unsorted = list(torch.randperm(len(corpus), generator=torch.Generator().manual_seed(0)).split(32))
    assert padding(batches) < padding(unsorted) / 5  # lines of a batch have near-equal length


def test_help_documents_every_option():
    result = subprocess.run([sys.executable, "-m", "vae_core.train", "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0
    import dataclasses

    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in result.stdout


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--lr", "-1"], ["--kl-schedule", "sine"],
                                  ["--dropout", "1.5"], ["--batch-size", "x"], ["--model", "lm", "--z-skip"],
                                  ["--model", "lm", "--bow-weight", "1"],
                                  ["--model", "bernoulli-vae", "--bow-weight", "1"],
                                  ["--workers", "0"], ["--workers", "2", "--aggressive"],
                                  ["--match-prior", "--bn-gamma", "1.0"], ["--match-prior", "--model", "lm"]])
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--threads", "-1"], "argument --threads: must be a non-negative integer"),
    (["--clip", "-1"], "argument --clip: must be a positive number"),
    (["--clip", "0"], "argument --clip: must be a positive number"),
    (["--max-lines", "-5"], "argument --max-lines: must be a non-negative integer"),
    (["--time-budget", "-1"], "argument --time-budget: must be a non-negative number"),
    (["--max-len", "500"], "argument --max-len: must be an integer from 1 to 256"),
    (["--valid-fraction", "2"], r"argument --valid-fraction: must be a number in \(0, 1\)"),
    (["--card-iw-samples", "-1"], "argument --card-iw-samples: must be a non-negative integer"),
    (["--lr", "nan"], "argument --lr: must be a positive number"),
    (["--device", "tpu"], "argument --device: invalid choice"),
    (["--cutoffs", "4000,500"], "argument --cutoffs: must be increasing integers between 0 and 10000"),
    (["--cutoffs", "500,10000"], "argument --cutoffs: must be increasing integers"),
    (["--cutoffs", "500;4000"], "argument --cutoffs: must be increasing integers"),
])
def test_out_of_range_options_are_refused_up_front(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_out_must_not_be_a_file(tmp_path, data_dir, capsys):
    (tmp_path / "taken").write_text("not a checkpoint")
    assert main(["--data", str(data_dir), "--out", str(tmp_path / "taken")]) == 2
    assert "is a file; give a directory" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, data_dir, capsys):
    assert main(["--data", str(data_dir), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_data_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vae_core.train", "--data", str(tmp_path / "none"),
                             "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert "not found" in result.stderr or "no train.txt" in result.stderr


@pytest.mark.parametrize("keep, epoch", [("best", 1), ("last", 2)])
def test_keep_chooses_the_best_or_the_last_epoch(keep, epoch, data_dir, tmp_path, monkeypatch):
    """With a validation loss that rises every epoch, "best" keeps the first epoch and "last" the last."""
    import vae_core.train as trainer

    calls = []

    def rising(model, corpus, **kwargs):
        calls.append(1)
        terms = elbo_terms(model, corpus, **kwargs)
        return terms | {"elbo": terms["elbo"] + 100 * len(calls)}

    monkeypatch.setattr(trainer, "elbo_terms", rising)
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / keep), epochs=2, keep=keep,
                            **{**TINY, "card_iw_samples": 0}))
    assert ckpt.read_json(out / "config.json")["epoch"] == epoch
