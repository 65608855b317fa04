"""The 2-D map of a checkpoint's latent space: a UMAP layout of corpus posterior means.

    python -m vae_core.projection --checkpoint checkpoints/poetry --data data/poetry/train.txt

UMAP runs once per checkpoint and its result is stored beside the weights (``projection.safetensors``
with the means and the layout, ``projection.json`` with the lines and settings; no pickle). New
codes are placed on the fixed layout by inverse-distance weighting of their nearest corpus codes,
which is fast, deterministic and never moves the corpus points.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .data import read_lines

TENSORS, META = "projection.safetensors", "projection.json"


@dataclass
class Projection:
    lines: list[str]  # the corpus lines on the map
    mu: torch.Tensor  # [N, nz] their posterior means
    xy: torch.Tensor  # [N, 2] their UMAP coordinates

    def nearest(self, z: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and Euclidean distances of the ``k`` corpus codes nearest each row of ``z``."""
        k = min(k, len(self.lines))
        distances = torch.cdist(z.float(), self.mu)
        found = distances.topk(k, dim=1, largest=False)
        return found.indices, found.values

    def place(self, z: torch.Tensor, k: int = 8) -> torch.Tensor:
        """Map coordinates ``[M, 2]`` for codes ``z [M, nz]`` (a code equal to a corpus one lands on it)."""
        if len(z) == 0:
            return torch.empty(0, 2)
        index, distance = self.nearest(z, k)
        weight = 1.0 / (distance + 1e-6) ** 2
        weight = weight / weight.sum(dim=1, keepdim=True)
        return (weight.unsqueeze(-1) * self.xy[index]).sum(dim=1)

    def recall(self, sampler, lines: list[str]) -> tuple[list[str], list[float]]:
        """For each (generated) line, the corpus line nearest its posterior mean, and that distance:
        small distances mean the model is recalling, large ones that it is inventing."""
        nearest, distances = [""] * len(lines), [float("nan")] * len(lines)
        keep = [i for i, line in enumerate(lines) if line.strip()]  # an empty decoding has no code
        if keep:
            index, distance = self.nearest(sampler.mu([lines[i] for i in keep]))
            for row, i in enumerate(keep):
                nearest[i], distances[i] = self.lines[int(index[row, 0])], float(distance[row, 0])
        return nearest, distances

    def save(self, directory: Path) -> None:
        ckpt.write_tensors(Path(directory) / TENSORS, {"mu": self.mu, "xy": self.xy})
        ckpt.write_json(Path(directory) / META, {"lines": self.lines})

    @classmethod
    def load(cls, directory: Path) -> Projection:
        """The stored map of a checkpoint; ``CheckpointError`` if it is missing or inconsistent."""
        directory = Path(directory)
        tensors = ckpt.read_tensors(directory / TENSORS)
        meta = ckpt.read_json(directory / META)
        lines, mu, xy = meta.get("lines"), tensors.get("mu"), tensors.get("xy")
        if not isinstance(lines, list) or mu is None or xy is None or not (len(lines) == len(mu) == len(xy)):
            raise ckpt.CheckpointError(f"{directory / TENSORS}: the stored map is inconsistent")
        return cls(lines, mu.float(), xy.float())


def build(sampler, lines: list[str], neighbours: int = 15, min_dist: float = 0.1, seed: int = 0) -> Projection:
    """Encode ``lines`` (posterior means) and lay them out with UMAP."""
    import umap  # slow to import (numba); only needed when a map is built

    mu = sampler.mu(lines)
    reducer = umap.UMAP(n_neighbors=neighbours, min_dist=min_dist, random_state=seed)
    xy = torch.from_numpy(reducer.fit_transform(mu.numpy())).float()
    return Projection(lines, mu, xy)


def corpus_sample(lines: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` distinct lines drawn at random (all of them if there are fewer)."""
    unique = list(dict.fromkeys(lines))
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed))[:n]
    return [unique[i] for i in order.tolist()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.projection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--data", default="data/poetry/train.txt", help="file or folder of corpus lines")
    parser.add_argument("--n", type=int, default=6000, help="corpus lines on the map")
    parser.add_argument("--neighbours", type=int, default=15, help="UMAP n_neighbors")
    parser.add_argument("--min-dist", type=float, default=0.1, help="UMAP min_dist")
    parser.add_argument("--seed", type=int, default=0, help="random seed (line choice and layout)")
    args = parser.parse_args(argv)
    if args.n < 10 or args.neighbours < 2:
        parser.error("--n must be at least 10 and --neighbours at least 2")
    from .sampler import load

    try:
        sampler = load(args.checkpoint)
        lines = corpus_sample(read_lines(args.data), args.n, args.seed)
        started = time.monotonic()
        projection = build(sampler, lines, args.neighbours, args.min_dist, args.seed)
        projection.save(sampler.directory)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"mapped {len(lines)} lines in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
