"""Data-parallel training with torchrun equals one process with the same global batch."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from stvae.checkpoint import load_weights
from stvae.train import load_run, snapshot_path
from test_train import metrics

ARGS = (
    "--steps 1 --batch-videos 4 --frames 4 --precision fp32 --log-every 1 --no-check --no-compile"
).split()
LR = 1e-3  # the cpu preset's


def _run(cmd, threads=1, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _torchrun(*argv):
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "stvae.cli",
        "train",
        *argv,
    ]


SEVERAL = [*ARGS, "--steps", "6", "--snapshot-every", "1"]  # six steps of Adam (the later
# --steps wins), the weights kept after each


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    """Six steps three ways, run once for the tests below: one process with 1 thread
    (``one``), the same with 2 threads (``threads``) and two processes under torchrun
    (``two``)."""
    root = tmp_path_factory.mktemp("ddp")
    one = [sys.executable, "-m", "stvae.cli", "train", *SEVERAL]
    _run([*one, "--out", str(root / "one")])
    _run([*one, "--out", str(root / "threads")], threads=2)
    _run(_torchrun(*SEVERAL, "--out", str(root / "two")))
    return root


def _after_step_1(run):
    model, _ = load_run(run)
    load_weights(snapshot_path(run, 1), model)
    return model


@pytest.mark.slow
def test_two_cpu_processes_equal_one(several, tmp_path):
    # The loss of the first step sees the same data, noise and batch-norm statistics.
    ra, rb = metrics(several / "one")[0], metrics(several / "two")[0]
    for key in ("loss", "reconstruction", "kl_static", "kl_temporal"):
        assert rb[key] == pytest.approx(ra[key], rel=2e-4), key
    # The update is the same: Adam's first step moves every weight by lr * g / |g|, so
    # weights agree except where a gradient is so close to 0 that float rounding flips
    # its sign (a move of 2 lr); those must be rare. (One process run with 1 and with 2
    # threads differs in about 1% of the weights this way; data, noise or batch-norm
    # statistics that differed would move nearly all of them.)
    ma, mb = _after_step_1(several / "one"), _after_step_1(several / "two")
    pa, pb = dict(ma.named_parameters()), dict(mb.named_parameters())
    delta = torch.cat([(pa[k] - pb[k]).abs().flatten() for k in pa])
    assert delta.max() <= 2 * LR + 1e-6
    assert (delta > 1e-5).float().mean() < 0.03
    ba, bb = dict(ma.named_buffers()), dict(mb.named_buffers())
    for k in ba:
        torch.testing.assert_close(bb[k], ba[k], rtol=1e-3, atol=1e-4, msg=k)
    # resume under torchrun continues from the checkpoint rank 0 wrote (on a copy: the
    # next test reads the six steps as they are)
    run = shutil.copytree(several / "two", tmp_path / "two")
    before = metrics(run)
    _run(_torchrun("--resume", "--steps", "8", "--out", str(run), "--no-check"))
    rows = metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[:6] == before and all(r["loss"] < rows[0]["loss"] for r in rows[1:])


@pytest.mark.slow
def test_several_steps_of_two_processes_stay_within_float_rounding_of_one(several):
    """Over several Adam steps the two runs drift apart by float rounding (reductions sum
    in another order), amplified by Adam, whose early updates are about lr * sign(g), so a
    gradient near 0 whose sign rounding flips moves its weight 2 lr the other way. The
    tolerance is that of the same single-process run with 2 threads instead of 1, which
    only reorders sums: data, noise or batch-norm statistics that differed would move the
    loss by far more (percents, not tenths of a permille)."""
    a, t, b = (metrics(several / n) for n in ("one", "threads", "two"))
    assert [r["step"] for r in b] == list(range(1, 7))
    drift = [abs(rt["loss"] - ra["loss"]) / ra["loss"] for ra, rt in zip(a, t, strict=True)]
    ddp = [abs(rb["loss"] - ra["loss"]) / ra["loss"] for ra, rb in zip(a, b, strict=True)]
    assert ddp[0] < 1e-5  # one step: the same data, noise and statistics
    bound = max(5 * max(drift), 2e-3)  # measured here: threads 1.2e-3, DDP 2.3e-3 at step 6
    assert max(ddp) <= bound, (ddp, drift)


@pytest.mark.slow
def test_a_killed_rank_ends_the_other_with_one_line(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(29500 + os.getpid() % 400),
        "WORLD_SIZE": "2",
    }
    argv = [*ARGS, "--steps", "3000"]
    cmd = [sys.executable, "-m", "stvae.cli", "train", *argv, "--out", str(tmp_path / "run")]
    ranks = [
        subprocess.Popen(
            cmd,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    deadline = time.time() + 120
    while not (tmp_path / "run" / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # training, in some collective or between two
    ranks[0].kill()
    try:
        _, err = ranks[1].communicate(timeout=120)  # no hang: well within TIMEOUT
    finally:
        ranks[1].kill()
    assert ranks[1].returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "rank 1: lost contact with another process of the run" in lines[0]


@pytest.mark.slow
def test_a_time_budget_is_chosen_at_the_same_step_on_every_rank(tmp_path):
    # each rank times itself; they must still choose together (or one would wait forever)
    _run(_torchrun(*ARGS, "--steps", "400", "--time-budget", "12s", "--out", str(tmp_path / "b")))
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    rows = metrics(tmp_path / "b")
    assert config["time_budget"] is None and rows[-1]["step"] == config["steps"] >= 23


def test_a_cuda_rank_binds_its_device_before_it_joins_the_group(monkeypatch):
    """NCCL needs each rank on its own device before the group forms, and async error
    handling so that a lost peer fails the collective rather than hanging it."""
    from stvae import distributed

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", raising=False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(("device", i)))
    dist = distributed.dist

    def init(backend, timeout):
        calls.append(("group", backend, os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING")))

    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", init)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    d = distributed.setup(torch.device("cuda"))
    assert (d.rank, d.world) == (1, 2)
    assert calls == [("device", 1), ("group", "nccl", "1")]


def test_sync_batch_norm_and_grey_frames_copy_nothing_from_the_host(monkeypatch):
    """A tensor built from Python values is a host-to-device copy (a sync on CUDA) in every
    layer of every step: the synchronised batch norm and the colour-to-grey conversion make
    none, and still compute batch norm and BT.601 grey."""
    import numpy as np

    from stvae import distributed
    from stvae.layout import LUMA, to_tensor

    monkeypatch.setattr(distributed.dist, "all_reduce", lambda t, **kw: t)  # one rank
    x = torch.randn(6, 3, 5, 5)
    w, b = torch.rand(3) + 0.5, torch.randn(3)
    colour = np.random.default_rng(0).integers(0, 256, (2, 3, 64, 64, 3), dtype=np.uint8)

    def no_host_tensors(*args, **kwargs):
        raise AssertionError("torch.tensor called in the step")

    with monkeypatch.context() as m:
        m.setattr(torch, "tensor", no_host_tensors)
        y, mean, var = distributed._SyncBN.apply(x, w, b, 1e-5)
        grey = to_tensor(colour, channels=1)
    want = torch.nn.functional.batch_norm(x, None, None, w, b, True, 0.0, 1e-5)
    torch.testing.assert_close(y, want)
    torch.testing.assert_close(mean, x.mean((0, 2, 3)))
    plain = torch.from_numpy(colour).float() / 255 @ torch.tensor(LUMA)
    torch.testing.assert_close(grey[:, :, 0], plain)
