"""Hogwild! training (Recht et al. 2011): forked processes each train on their share of an epoch's
batches with a share of the threads, all updating the one model and Adam's moments in shared memory
without locks.

On two CPU cores two one-thread workers keep both cores busier than one two-thread process, whose
LSTM kernels split each 64-line product between the cores.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import torch

from .run_state import Run


def check(workers: int, device: torch.device) -> None:
    """A ValueError unless ``workers`` processes can train on ``device``."""
    if workers > 1 and (device.type != "cpu" or "fork" not in multiprocessing.get_all_start_methods()):
        raise ValueError("--workers above 1 trains on the CPU of a system with fork() (Linux, macOS): "
                         "pass --device cpu, or --workers 1")


def train_parallel(run: Run, work: Callable[[int], dict]) -> list[dict]:
    """Run ``work(rank)`` (one worker's share of the epoch, see ``train.train_share``) in each of
    ``run.cfg.workers`` forked processes, each with its own threads and random stream; returns what each
    returned. A worker's error stops them all and is raised here as a RuntimeError."""
    share_memory(run)
    threads = max(1, torch.get_num_threads() // run.cfg.workers)
    context = multiprocessing.get_context("fork")  # the children inherit the shared tensors and the data
    jobs = []
    for rank in range(run.cfg.workers):
        receive, send = context.Pipe(duplex=False)
        seed = 1_000_003 * run.cfg.seed + 1_009 * run.epoch + rank + 1
        process = context.Process(target=_worker, args=(work, rank, threads, seed, send), daemon=True)
        process.start()
        send.close()
        jobs.append((process, receive))
    shares = []
    try:
        for rank, (process, receive) in enumerate(jobs):
            try:
                outcome, value = receive.recv()
            except EOFError:
                outcome, value = "error", "it died without a word"
            process.join()
            if outcome == "error":
                raise RuntimeError(f"training worker {rank} failed (exit code {process.exitcode}): {value}")
            shares.append(value)
    finally:  # after a failure or an interrupt, no worker goes on writing to the model
        for process, _ in jobs:
            process.terminate()
            process.join()
    return shares


def _worker(work: Callable[[int], dict], rank: int, threads: int, seed: int, send) -> None:
    """A forked worker: its own threads and random stream, its share of the epoch, its sums sent back."""
    try:
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        send.send(("ok", work(rank)))
    except BaseException as err:  # the parent re-raises it
        send.send(("error", f"{type(err).__name__}: {err}"))
        raise


def share_memory(run: Run) -> None:
    """Move the model and Adam's state (created now if absent) to shared memory, where forked workers'
    updates land."""
    run.model.share_memory()
    for opt in run.optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                state = opt.state[p]
                if not state:  # what Adam creates at its first step (a float32 step count when fused)
                    state.update(step=torch.zeros((), dtype=torch.float32), exp_avg=torch.zeros_like(p),
                                 exp_avg_sq=torch.zeros_like(p))
                for value in state.values():
                    value.share_memory_()
