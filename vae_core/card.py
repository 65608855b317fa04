"""The model card: a checkpoint's ``README.md`` (what the model is, what its figures mean, how it was
trained, settings, metrics, samples) and ``evaluation.json``.

    python -m vae_core.card --checkpoint checkpoints/poetry --test data/poetry/test.txt --baseline baselines/poetry-lm
    python -m vae_core.card --checkpoint checkpoints/poetry --test data/poetry/test.txt --from-evaluation

The trainer writes the card when it finishes; this command rewrites it (say, once the LM baseline
has been trained). With --from-evaluation it keeps the figures already in evaluation.json and only
writes the text again (the samples are decoded anew, which takes seconds, not the evaluation's minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from . import checkpoint as ckpt
from . import syllables
from .cli import DEVICES, command, device, non_negative_int
from .data import read_lines
from .evaluate import evaluate, syllable_error
from .sampler import load

SEED = 0
SYLLABLE_LINES = 500  # requested counts (those of the first test lines) for the syllable-control figure
SEQUENCE_RECONSTRUCTIONS = 5  # test lines a VRNN's card reconstructs
METRICS = {  # evaluation.json's keys, as a reader names them (nats are a line's)
    "n_lines": "lines",
    "n_pieces": "BPEmb pieces (with end-of-line)",
    "iw_nll": "likelihood bound on -log p(x) (nats)",
    "iw_nll_encoder": "the same, from the encoder's q (nats)",
    "nll": "negative log-likelihood (nats)",
    "ppl": "perplexity (a piece)",
    "elbo": "negative ELBO (nats)",
    "rec": "reconstruction loss (nats)",
    "kl": "KL from the prior (nats)",
    "mi": "mutual information (nats)",
    "active_units": "active code dimensions",
    "nz": "code dimensions",
    "recon_f1": "words decoded back (unigram F1)",
    "iw_samples": "importance samples a line",
    "fit_steps": "Adam steps fitting each proposal",
}
BASELINE_KEY = {"iw_nll": "nll", "iw_nll_encoder": "nll"}  # the LM's exact NLL beside either bound
CONDITIONS = {"syllables": "syllable count"}  # what a conditioned model is told of each line
FRACTIONS = {2: "a half", 3: "a third", 4: "a quarter", 5: "a fifth", 6: "a sixth", 7: "a seventh",
             8: "an eighth", 9: "a ninth", 10: "a tenth"}


def fmt(value) -> str:
    """A value as text, its digits chosen by its size: 12,276,000; 57.99; 0.359; 2.5e-4."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    size = abs(value)
    if size == 0 or not math.isfinite(value):
        return f"{value:g}"
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if size >= 0.01:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def share(fraction: float) -> str:
    """A fraction in words where a simple one is near ("about a third (36%)"), else as a percentage."""
    n = round(1 / fraction) if fraction > 0 else 0
    if n in FRACTIONS and abs(fraction - 1 / n) <= 0.1 / n:
        return f"about {FRACTIONS[n]} ({fraction:.0%})"
    return f"{fraction:.0%}"


def relative(path) -> str:
    """``path`` relative to the working directory when it lies inside it, else as given."""
    path = Path(path)
    return os.path.relpath(path) if path.is_absolute() and path.resolve().is_relative_to(Path.cwd()) else str(path)


def shown_path(path) -> str:
    """A path as a card shows it: ``relative``, or the folder's name alone for one outside the working
    directory (a machine's own paths mean nothing to a reader)."""
    text = relative(path)
    return Path(text).name if Path(text).is_absolute() else text


def describe(config: dict) -> str:
    """What kind of model a checkpoint holds: "sentence VAE (Gaussian code, 32 dimensions)"."""
    model = config["model"]
    if config.get("kind") == "vrnn":
        return f"VRNN (a {model['nz']}-dimensional Gaussian latent per piece, Chung et al. 2015)"
    if model["nz"] == 0:
        return "plain LSTM language model (baseline)"
    code = (f"binary code, {model['nz']} bits" if model.get("latent") == "bernoulli"
            else f"Gaussian code, {model['nz']} dimensions")
    return f"sentence VAE ({code})" + (f", conditioned on {model['condition']}" if model.get("condition") else "")


def findings(config: dict, evaluation: dict) -> list[str]:
    """What the test figures mean for a user, in sentences: how close the model comes to a plain LM's
    likelihood, how much of a line its code holds and gives back, how well it obeys a condition."""
    test, baseline, control = evaluation.get("test"), evaluation.get("baseline"), evaluation.get("syllables")
    if not test:
        return []
    lines = f"On {fmt(test['n_lines'])} held-out lines"
    if "iw_nll" not in test:  # a plain language model
        return [f"{lines} this plain language model's negative log-likelihood is {fmt(test['nll'])} nats a line "
                f"(perplexity {fmt(test['ppl'])} a piece)."]
    vrnn, bits = config.get("kind") == "vrnn", config["model"].get("latent") == "bernoulli"
    out = f"{lines} this model's likelihood bound is {fmt(test['iw_nll'])} nats a line"
    if baseline and baseline.get("n_lines") == test["n_lines"]:
        ratio = test["iw_nll"] / baseline["nll"]
        out += (f", {abs(ratio - 1):.1%} {'above' if ratio >= 1 else 'below'} a plain language model "
                f"({fmt(baseline['nll'])})")
        condition = config["model"].get("condition")
        if condition:
            out += f", which, unlike this model, is not told each line's {CONDITIONS.get(condition, condition)}"
        elif ratio <= 1.05 and not vrnn:
            out += ": the code costs little"
    said = [out + "."]
    if vrnn:
        said.append(f"Its latents hold {fmt(test['kl'])} nats of a line in all (KL from the prior)"
                    + (": the decoder barely uses them and predicts like a plain language model."
                       if test["kl"] < 1 else "."))
        said.append(f"Teacher-forced reconstruction gets back {share(test['recon_f1'])} of a line's words "
                    f"(unigram F1 {fmt(test['recon_f1'])}).")
    else:
        said.append(f"Its code holds {fmt(test['kl'])} nats about each line (KL from the prior), spread over "
                    f"{fmt(test['active_units'])} of its {fmt(test['nz'])} {'bits' if bits else 'dimensions'}.")
        said.append(f"Greedy decoding of a line's code gets back {share(test['recon_f1'])} of its words "
                    f"(unigram F1 {fmt(test['recon_f1'])}).")
    if control:
        said.append(f"Asked for a syllable count, its lines miss it by {fmt(control['mae'])} syllables on average, "
                    f"against {fmt(control['mae_unconditioned'])} for a model without the condition.")
    return said


def metric_rows(test: dict, baseline: dict | None = None) -> list[tuple[str, str, str, str]]:
    """(key, readable name, value, the LM baseline's value or "") for each test metric, as text."""
    baseline = baseline or {}
    return [(key, METRICS.get(key, key), fmt(value), fmt(baseline.get(BASELINE_KEY.get(key, key), "")))
            for key, value in test.items()]


def stages(history: list[dict]) -> dict[int, list[dict]]:
    """The rows of ``metrics.jsonl`` by training stage, in the order the stages ran."""
    out: dict[int, list[dict]] = {}
    for row in history:
        out.setdefault(row.get("stage", 1), []).append(row)
    return out


def lost_stages(history: list[dict]) -> list[int]:
    """Stages before the last whose rows the log lacks (a stage that never kept its log)."""
    logged = stages(history)
    return [s for s in range(1, max(logged, default=0)) if s not in logged]


def lost_note(history: list[dict]) -> str:
    """A sentence naming the stages whose log was not kept ("" when there are none)."""
    lost = lost_stages(history)
    if not lost:
        return ""
    names = ", ".join(map(str, lost[:-1])) + (" and " if len(lost) > 1 else "") + str(lost[-1])
    names = f"stage {names}" if len(lost) == 1 else f"stages {names}"
    return (f"The log of {names} was not kept: {'its' if len(lost) == 1 else 'their'} epochs are missing from "
            "`metrics.jsonl` and from the training curves.")


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def training(config: dict, history: list[dict]) -> list[str]:
    """Where the weights come from: data, stages (each with its epochs) and which epoch was kept."""
    train = config.get("train", {})
    command = config.get("command", train)  # one command may train several stages
    source = f"`{shown_path(command['init'])}`" if command.get("init") else ""
    kept = "the last" if train.get("keep") == "last" else "the one with the lowest validation loss"
    logged = stages(history)
    last = max(logged, default=1)
    data = shown_path(train["data"]) if train.get("data") else "?"
    text = f"Trained with `python -m vae_core.train` on `{data}`"
    spread = [r for r in history if "spread" in r]
    head = ([f"Then a head learned each line's posterior variances for {len(spread)} "
             f"epoch{'' if len(spread) == 1 else 's'}, every other weight fixed (`--spread-epochs`): "
             f"validation -ELBO {spread[-1]['valid_elbo']:.2f}."] if spread else [])
    if last == 1:
        trained = [r for r in logged.get(1, []) if "spread" not in r]
        epochs = f" for {len(trained)} epoch{'' if len(trained) == 1 else 's'}" if trained else ""
        return [text + epochs + (f", starting from the weights of {source}" if source else "")
                + f"; the checkpoint holds the weights of epoch {config.get('epoch', '?')}, {kept}."] + head
    from .recipe import refine_stages  # imported here: the recipe's options import this module

    ran = 1 + len(refine_stages(command["refine"], command["model"])) if "refine" in command else 1
    if ran > 1:
        opening = (f" in {last} stages by one command with the training settings below: stage {last - ran + 1} "
                   + (f"from the weights of {source}" if source else "from scratch")
                   + ", each later one fine-tuned from the one before (`--refine`)")
        settings = "the model settings below are the last stage's"
    else:
        opening = (f" in {last} stages: stage 1 from scratch, each later one fine-tuned from the one before"
                   + (f" (stage {last} from {source})" if source else ""))
        settings = f"the settings below are stage {last}'s"
    parts = [text + opening + f". The checkpoint holds the weights of epoch {config.get('epoch', '?')} of stage "
             f"{last}, {kept}; {settings}."]
    rows = []
    for stage in range(1, last + 1):
        if stage not in logged:
            rows.append((stage, "log not kept", "", "", ""))
            continue
        epochs = [r for r in logged[stage] if "spread" not in r]
        rows.append((stage, len(epochs), epochs[0].get("lr", ""), epochs[-1].get("valid_elbo", ""),
                     sum(r.get("seconds", 0.0) for r in epochs) / 60))
    parts.append(_table(rows, ("stage", "epochs", "learning rate",
                               "validation -ELBO at its last epoch (nats a line, that stage's settings)", "minutes")))
    parts += head
    if lost_note(history):
        parts.append(lost_note(history))
    return parts


def samples(directory: Path, test_lines: list[str], count: int = 20) -> dict[str, list]:
    """Twenty prior samples, reconstructions and homotopies (between pairs of test lines); for a VRNN,
    twenty samples and a few teacher-forced reconstructions."""
    vae = load(directory)
    if vae.latent == "sequence":
        originals = test_lines[:SEQUENCE_RECONSTRUCTIONS]
        return {"samples (temperature 0.8)": vae.sample(count, temperature=0.8, seed=SEED),
                "teacher-forced reconstructions": list(zip(originals, vae.reconstruct(originals)))}
    if vae.model.is_lm:
        return {"samples": vae.sample(vae.prior(count, seed=SEED), temperature=0.8, seed=SEED)}
    prior = vae.prior(count, seed=SEED)
    out = {
        "prior (beam 4)": vae.beam(prior, width=4),
        "prior (sampled, temperature 0.8)": vae.sample(prior, temperature=0.8, seed=SEED),
    }
    if len(test_lines) >= 3 * count:
        originals = test_lines[:count]
        out["reconstructions"] = list(zip(originals, vae.beam(vae.mu(originals), width=4)))
        mu = vae.mu(test_lines[count : 3 * count])
        paths = [vae.interpolate(mu[2 * i], mu[2 * i + 1], steps=4) for i in range(count)]
        out["homotopies"] = [vae.beam(path, width=4) for path in paths]
    return out


def render(directory: Path, config: dict, evaluation: dict, lines: dict, history: list[dict] | None = None) -> str:
    """The card's Markdown text; ``history`` is the checkpoint's ``metrics.jsonl`` rows."""
    train, model = config.get("command", config.get("train", {})), config["model"]
    test, baseline = evaluation.get("test"), evaluation.get("baseline")
    paths = {"init", "tokenizer", "baseline"}
    settings = [(k, shown_path(v) if k in paths and v else v) for k, v in sorted(train.items())
                if k not in model and k not in ("data", "out")]
    parts = [f"# {Path(directory).resolve().name}: {describe(config)}"]
    if test:
        parts.append(" ".join(findings(config, evaluation)))
    parts += [
        "## Training",
        *training(config, history or []),
        "## Settings",
        _table(sorted(model.items()), ("model", "value")),
        _table(settings, ("training", "value")),
        "## Validation (the kept epoch)",
        _table([(METRICS.get(k, k), v) for k, v in config.get("valid", {}).items()], ("metric", "value")),
    ]
    if test:
        parts += [f"## Test metrics ({fmt(test['n_lines'])} lines)",
                  "Nats per line; perplexity per BPEmb piece (end-of-line included); definitions in "
                  "`vae_core/evaluate.py`."
                  + (f" The likelihood bound (`iw_nll`) draws its importance samples from q(z|x) fitted to each "
                     f"line by {test['fit_steps']} Adam steps on its ELBO, a tighter bound on the same -log p(x) "
                     "than `iw_nll_encoder`, which draws them from the encoder's q as it is."
                     if test.get("fit_steps") else ""),
                  _table([(name, value, f"`{key}`") for key, name, value, _ in metric_rows(test)],
                         ("metric", "value", "in evaluation.json"))]
    if baseline:
        parts += ["## LM baseline",
                  f"`{shown_path(baseline['checkpoint'])}`: the same decoder without a latent, trained on the same "
                  "data (its model card has the settings).",
                  _table([(name, value) for key, name, value, _ in metric_rows(baseline) if key != "checkpoint"],
                         ("metric", "value"))]
    control = evaluation.get("syllables")
    if control:
        parts += ["## Syllable control",
                  f"Beam 4 from {fmt(control['n_lines'])} prior codes, each asked for the syllable count of a test "
                  "line; mean absolute error between requested and produced counts (CMU dictionary, rule for "
                  f"unknown words), against the unconditioned model `{shown_path(control['unconditioned'])}` "
                  "decoding the same codes.",
                  _table([("this model", control["mae"]), ("unconditioned", control["mae_unconditioned"])],
                         ("model", "syllable MAE"))]
    for title, items in lines.items():
        parts.append(f"## {title.capitalize()}")
        if title == "reconstructions":
            parts.append(_table(items, ("input", "beam 4 from the posterior mean")))
        elif title == "teacher-forced reconstructions":
            parts.append("The most likely piece at each step, the recurrence reading the line's own pieces "
                         "and each step's latent at its posterior mean.")
            parts.append(_table(items, ("input", "reconstruction")))
        elif title == "homotopies":
            parts.append("Each row: beam 4 along five evenly spaced codes between the posterior means "
                         "of two test lines.")
            parts += ["\n".join(f"{j}. {line}" for j, line in enumerate(path)) for path in items]
        else:
            parts.append("\n".join(f"- {line}" for line in items))
    return "\n\n".join(parts) + "\n"


def stored_baseline(baseline, test: dict) -> dict:
    """The LM baseline's figures from its own ``evaluation.json``, which must be of the same test lines."""
    figures = ckpt.read_json(Path(baseline) / "evaluation.json").get("test", {})
    if (figures.get("n_lines"), figures.get("n_pieces")) != (test.get("n_lines"), test.get("n_pieces")):
        raise ValueError(f"--baseline {baseline}: its evaluation.json is not of the same test lines "
                         f"({figures.get('n_lines')} lines, {figures.get('n_pieces')} pieces; this model's: "
                         f"{test.get('n_lines')}, {test.get('n_pieces')})")
    return figures


def write_card(directory, test_lines: list[str], iw_samples: int = 100, baseline=None, unconditioned=None,
               device="cpu", from_evaluation: bool = False) -> dict:
    """Evaluate on ``test_lines`` (and the baseline LM, if given), write ``evaluation.json`` and
    ``README.md``; returns the evaluation. A syllable-conditioned model is also measured on how well
    it obeys requested counts, against ``unconditioned`` (default: the shipped model). The likelihoods
    are computed on ``device``. With ``from_evaluation`` the figures come from the checkpoint's
    ``evaluation.json`` instead (a baseline's from its own, added when missing) and only the text and
    samples are made again."""
    directory = Path(directory)
    config = ckpt.read_json(directory / "config.json")
    if from_evaluation:
        evaluation = ckpt.read_json(directory / "evaluation.json")
        if baseline is not None and "baseline" not in evaluation and "test" in evaluation:
            evaluation["baseline"] = {"checkpoint": relative(baseline),
                                      **stored_baseline(baseline, evaluation["test"])}
    else:
        evaluation = measure(directory, config, test_lines, iw_samples, baseline, unconditioned, device)
    ckpt.write_json(directory / "evaluation.json", evaluation)
    ckpt.write_text(directory / "README.md", render(directory, config, evaluation, samples(directory, test_lines),
                                                    ckpt.read_metrics(directory)))
    return evaluation


def measure(directory: Path, config: dict, test_lines: list[str], iw_samples: int, baseline, unconditioned,
            device) -> dict:
    """The figures of ``evaluation.json``: test metrics, the baseline's, and syllable control."""
    evaluation: dict = {}
    if test_lines and iw_samples > 0:
        evaluation["test"] = evaluate(directory, test_lines, iw_samples=iw_samples, seed=SEED, device=device)
    if baseline is not None and test_lines:
        try:
            evaluation["baseline"] = {"checkpoint": relative(baseline), **evaluate(baseline, test_lines,
                                                                                   device=device)}
        except ValueError as err:
            print(f"warning: baseline {baseline} not evaluated: {err}", file=sys.stderr)
    if config["model"].get("condition") and test_lines:
        reference = Path(unconditioned) if unconditioned is not None else ckpt.SHIPPED
        requested = [syllables.count(line) for line in test_lines[:SYLLABLE_LINES]]
        evaluation["syllables"] = {
            "n_lines": len(requested), "unconditioned": relative(reference),
            "mae": syllable_error(load(directory), requested, SEED),
            "mae_unconditioned": syllable_error(load(reference), requested, SEED),
        }
    return evaluation


@command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.card", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory to describe")
    parser.add_argument("--test", default=None, help="file of test lines (metrics and samples come from it)")
    parser.add_argument("--baseline", default=None, help="LM checkpoint to compare with")
    parser.add_argument("--iw-samples", type=non_negative_int, default=100,
                        help="importance samples per line for iw_nll (0: no test metrics)")
    parser.add_argument("--unconditioned", default=None,
                        help="for a syllable-conditioned model: the unconditioned model to compare its syllable "
                             "control with (default: the shipped model)")
    parser.add_argument("--device", default="cpu", choices=DEVICES,
                        help="where the test likelihoods are computed: cpu, cuda, or auto (CUDA when present)")
    parser.add_argument("--from-evaluation", action="store_true",
                        help="measure nothing: keep the figures of the checkpoint's evaluation.json (a --baseline's "
                             "come from its own evaluation.json) and write the card's text and samples again")
    args = parser.parse_args(argv)
    lines = read_lines(args.test) if args.test else []
    evaluation = write_card(args.checkpoint, lines, args.iw_samples, args.baseline, args.unconditioned,
                            device(args.device), from_evaluation=args.from_evaluation)
    print(json.dumps(evaluation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
