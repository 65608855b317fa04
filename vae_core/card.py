"""The model card: a checkpoint's ``README.md`` (data, settings, metrics, samples) and ``evaluation.json``.

    python -m vae_core.card --checkpoint checkpoints/poetry --test data/poetry/test.txt --baseline runs/poetry-lm

The trainer writes the card when it finishes; this command rewrites it (say, once the LM baseline
has been trained).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import checkpoint as ckpt
from . import syllables
from .cli import DEVICES, device, non_negative_int
from .data import read_lines
from .evaluate import evaluate, syllable_error
from .sampler import load

BARS = {  # the shipped model's acceptance bar on the test split
    "kl": (">=", 8.0),
    "active_units": (">=", 16),
    "recon_f1": (">=", 0.35),
}
IW_NLL_SLACK = 1.03  # iw_nll may be at most 3% above the LM baseline's NLL
SEED = 0
SYLLABLE_LINES = 500  # requested counts (those of the first test lines) for the syllable-control figure
SEQUENCE_RECONSTRUCTIONS = 5  # test lines a VRNN's card reconstructs


def fmt(value) -> str:
    """A metric as text: floats to three decimals."""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def bar_checks(metrics: dict, baseline: dict | None) -> list[tuple[str, str, bool]]:
    """(criterion, observed value, passed) for each line of the acceptance bar."""
    checks = []
    for key, (op, limit) in BARS.items():
        checks.append((f"{key} {op} {limit}", fmt(metrics[key]), metrics[key] >= limit))
    if baseline is not None:
        ratio = metrics["iw_nll"] / baseline["nll"]
        checks.append((f"iw_nll <= {IW_NLL_SLACK} x LM NLL", f"{ratio:.4f} x", ratio <= IW_NLL_SLACK))
    return checks


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


def render(directory: Path, config: dict, evaluation: dict, lines: dict) -> str:
    """The card's Markdown text."""
    train, model = config.get("train", {}), config["model"]
    test, baseline = evaluation.get("test"), evaluation.get("baseline")
    kind = "plain LSTM language model (baseline)" if model["nz"] == 0 else "sentence VAE"
    if config.get("kind") == "vrnn":
        kind = "VRNN, a latent per piece (Chung et al. 2015)"
    if model.get("latent") == "bernoulli":
        kind += f" with a code of {model['nz']} bits"
    if model.get("condition"):
        kind += f" conditioned on {model['condition']}"
    parts = [
        f"# {directory.name}: {kind}",
        f"Trained with `python -m vae_core.train` on `{train.get('data', '?')}`"
        + (f", starting from the weights of `{train['init']}`" if train.get("init") else "")
        + f" (best validation loss at epoch {config.get('epoch', '?')}).",
        "## Settings",
        _table(sorted(model.items()), ("model", "value")),
        _table([(k, v) for k, v in sorted(train.items()) if k not in model and k not in ("data", "out")],
               ("training", "value")),
        "## Validation (best epoch)",
        _table([(k, v) for k, v in config.get("valid", {}).items()], ("metric", "value")),
    ]
    if test:
        parts += [f"## Test metrics ({test['n_lines']} lines)",
                  "Nats per line; `ppl` per BPEmb piece (end-of-line included); definitions in "
                  "`vae_core/evaluate.py`."
                  + (f" `iw_nll` draws its importance samples from q(z|x) fitted to each line by {test['fit_steps']} "
                     "Adam steps on its ELBO, a tighter bound on the same -log p(x) than `iw_nll_encoder`, which "
                     "draws them from the encoder's q as it is." if test.get("fit_steps") else ""),
                  _table(list(test.items()), ("metric", "value"))]
    if baseline:
        parts += ["## LM baseline",
                  f"`{baseline['checkpoint']}`: the same decoder without a latent, trained on the same data "
                  "(its model card has the settings).",
                  _table([(k, v) for k, v in baseline.items() if k != "checkpoint"], ("metric", "value"))]
    control = evaluation.get("syllables")
    if control:
        parts += ["## Syllable control",
                  f"Beam 4 from {control['n_lines']} prior codes, each asked for the syllable count of a test line; "
                  "mean absolute error between requested and produced counts (CMU dictionary, rule for unknown "
                  f"words), against the unconditioned model `{control['unconditioned']}` decoding the same codes.",
                  _table([("this model", control["mae"]), ("unconditioned", control["mae_unconditioned"])],
                         ("model", "syllable MAE"))]
    if test and model["nz"] > 0 and config.get("kind") != "vrnn":
        checks = bar_checks(test, baseline)
        parts += ["## Acceptance bar", _table([(c, v, "yes" if ok else "NO") for c, v, ok in checks],
                                             ("criterion", "observed", "met"))]
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


def write_card(directory, test_lines: list[str], iw_samples: int = 100, baseline=None, unconditioned=None,
               device="cpu") -> dict:
    """Evaluate on ``test_lines`` (and the baseline LM, if given), write ``evaluation.json`` and
    ``README.md``; returns the evaluation. A syllable-conditioned model is also measured on how well
    it obeys requested counts, against ``unconditioned`` (default: the shipped model). The likelihoods
    are computed on ``device``."""
    directory = Path(directory)
    config = ckpt.read_json(directory / "config.json")
    evaluation: dict = {}
    if test_lines and iw_samples > 0:
        evaluation["test"] = evaluate(directory, test_lines, iw_samples=iw_samples, seed=SEED, device=device)
    if baseline is not None and test_lines:
        try:
            evaluation["baseline"] = {"checkpoint": str(baseline), **evaluate(baseline, test_lines, device=device)}
        except ValueError as err:
            print(f"warning: baseline {baseline} not evaluated: {err}", file=sys.stderr)
    if config["model"].get("condition") and test_lines:
        reference = Path(unconditioned) if unconditioned is not None else ckpt.SHIPPED
        shown = os.path.relpath(reference) if reference.resolve().is_relative_to(Path.cwd()) else reference
        requested = [syllables.count(line) for line in test_lines[:SYLLABLE_LINES]]
        evaluation["syllables"] = {
            "n_lines": len(requested), "unconditioned": str(shown),
            "mae": syllable_error(load(directory), requested, SEED),
            "mae_unconditioned": syllable_error(load(reference), requested, SEED),
        }
    ckpt.write_json(directory / "evaluation.json", evaluation)
    ckpt.write_text(directory / "README.md", render(directory, config, evaluation, samples(directory, test_lines)))
    return evaluation


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
    args = parser.parse_args(argv)
    try:
        lines = read_lines(args.test) if args.test else []
        evaluation = write_card(args.checkpoint, lines, args.iw_samples, args.baseline, args.unconditioned,
                                device(args.device))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(evaluation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
