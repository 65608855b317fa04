"""Training on several processes with torch.distributed, as ``torchrun`` starts them (one per GPU, or
several on a CPU): the process group, the collectives the trainer agrees on, and what a lost rank means.

Every rank holds the whole model and the same optimiser state; DistributedDataParallel averages the
gradients of the ranks' batches in the backward pass, so each step moves every copy alike. Rank 0, the
lead, evaluates and writes the checkpoint; the others train only. Without ``torchrun`` (or with one
process) there is no group and every helper here is the identity.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from . import cli

# how long a rank waits for the others at a collective before it gives up (the lead's validation and
# saving happen while the others wait at the next one)
TIMEOUT = timedelta(minutes=10)

_device = torch.device("cpu")  # where this rank's collectives put their tensors (NCCL: its GPU)
_rank, _world = 0, 1  # this process's place in the run (kept after the group is left)
# what a collective's error says when a peer is gone (DDP's backward raises it as a plain RuntimeError)
LOST = re.compile(r"gloo|nccl|connection|peer|timed? ?out", re.IGNORECASE)


class PeerLost(RuntimeError):
    """Another rank stopped (or the network between them failed) during training."""


def start(device_name: str) -> torch.device:
    """This process's training device; under ``torchrun`` (``WORLD_SIZE`` above 1) it also joins the
    process group: NCCL with one GPU a rank (``LOCAL_RANK``), else gloo on the CPU."""
    global _device, _rank, _world
    device = cli.device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ValueError(f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                             "start at most that many processes on it (torchrun --nproc-per-node)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    _device = device if device.type == "cuda" else torch.device("cpu")
    _rank, _world = dist.get_rank(), dist.get_world_size()
    return device


def stop(together: bool = False) -> None:
    """Leave the process group, if any; ``together``: first wait until every rank is leaving (after a run
    that ended well), so that no rank tears its connections down while the lead still writes the card."""
    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def rank() -> int:
    return _rank


def world() -> int:
    return _world


def lead() -> bool:
    """Whether this process evaluates and writes (rank 0, or the only process)."""
    return rank() == 0


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` as DistributedDataParallel trains it. Some parameters get no gradient in a step (an
    adaptive softmax cluster none of the batch's targets falls in), so DDP looks for them every step."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def sums(values: list[float]) -> list[float]:
    """Each of ``values`` summed over the ranks."""
    if world() == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=_device)
    dist.all_reduce(total)
    return total.tolist()


def mean(value: float) -> float:
    """``value`` averaged over the ranks."""
    return value if world() == 1 else sums([value])[0] / world()


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` holds on any rank: a decision every rank then takes alike (stop at a deadline)."""
    return flag if world() == 1 else sums([float(flag)])[0] > 0


def from_lead(value):
    """The lead's ``value`` (anything JSON can hold; the other ranks pass None) on every rank."""
    if world() == 1:
        return value
    data = json.dumps(value).encode() if lead() else b""
    size = torch.tensor([len(data)], device=_device)
    dist.broadcast(size, 0)
    buffer = torch.zeros(int(size), dtype=torch.uint8, device=_device)
    if lead():
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buffer, 0)
    return json.loads(buffer.cpu().numpy().tobytes())


def share_lead_state(model: nn.Module) -> None:
    """Every rank takes the lead's weights and buffers (after a step the ranks draw differently, such
    as a new decoder at the end of pretraining)."""
    if world() > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)


@contextlib.contextmanager
def peers(out) -> None:
    """Turn a failed collective (another rank gone, or silent past ``TIMEOUT``) into a ``PeerLost`` that
    says what to do: the checkpoint in ``out`` keeps the last finished epoch (its saves are atomic)."""
    try:
        yield
    except RuntimeError as err:
        if world() == 1 or not (isinstance(err, dist.DistError) or LOST.search(str(err))):
            raise
        text = re.sub(r"^\[[^]]*\]\s*", "", str(err).strip())  # gloo names its source file first
        cause = text.split(". ")[0].split("\n")[0] or type(err).__name__
        raise PeerLost(f"rank {rank()} of {world()} lost the other ranks ({cause}); the training stopped, "
                       f"and {out} keeps its last finished epoch: start the same command with --resume "
                       f"to go on") from err
