"""The recipe one training command runs: the stages, the defaults the README gives, epochs scaled to the
corpus, a stopped recipe resuming at its stage, and the small-corpus warning."""

import re

import pytest

import vae_core
import vae_core.train as trainer
from vae_core import checkpoint as ckpt
from vae_core import recipe
from vae_core.train import main
from vae_core.train_config import parse_args

from .conftest import ROOT, tiny_data

TINY_ARGS = ["--emb-dim", "32", "--enc-hidden", "32", "--dec-hidden", "64", "--nz", "8", "--batch-size", "32",
             "--threads", "2", "--card-iw-samples", "2", "--spread-epochs", "0"]


def readme_stages() -> list[dict]:
    """The rows of the README's table of the default recipe's stages."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| stage | BN scale |"):].split("\n\n")[0].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in row.strip("|").split("|")))) for row in table[2:]]


def test_the_defaults_are_the_recipe_the_readme_gives():
    cfg = parse_args(["--data", "data/poetry", "--out", "runs/poetry"])
    stages = recipe.stages(cfg, 85_000)
    rows = readme_stages()
    assert len(rows) == len(stages) == 5
    for row, stage in zip(rows, stages):
        assert float(row["BN scale"]) == stage.bn_gamma
        assert row["posterior variances"] == ("matched prior" if stage.match_prior else "learned")
        assert int(row["epochs"]) == stage.epochs
        assert float(row["learning rate"]) == stage.lr
        assert float(row["dropout"]) == stage.dropout
        assert float(row["bag-of-words weight"]) == stage.bow_weight
    first = stages[0]
    assert (first.z_skip, first.z_gate, first.bidirectional, first.nz, first.cutoffs) == (
        True, True, False, 64, (500, 4000))
    assert (first.kl_warmup, first.keep) == (1.0, "best")
    assert all((s.kl_warmup, s.keep) == (0.0, "last") for s in stages[1:])
    # after the last stage, a head learns each line's variances for an epoch, as the README says
    assert [s.spread_epochs for s in stages] == [0, 0, 0, 0, 1] and stages[-1].spread_lr == 0.001
    # each stage starts from the one before; only the last writes the checkpoint itself
    assert [s.init for s in stages[1:]] == [s.out for s in stages[:-1]]
    assert stages[-1].out == "runs/poetry" and all("/stages/" in s.out for s in stages[:-1])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "latent-verse train --data data/poetry --out runs/poetry" in readme
    assert "then a head learns each line's variances for 1 epoch (`--spread-epochs`, Adam at 0.001)" in readme


def test_other_families_train_in_one_stage():
    for model in ("lm", "vrnn", "bernoulli-vae", "syllable-vae"):
        cfg = parse_args(["--model", model])
        assert [s.out for s in recipe.stages(cfg, 85_000)] == [cfg.out]
        assert cfg.z_skip == (model not in ("lm", "vrnn"))  # the z skip is on where there is a z
        assert (cfg.nz, cfg.bn_gamma, cfg.z_gate) == (32, 1.0, False)  # the sentence VAE's code is its own
    assert not parse_args(["--no-z-skip"]).z_gate  # the gate goes with the skip it gates
    assert len(recipe.stages(parse_args(["--refine", "none"]), 85_000)) == 1
    assert [(s.bn_gamma, s.epochs) for s in recipe.stages(parse_args(["--model", "syllable-vae", "--refine",
                                                                      "0.8:2"]), 85_000)][1:] == [(0.8, 2)]


def test_the_help_spells_out_the_default_stages():
    import dataclasses

    from vae_core.train_config import TrainConfig

    help_text = next(f for f in dataclasses.fields(TrainConfig) if f.name == "refine").metadata["help"]
    spelled = re.search(r"auto: ([\d.:,]+)", help_text).group(1)
    assert recipe.refine_stages(spelled, "vae") == recipe.refine_stages("auto", "vae")


def test_a_stage_may_name_its_dropout():
    cfg = parse_args(["--refine", "0.8:1:0.2,0.9:2", "--refine-dropout", "0.4", "--dropout", "0.1"])
    assert [(s.bn_gamma, s.epochs, s.dropout) for s in recipe.stages(cfg, 85_000)] == [
        (0.71, 14, 0.1), (0.8, 1, 0.2), (0.9, 2, 0.4)]


def test_epochs_scale_with_the_corpus():
    assert recipe.auto_epochs(85_000) == 14
    sizes = [2_000, 5_000, 10_000, 40_000, 85_000, 300_000, 1_000_000, 10_000_000]
    epochs = [recipe.auto_epochs(n) for n in sizes]
    assert epochs == sorted(epochs, reverse=True) and len(set(epochs)) > 5  # fewer lines, more epochs
    assert epochs[0] == 91 and epochs[-1] == recipe.MIN_EPOCHS and recipe.auto_epochs(100) == recipe.MAX_EPOCHS
    # the fine-tuning stages scale too, and keep at least one epoch; --epochs N fixes them all
    assert [s.epochs for s in recipe.stages(parse_args([]), 10_000)] == [41, 6, 9, 6, 12]
    assert [recipe.stages(parse_args(argv), 10_000)[-1].spread_epochs for argv in ([], ["--epochs", "5"])] == [3, 1]
    assert [s.epochs for s in recipe.stages(parse_args([]), 10_000_000)] == [3, 1, 1, 1, 1]
    assert [s.epochs for s in recipe.stages(parse_args(["--epochs", "5"]), 10_000)] == [5, 2, 3, 2, 4]


def test_one_command_trains_every_stage(tmp_path, capsys):
    data = tiny_data(tmp_path / "data")
    out = tmp_path / "mine"
    argv = ["--data", str(data), "--out", str(out), "--epochs", "2", "--refine", "0.8:1,0.9:2", *TINY_ARGS,
            "--spread-epochs", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: 400 training lines is too few to train a VAE" in err
    *rows, head = ckpt.read_metrics(out)
    assert [(r["stage"], r["epoch"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (3, 1), (3, 2)]
    assert (head["stage"], head["spread"]) == (3, 1)  # then the variance head, after the last stage
    assert not (out / "stages").exists()  # the finished stages are gone, their epochs kept in the log
    config = ckpt.read_json(out / "config.json")
    assert config["model"]["bn_gamma"] == 0.9 and config["model"]["match_prior"] is True and config["model"]["spread"]
    assert config["command"]["refine"] == "0.8:1,0.9:2" and config["command"]["init"] == ""
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "in 3 stages by one command" in card and "stages/" not in card
    vae = vae_core.load(out)
    lines = vae.greedy(vae.mu(["the sea is calm tonight", "o wild west wind"]))
    assert len(lines) == 2 and all(isinstance(line, str) for line in lines)


def test_a_stopped_recipe_resumes_at_its_stage(tmp_path, monkeypatch):
    data = tiny_data(tmp_path / "data", n_train=200)
    out = tmp_path / "stopped"
    argv = ["--data", str(data), "--out", str(out), "--epochs", "2", "--refine", "0.8:1,0.9:1", *TINY_ARGS]
    train_on, calls = trainer.train_on, []

    def stop_in_stage_three(cfg, *args, **kwargs):
        calls.append(cfg.out)
        if len(calls) == 3:
            raise RuntimeError("stopped")
        return train_on(cfg, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_on", stop_in_stage_three)
    with pytest.raises(RuntimeError, match="stopped"):
        main(argv)
    monkeypatch.setattr(trainer, "train_on", train_on)
    assert main(argv) == 2  # without --resume, the unfinished run is not overwritten
    calls.clear()
    monkeypatch.setattr(trainer, "train_on", lambda cfg, *a, **k: calls.append(cfg.out) or train_on(cfg, *a, **k))
    assert main(argv + ["--resume"]) == 0
    assert calls == [str(out)]  # the finished stages are not trained again
    rows = ckpt.read_metrics(out)
    assert [(r["stage"], r["epoch"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (3, 1)]
    assert main(argv + ["--resume"]) == 0 and len(ckpt.read_metrics(out)) == 4  # nothing is left to train



def test_a_finished_recipe_whose_last_stage_grew_resumes_that_stage(tmp_path, monkeypatch):
    data = tiny_data(tmp_path / "data", n_train=200)
    out = tmp_path / "grown"
    argv = ["--data", str(data), "--out", str(out), "--epochs", "1", *TINY_ARGS]
    assert main(argv + ["--refine", "0.8:1,0.9:1"]) == 0 and not (out / "stages").exists()
    train_on, calls = trainer.train_on, []
    monkeypatch.setattr(trainer, "train_on", lambda cfg, *a, **k: calls.append(cfg.out) or train_on(cfg, *a, **k))
    assert main(argv + ["--refine", "0.8:1,0.9:2", "--resume"]) == 0
    assert calls == [str(out)]  # the earlier stages are gone, and done
    rows = ckpt.read_metrics(out)
    assert [(r["stage"], r["epoch"]) for r in rows] == [(1, 1), (2, 1), (3, 1), (3, 2)]
    # and it trained as the longer recipe would have from the start
    monkeypatch.setattr(trainer, "train_on", train_on)
    straight = tmp_path / "straight"
    assert main(argv[:3] + [str(straight)] + argv[4:] + ["--refine", "0.8:1,0.9:2"]) == 0
    timing = {"seconds", "lines_per_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in ckpt.read_metrics(straight)] == \
        [{k: v for k, v in r.items() if k not in timing} for r in rows]

def test_stage_options_are_checked(capsys):
    for argv, message in [(["--refine", "0.9"], "argument --refine: must be auto, none, or gamma:epochs stages"),
                          (["--refine", "0.9:1:1"], "argument --refine: must be"),
                          (["--refine", "0.9:1:0.2:3"], "argument --refine: must be"),
                          (["--refine", "0.9:1", "--model", "lm"], "--refine must be auto or none except"),
                          (["--refine-dropout", "1"], r"argument --refine-dropout: must be a number in \[0, 1\)")]:
        with pytest.raises(SystemExit):
            parse_args(argv)
        assert re.search(message, capsys.readouterr().err)
    with pytest.raises(ValueError, match="--pretrain-epochs must be below the 3 epochs"):
        recipe.stages(parse_args(["--pretrain-epochs", "3"]), 10_000_000)
