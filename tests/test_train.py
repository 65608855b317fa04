"""The trainer: loss falls, runs resume, the CLI documents and checks its options."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

import vae_core.train as trainer
from vae_core import checkpoint as ckpt
from vae_core.data import Corpus, read_lines, split_paths, splits
from vae_core.evaluate import elbo_terms
from vae_core.model import ModelConfig, SentenceVAE
from vae_core.sampler import load
from vae_core.tokenizer import BOS
from vae_core.train import TrainConfig, kl_weight, main, train
from vae_core.train_config import parse_args

from .conftest import ROOT, TINY, tiny_data

QUICK = {**TINY, "card_iw_samples": 0}  # no test metrics: the card is not what these tests are about


def steps_taken(out) -> tuple[int, int]:
    """The Adam step counts of the encoder's and the decoder's optimiser in ``out``'s resume state."""
    state = ckpt.read_tensors(out / "resume" / "state.safetensors")
    return tuple(max(int(v) for k, v in state.items() if k.startswith(f"{name}.") and k.endswith(".step"))
                 for name in ("enc", "dec"))


def recording_steps(monkeypatch) -> list[dict]:
    """Wrap the trainer's ``train_step`` to record, at each call, the KL weight, whether it is an
    autoencoder step, and the encoder's and decoder's first weights before and after it."""
    calls, step = [], trainer.train_step

    def recorded(run, batch, beta, optimizers, autoencoder=False):
        weights = (run.model.encoder.weight_ih_l0, run.model.decoder.weight_ih_l0)
        before = [w.detach().clone() for w in weights]
        result = step(run, batch, beta, optimizers, autoencoder)
        calls.append({"beta": beta, "autoencoder": autoencoder, "before": before,
                      "after": [w.detach().clone() for w in weights]})
        return result

    monkeypatch.setattr(trainer, "train_step", recorded)
    return calls


def scripted_validation(monkeypatch, elbo_step: float = 0.0, mi_step: float = 0.0) -> None:
    """Make the trainer's validation ELBO rise by ``elbo_step`` and its MI by ``mi_step`` every epoch."""
    calls = []

    def scripted(model, corpus, **kwargs):
        calls.append(1)
        terms = elbo_terms(model, corpus, **kwargs)
        return terms | {"elbo": terms["elbo"] + elbo_step * len(calls), "mi": mi_step * len(calls)}

    monkeypatch.setattr(trainer, "elbo_terms", scripted)


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
    base = dict(data=str(data_dir), out=str(out), cutoffs=(500, 2000), **QUICK)
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


def test_free_bits_hold_the_kl_floor():
    """Below its floor a dimension's KL exerts no pull: the encoder's gradient is the reconstruction's
    alone, and the loss counts the floor instead of the KL."""
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, nz=4, dropout=0.0, bn_gamma=0.0))
    tokens = torch.randint(3, 10000, (16, 9), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = BOS
    batch = (tokens, torch.full((16,), 8), None)
    kl = model.posterior(*batch).kl().mean(dim=0).detach()

    def loss_and_gradient(beta, free_bits):
        torch.manual_seed(1)  # the same posterior sample every time
        loss, parts = model.loss(batch, beta, free_bits=free_bits)
        return loss, parts, torch.autograd.grad(loss, model.to_posterior.bias)[0]

    floor = float(kl.max()) + 0.5  # above every dimension's KL
    loss, parts, floored = loss_and_gradient(1.0, floor)
    _, _, reconstruction_only = loss_and_gradient(0.0, 0.0)
    _, _, full = loss_and_gradient(1.0, 0.0)
    assert torch.allclose(floored, reconstruction_only)
    assert not torch.allclose(full, reconstruction_only, atol=1e-4)
    assert loss.item() == pytest.approx(parts["rec"] + 4 * floor, rel=1e-5)
    assert parts["kl"] == pytest.approx(float(kl.sum()), rel=1e-4)  # the KL is still reported as it is


def test_aggressive_updates_run_encoder_steps_until_mi_stops_rising(data_dir, tmp_path, monkeypatch):
    """Each batch gets --aggressive-steps encoder-only steps (fewer than five never stop early) before its
    decoder step, while validation MI rises; after an epoch where it falls, the encoder steps with the
    decoder only."""
    scripted_validation(monkeypatch, mi_step=-1.0)  # MI falls every epoch: the second one ends the mode
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "aggressive"), aggressive=True,
                            aggressive_steps=3, epochs=3, max_lines=100, **{**QUICK, "bn_gamma": 0.0}))
    rows = ckpt.read_metrics(out)
    assert [r["aggressive"] for r in rows] == [True, True, False]
    batches = rows[0]["batches"]
    assert batches == 4  # 100 lines, batches of at most 32
    assert steps_taken(out) == (2 * 3 * batches + batches, 3 * batches)
    plain = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "plain"), epochs=1, max_lines=100,
                              **{**QUICK, "bn_gamma": 0.0}))
    assert steps_taken(plain) == (batches, batches)


def test_cyclical_schedule_ramps_the_kl_weight_once_a_cycle(data_dir, tmp_path, monkeypatch):
    calls = recording_steps(monkeypatch)
    train(TrainConfig(data=str(data_dir), out=str(tmp_path / "cyclical"), kl_schedule="cyclical", kl_cycles=2,
                      epochs=2, **QUICK))
    betas = [call["beta"] for call in calls]
    assert len(betas) == 26  # 13 batches an epoch, so a cycle is one epoch here
    for cycle in (betas[:13], betas[13:]):
        assert cycle[0] == 0.0  # each cycle starts again from zero
        assert all(a < b for a, b in zip(cycle[:7], cycle[1:7]))  # rises over the first half...
        assert cycle[7:] == [1.0] * 6  # ...then holds at 1
    assert betas[:13] == betas[13:]


def test_pretraining_trains_an_autoencoder_then_starts_the_decoder_again(data_dir, tmp_path, monkeypatch):
    calls = recording_steps(monkeypatch)
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "li"), pretrain_epochs=1, epochs=2,
                            **{**QUICK, "bn_gamma": 0.0}))
    assert [c["autoencoder"] for c in calls] == [True] * 13 + [False] * 13
    assert {c["beta"] for c in calls[:13]} == {0.0}  # no KL while pretraining
    (encoder_end, decoder_end), (encoder_start, decoder_start) = calls[12]["after"], calls[13]["before"]
    assert torch.equal(encoder_start, encoder_end)  # the pretrained encoder is kept
    assert (decoder_start - decoder_end).abs().mean() > 0.03  # the decoder is drawn again (Adam moved it < 0.02)
    assert decoder_start.abs().max() <= 0.1  # from the initialisation's range
    assert steps_taken(out) == (26, 13)  # the decoder's optimiser starts again too
    assert ckpt.read_json(out / "config.json")["epoch"] == 2  # the autoencoder is never the checkpoint
    assert ckpt.read_metrics(out)[0]["beta"] == 0.0


def test_the_variance_head_learns_after_the_last_stage_and_moves_no_mean(data_dir, tmp_path):
    """--spread-epochs after a matched-prior run: the head trains with every other weight fixed, so each
    line's means stay exactly as they were while its variances move; a finished run that gains
    the head resumes into it, and once it has the head, resuming trains nothing."""
    base = dict(data=str(data_dir), out=str(tmp_path / "spread"), epochs=2, match_prior=True,
                **{**QUICK, "bn_gamma": 0.8})
    out = train(TrainConfig(**base))
    lines = ["the sea is calm tonight", "o wild west wind", "and miles to go before i sleep"]
    matched = load(out).posterior(lines)
    before = ckpt.read_tensors(out / "model.safetensors")
    train(TrainConfig(**{**base, "spread_epochs": 2, "resume": True}))
    q = load(out).posterior(lines)
    assert torch.equal(q.mean, matched.mean) and torch.allclose(matched.std, torch.tensor(0.6))
    assert not torch.allclose(q.std, matched.std, atol=1e-3)  # the variances are the head's
    after = ckpt.read_tensors(out / "model.safetensors")
    assert all(torch.equal(after[k], v) for k, v in before.items())  # only the head is new
    assert sorted(set(after) - set(before)) == ["to_spread.bias", "to_spread.weight"]
    rows = ckpt.read_metrics(out)
    assert [r.get("spread") for r in rows] == [None, None, 1, 2]
    assert ckpt.read_json(out / "config.json")["model"]["spread"] is True
    assert "a head learned each line's posterior variances for 2 epochs" in (out / "README.md").read_text()
    train(TrainConfig(**{**base, "spread_epochs": 2, "resume": True}))
    assert len(ckpt.read_metrics(out)) == 4


def test_matched_prior_trains_with_the_fixed_variance(data_dir, tmp_path):
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "matched"), match_prior=True,
                            epochs=1, **{**QUICK, "bn_gamma": 0.8}))
    assert load(out).posterior(["a line", "the sea"]).std.allclose(torch.tensor(0.6))


def test_time_budget_stops_the_run_and_counts_across_resumes(data_dir, tmp_path):
    base = dict(data=str(data_dir), out=str(tmp_path / "budget"), epochs=5, time_budget=1e-3, **QUICK)  # 60 ms
    out = train(TrainConfig(**base))
    rows = ckpt.read_metrics(out)
    assert len(rows) == 1 and rows[0]["batches"] < 13  # the epoch stops after the step that overran the budget
    assert ckpt.read_json(out / "config.json")["epoch"] == 1
    train(TrainConfig(resume=True, **base))  # the budget is spent: nothing more is trained
    assert len(ckpt.read_metrics(out)) == 1


def test_lr_decay_lowers_the_learning_rate_after_an_epoch_that_does_not_improve(data_dir, tmp_path, monkeypatch):
    scripted_validation(monkeypatch, elbo_step=100.0)  # validation loss rises every epoch
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "decay"), epochs=3, lr=1e-3, lr_decay=0.25,
                            **QUICK))
    assert [r["lr"] for r in ckpt.read_metrics(out)] == pytest.approx([1e-3, 1e-3, 2.5e-4])  # each epoch's own
    groups = ckpt.read_json(out / "resume" / "state.json")["param_groups"]
    assert [g["lr"] for name in ("enc", "dec") for g in groups[name]] == pytest.approx([6.25e-5, 6.25e-5])


def test_valid_fraction_holds_out_lines_without_a_valid_file(data_dir, tmp_path):
    lines = read_lines(data_dir / "train.txt")[:100]
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(lines) + "\n")
    train_lines, valid_lines, test_lines = splits(source, valid_fraction=0.2, seed=0)
    assert len(valid_lines) == 20 and sorted(train_lines + valid_lines) == sorted(lines) and test_lines == []
    assert valid_lines != lines[:20]  # drawn at random...
    assert splits(source, valid_fraction=0.2, seed=0)[1] == valid_lines  # ...from the seed
    assert splits(source, valid_fraction=0.2, seed=1)[1] != valid_lines
    assert len(splits(data_dir, valid_fraction=0.2)[1]) == 60  # a valid.txt wins
    out = train(TrainConfig(data=str(source), out=str(tmp_path / "held"), valid_fraction=0.2, epochs=1, **QUICK))
    assert ckpt.read_metrics(out)[0]["valid_n_lines"] == 20
    (tmp_path / "one.txt").write_text("a single line\n")
    with pytest.raises(ValueError, match="too few lines"):
        splits(tmp_path / "one.txt", valid_fraction=0.2)


def test_init_starts_from_a_checkpoint_and_may_add_a_skip(tiny_checkpoint, data_dir, tmp_path):
    base = dict(data=str(data_dir), epochs=1, init=str(tiny_checkpoint), **QUICK)
    out = train(TrainConfig(out=str(tmp_path / "skip"), z_skip=True, **base))
    # its first epoch starts where the source ended, far below where the source's training began
    assert ckpt.read_metrics(out)[-1]["valid_rec"] < ckpt.read_metrics(tiny_checkpoint)[0]["valid_rec"]
    assert f"(stage 2 from `{tiny_checkpoint.name}`)" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="does not fit the model options"):
        train(TrainConfig(out=str(tmp_path / "bigger"), **{**base, "dec_hidden": 96}))
    # so may a gated skip, whose gate starts at zero
    out = train(TrainConfig(out=str(tmp_path / "gate"), z_skip=True, **{**base, "z_gate": True}))
    assert ckpt.build_model(out)[0].z_gate.weight.abs().sum() > 0  # trained away from its zero start
    # a bag-of-words head is new too: it starts from scratch
    out = train(TrainConfig(out=str(tmp_path / "bow"), bow_weight=0.5, **base))
    assert "train_bow" in ckpt.read_metrics(out)[-1]
    # a matched prior keeps the source's posterior means and drops its learned variances
    out = train(TrainConfig(out=str(tmp_path / "matched"), match_prior=True, lr=1e-9, **{**base, "bn_gamma": 0.8}))
    source, matched = ckpt.build_model(tiny_checkpoint)[0], ckpt.build_model(out)[0]
    assert torch.allclose(matched.to_posterior.weight, source.to_posterior.weight[:TINY["nz"]], atol=1e-6)


def logged(out) -> list[dict]:
    """The rows of ``out``'s metrics log exactly as written."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_fine_tuning_carries_the_metrics_log_forward_one_stage_more(tiny_checkpoint, tmp_path):
    data_dir = tiny_data(tmp_path / "data", n_train=100, n_valid=20, n_test=0)  # no test lines: a short card
    source = tmp_path / "source"
    shutil.copytree(tiny_checkpoint, source)
    legacy = [{k: v for k, v in row.items() if k != "stage"} for row in logged(source)]  # a log without stages
    (source / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in legacy))
    base = dict(data=str(data_dir), epochs=1, **QUICK)
    first = train(TrainConfig(out=str(tmp_path / "first"), init=str(source), **base))
    second = train(TrainConfig(out=str(tmp_path / "second"), init=str(first), **base))
    rows = logged(second)
    assert [(r["stage"], r["epoch"]) for r in rows] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (3, 1)]
    assert rows[:4] == [{"stage": 1, **row} for row in legacy]  # the source's rows, whole
    assert rows[4] == logged(first)[4]  # the first fine-tuning's row keeps its stage
    train(TrainConfig(out=str(second), init=str(first), resume=True, **{**base, "epochs": 2}))
    assert [(r["stage"], r["epoch"]) for r in logged(second)] == \
        [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (3, 1), (3, 2)]  # resumed: nothing twice
    fresh = train(TrainConfig(out=str(tmp_path / "fresh"), **base))
    assert [(r["stage"], r["epoch"]) for r in logged(fresh)] == [(1, 1)]


def test_the_checkpoint_records_no_machine_paths(tiny_checkpoint, tmp_path_factory, tmp_path, monkeypatch):
    """Paths are recorded as given when relative; an absolute one as relative to the working directory
    when inside it, else as its folder's name."""
    data_dir = tiny_data(tmp_path_factory.mktemp("lines"), n_train=100, n_valid=20, n_test=0)

    def recorded(out) -> dict:
        settings = ckpt.read_json(out / "config.json")["train"]
        assert str(tmp_path) not in json.dumps(settings) and str(data_dir) not in json.dumps(settings)
        assert ckpt.read_json(out / "resume" / "state.json")["config"] == settings
        return {name: settings[name] for name in ("data", "out", "init")}

    base = dict(epochs=1, **QUICK)
    outside = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "outside"), init=str(tiny_checkpoint),
                                **base))
    assert recorded(outside) == {"data": data_dir.name, "out": "outside", "init": tiny_checkpoint.name}
    shutil.copytree(tiny_checkpoint, tmp_path / "source")
    monkeypatch.chdir(tmp_path)
    relative = train(TrainConfig(data=str(data_dir), out="runs/relative", init="source", **base))
    assert recorded(relative) == {"data": data_dir.name, "out": "runs/relative", "init": "source"}
    inside = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "runs" / "inside"),
                               init=str(tmp_path / "source"), **base))
    assert recorded(inside) == {"data": data_dir.name, "out": "runs/inside", "init": "source"}


def test_bag_of_words_loss_trains_a_head_the_checkpoint_keeps(data_dir, tmp_path):
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "bow"), epochs=3, bow_weight=1.0,
                            **QUICK))
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


@pytest.mark.parametrize("argv", [["--epochs", "-1"], ["--lr", "-1"], ["--kl-schedule", "sine"],
                                  ["--dropout", "1.5"], ["--batch-size", "x"], ["--model", "lm", "--z-skip"],
                                  ["--no-z-skip", "--z-gate"],
                                  ["--model", "lm", "--bow-weight", "1"],
                                  ["--model", "bernoulli-vae", "--bow-weight", "1"],
                                  ["--refine", "0.9"], ["--refine", "1.2:2"], ["--refine", "0.9:0"],
                                  ["--model", "lm", "--refine", "0.9:1"],
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
    scripted_validation(monkeypatch, elbo_step=100.0)
    out = train(TrainConfig(data=str(data_dir), out=str(tmp_path / keep), epochs=2, keep=keep, **QUICK))
    assert ckpt.read_json(out / "config.json")["epoch"] == epoch
