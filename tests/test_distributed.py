"""Training under torchrun: DistributedDataParallel ranks on gloo train as one process does, resume, and
stop together when one is lost."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core.data import shard
from vae_core.sampler import load
from vae_core.train import TrainConfig, train

from .conftest import ROOT, TINY

# two ranks of half the one process's batch: the same lines a step, the same steps an epoch
RANKS = {**TINY, "batch_size": 16, "threads": 1, "card_iw_samples": 0, "lr": 3e-3}
EPOCHS = 3
TIMING = {"seconds", "lines_per_s"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def options(data_dir, out, **settings) -> list[str]:
    """``vae_core.train``'s command line for ``settings`` (RANKS's, then these)."""
    argv = ["--data", str(data_dir), "--out", str(out)]
    for name, value in {**RANKS, **settings}.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return argv


def torchrun(data_dir, out, ranks: int = 2, **settings) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-port",
               str(free_port()), "-m", "vae_core.train", *options(data_dir, out, **settings)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def adam_steps(out) -> int:
    """The most steps any parameter's Adam state in ``out``'s resume state has taken."""
    state = ckpt.read_tensors(out / "resume" / "state.safetensors")
    return max(int(v) for k, v in state.items() if k.endswith(".step"))


@pytest.fixture(scope="module")
def two_ranks(data_dir, tmp_path_factory):
    """A run of two ranks for EPOCHS epochs, start to end."""
    out = tmp_path_factory.mktemp("ranks") / "straight"
    torchrun(data_dir, out, epochs=EPOCHS)
    return out


def test_shards_cover_every_line_once_in_as_many_steps_a_rank():
    batches = list(torch.arange(100).split(8))  # 13 batches, the last of 4 lines
    assert shard(batches, 0, 1) == batches
    for world in (2, 3, 5):
        shares = [shard(batches, rank, world) for rank in range(world)]
        assert len({len(share) for share in shares}) == 1
        assert sorted(torch.cat([b for share in shares for b in share]).tolist()) == list(range(100))
    with pytest.raises(ValueError, match="3 training lines cannot feed 4 processes"):
        shard([torch.arange(3)], 0, 4)


def test_two_ranks_reach_the_validation_loss_of_one_process(two_ranks, data_dir, tmp_path):
    """Two ranks of 16 lines a step train as one process of 32: the same number of steps on the same
    lines. They cannot match exactly: the ranks' batches are two length buckets where the process has
    one, and each draws its own posterior noise. Over seeds 0-4 one process ends at -ELBO 98.2 to 98.8
    here (two ranks: 98.8 and 98.6 for seeds 0 and 1), from about 110.5 after its first epoch: 1.5 nats
    is two and a half times the seeds' spread, and small beside what the run learns."""
    rows = ckpt.read_metrics(two_ranks)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {r["batches"] for r in rows} == {26}  # 25 batches of 16, one split so each rank takes 13
    assert adam_steps(two_ranks) == 13 * EPOCHS  # the ranks stepped together
    one = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "one"), epochs=EPOCHS,
                            **{**RANKS, "batch_size": 32, "threads": 2}))
    alone = ckpt.read_metrics(one)
    assert adam_steps(one) == 13 * EPOCHS
    assert rows[-1]["valid_elbo"] < rows[0]["valid_elbo"] - 5  # it learned
    assert rows[-1]["valid_elbo"] == pytest.approx(alone[-1]["valid_elbo"], abs=1.5)
    assert load(two_ranks).greedy(torch.zeros(2, TINY["nz"]))  # the lead wrote a whole checkpoint


def test_one_rank_under_torchrun_trains_as_a_plain_run(data_dir, tmp_path):
    torchrun(data_dir, tmp_path / "one-rank", ranks=1, epochs=2)
    plain = subprocess.run([sys.executable, "-m", "vae_core.train", *options(data_dir, tmp_path / "plain", epochs=2)],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert plain.returncode == 0, plain.stderr[-3000:]
    rows = without_timing(ckpt.read_metrics(tmp_path / "one-rank"))
    assert len(rows) == 2 and rows == without_timing(ckpt.read_metrics(tmp_path / "plain"))


def test_a_lost_rank_stops_the_run_which_then_resumes_exactly(two_ranks, data_dir, tmp_path):
    """Kill rank 1 after the first epoch: rank 0 stops with one line that says so, the checkpoint keeps
    the last finished epoch, and a torchrun resume from it ends as the run that never stopped.

    The ranks are started as torchrun starts them (RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT) but
    without its agent, which would end the survivor itself: what a rank on another machine meets."""
    out = tmp_path / "killed"
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    command = [sys.executable, "-m", "vae_core.train", *options(data_dir, out, epochs=EPOCHS)]
    ranks = [subprocess.Popen(command, cwd=ROOT, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    try:
        began = time.monotonic()
        while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text().strip():
            assert time.monotonic() - began < 60 and ranks[0].poll() is None, ranks[0].stderr.read()[-3000:]
            time.sleep(0.02)
        ranks[1].send_signal(signal.SIGKILL)
        _, error = ranks[0].communicate(timeout=60)
    finally:
        for process in ranks:
            process.kill()
            process.wait()
    assert ranks[0].returncode == 1
    assert [line for line in error.splitlines() if line.startswith("error:")] == error.strip().splitlines()[-1:]
    assert "rank 0 of 2 lost the other ranks" in error and "--resume" in error and "Traceback" not in error
    rows = ckpt.read_metrics(out)
    assert 1 <= len(rows) < EPOCHS  # stopped before the end
    assert json.loads((out / "resume" / "state.json").read_text())["counters"]["epoch"] == len(rows)
    assert load(out).greedy(torch.zeros(2, TINY["nz"]))
    torchrun(data_dir, out, epochs=EPOCHS, resume=True)
    assert without_timing(ckpt.read_metrics(out)) == without_timing(ckpt.read_metrics(two_ranks))


def test_aggressive_bursts_and_the_score_baseline_stay_in_step(data_dir, tmp_path):
    """Bit codes (the score estimator's shared baseline) in aggressive mode: each rank's burst stops when
    the ranks' mean loss stops falling, so all take the same steps; ranks that stopped apart would wait
    for each other until the subprocess timeout."""
    out = tmp_path / "bits"
    torchrun(data_dir, out, model="bernoulli-vae", bn_gamma=2.0, aggressive=True, max_lines=100, epochs=1)
    row = ckpt.read_metrics(out)[0]
    assert row["batches"] == 8 and row["aggressive"]
    state = ckpt.read_tensors(out / "resume" / "state.safetensors")
    encoder, decoder = (max(int(v) for k, v in state.items() if k.startswith(f"{name}.") and k.endswith(".step"))
                        for name in ("enc", "dec"))
    assert decoder == 4 and 4 + 4 <= encoder <= 4 + 4 * 30  # a burst of one to thirty encoder steps a batch
    assert json.loads((out / "resume" / "state.json").read_text())["counters"]["baseline"] > 0
