"""A terminal tour of a checkpoint: reconstructions, a homotopy, neighbours and prior samples.

    python -m vae_core.demo
    python -m vae_core.demo --lines "the sea is calm tonight" "i wandered lonely as a cloud" --method sample
"""

from __future__ import annotations

import argparse
import sys

from .cli import command
from .sampler import METHODS, load

DEFAULT_LINES = ["the sea is calm tonight", "i wandered lonely as a cloud", "because i could not stop for death"]


@command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--lines", nargs="+", default=DEFAULT_LINES, help="lines of verse to encode")
    parser.add_argument("--method", choices=METHODS, default="beam", help="decoding method")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (--method sample)")
    parser.add_argument("--width", type=int, default=4, help="beam width (--method beam)")
    parser.add_argument("--steps", type=int, default=8, help="homotopy steps between the first two lines")
    parser.add_argument("--noise", type=float, default=0.3, help="neighbour noise scale")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    options = {"sample": {"temperature": args.temperature, "seed": args.seed}, "beam": {"width": args.width},
               "greedy": {}}[args.method]
    vae = load(args.checkpoint)
    mu = vae.mu(args.lines)
    print(f"== reconstructions ({args.method})")
    for line, out in zip(args.lines, vae.decode(mu, args.method, **options)):
        print(f"  {line}\n    -> {out}")
    if len(args.lines) >= 2:
        print(f"== homotopy: {args.lines[0]!r} -> {args.lines[1]!r}")
        for i, out in enumerate(vae.decode(vae.interpolate(mu[0], mu[1], args.steps), args.method, **options)):
            print(f"  {i:2d}  {out}")
    print(f"== neighbours of {args.lines[0]!r} (noise {args.noise})")
    for out in vae.decode(vae.neighbours(mu[0], 6, args.noise, seed=args.seed), args.method, **options):
        print(f"  {out}")
    print("== from the prior")
    for out in vae.decode(vae.prior(6, seed=args.seed), args.method, **options):
        print(f"  {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
