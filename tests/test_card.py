"""The model card: a title by name and kind, numbers by their size, plain-words findings, no machine
paths, the training stages, and re-rendering from a stored evaluation."""

import json
import re

import pytest

from vae_core import card
from vae_core import checkpoint as ckpt
from vae_core.train import TrainConfig, train

from .conftest import ROOT, TINY

SHIPPED = ["checkpoints/poetry", "checkpoints/poetry-bits", "checkpoints/poetry-syllables",
           "checkpoints/poetry-vrnn", "baselines/poetry-lm"]


@pytest.fixture(scope="module")
def verse(tmp_path_factory, data_dir):
    """A tiny VAE trained at a learning rate of 2.5e-4, its card not yet written."""
    out = tmp_path_factory.mktemp("cards") / "verse"
    return train(TrainConfig(data=str(data_dir), out=str(out), epochs=2, lr=2.5e-4,
                             **{**TINY, "card_iw_samples": 0}))


@pytest.mark.parametrize("value, text", [
    (2.5e-4, "2.5e-4"), (1e-3, "1e-3"), (57.98681875, "57.99"), (0.35909527866988417, "0.359"),
    (12_276_000, "12,276,000"), (4129.0, "4,129"), (5.0, "5"), (0.0, "0"), (True, "yes"), ((500, 4000), "500, 4,000"),
])
def test_numbers_are_formatted_by_size(value, text):
    assert card.fmt(value) == text


def test_the_card_command_describes_a_model_beside_its_baseline(verse, tiny_lm, data_dir, capsys):
    test = data_dir / "test.txt"
    assert card.main(["--checkpoint", str(verse), "--test", str(test), "--baseline", str(tiny_lm),
                      "--iw-samples", "3"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    text = (verse / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# verse: sentence VAE (Gaussian code, 8 dimensions)\n")
    assert "| lr | 2.5e-4 |" in text
    iw, lm = evaluation["test"]["iw_nll"], evaluation["baseline"]["nll"]
    side = "above" if iw >= lm else "below"
    assert (f"On 60 held-out lines this model's likelihood bound is {card.fmt(iw)} nats a line, "
            f"{abs(iw / lm - 1) * 100:.1f}% {side} a plain language model ({card.fmt(lm)})") in text
    f1 = evaluation["test"]["recon_f1"]
    assert f"Greedy decoding of a line's code gets back {card.share(f1)} of its words (unigram F1 {f1:.3g})" in text
    assert "`tiny-lm`: the same decoder" in text  # the baseline named, not by its place on this machine
    assert not re.search(r"(?<![\w.])/(tmp|work|root|home)/", text) and str(verse.parent) not in text
    assert "Acceptance" not in text and "acceptance" not in text


def test_from_evaluation_rewrites_the_text_and_keeps_the_figures(verse, tiny_lm, data_dir, tmp_path):
    (verse / "README.md").unlink(missing_ok=True)
    ckpt.write_json(verse / "evaluation.json", {"test": {"n_lines": 60, "n_pieces": 1, "iw_nll": 1.0}})
    with pytest.raises(ValueError, match="not of the same test lines"):  # the LM's figures are of 60 lines
        card.write_card(verse, [], baseline=tiny_lm, from_evaluation=True)
    stored = json.loads((tiny_lm / "evaluation.json").read_text())["test"]
    figures = {"n_lines": 60, "n_pieces": stored["n_pieces"], "rec": 40.0, "kl": 2.5, "elbo": 42.5,
               "active_units": 3, "mi": 0.5, "iw_nll": stored["nll"] * 1.1, "iw_samples": 3, "ppl": 99.0, "nz": 8,
               "recon_f1": 0.25}
    ckpt.write_json(verse / "evaluation.json", {"test": figures})
    assert card.main(["--checkpoint", str(verse), "--test", str(data_dir / "test.txt"), "--baseline",
                      str(tiny_lm), "--from-evaluation"]) == 0
    evaluation = json.loads((verse / "evaluation.json").read_text())
    assert evaluation["test"] == figures  # nothing measured again
    assert evaluation["baseline"]["nll"] == stored["nll"]  # the LM's own stored figure
    text = (verse / "README.md").read_text(encoding="utf-8")
    assert "10.0% above a plain language model" in text
    assert "gets back about a quarter (25%) of its words (unigram F1 0.25)" in text
    assert "## Reconstructions" in text  # the samples are decoded again from the test lines


def test_the_card_names_the_stages_and_those_without_a_log():
    config = {"model": {"nz": 8}, "epoch": 1, "train": {"data": "data/poetry", "init": "/somewhere/else/stage-3",
                                                         "keep": "last"}}
    history = [{"stage": 1, "epoch": 1, "lr": 1e-3, "valid_elbo": 70.0, "seconds": 60.0},
               {"epoch": 2, "lr": 1e-3, "valid_elbo": 65.0, "seconds": 60.0},  # no stage: the first run's
               {"stage": 2, "epoch": 1, "lr": 2.5e-4, "valid_elbo": 64.0, "seconds": 30.0},
               {"stage": 4, "epoch": 1, "lr": 2.5e-4, "valid_elbo": 63.0, "seconds": 30.0}]
    text = "\n".join(card.training(config, history))
    assert "in 4 stages: stage 1 from scratch" in text and "one before (stage 4 from `stage-3`)." in text
    assert "| 1 | 2 | 1e-3 | 65 | 2 |" in text and "| 3 | log not kept |" in text
    assert "The log of stage 3 was not kept" in text
    assert "/somewhere" not in text


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_cards_are_titled_by_name_and_kind_without_machine_paths(name):
    directory = ROOT / name
    text = (directory / "README.md").read_text(encoding="utf-8")
    config = json.loads((directory / "config.json").read_text())
    assert text.splitlines()[0] == f"# {directory.name}: {card.describe(config)}"
    for path in (directory / "README.md", directory / "config.json", directory / "metrics.jsonl"):
        assert not re.search(r"(?<![\w.])/(tmp|work|root|home)/", path.read_text(encoding="utf-8")), path
    assert "cceptance" not in text and not re.search(r"\b(session|issue) \d", text)
    assert all(isinstance(r["stage"], int) for r in map(json.loads, (directory / "metrics.jsonl").open()))


def test_the_shipped_card_compares_the_model_with_the_lm():
    text = (ckpt.SHIPPED / "README.md").read_text(encoding="utf-8")
    assert "likelihood bound is 57.17 nats a line, 1.2% above a plain language model (56.52)" in text
    assert "gets back about a half (46%) of its words" in text
    assert "in 5 stages by one command" in text and "log not kept" not in text
