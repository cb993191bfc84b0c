"""Data-parallel training with torchrun equals one process with the same global batch."""

import os
import subprocess
import sys

import pytest
import torch

from stvae.train import load_run
from test_train import metrics

ARGS = (
    "--steps 1 --batch-videos 4 --frames 4 --precision fp32 --log-every 1 --no-check --no-compile"
).split()
LR = 1e-3  # the cpu preset's


def _run(cmd, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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


@pytest.mark.slow
def test_two_cpu_processes_equal_one(tmp_path):
    _run([sys.executable, "-m", "stvae.cli", "train", *ARGS, "--out", str(tmp_path / "one")])
    _run(_torchrun(*ARGS, "--out", str(tmp_path / "two")))
    # The loss of the first step sees the same data, noise and batch-norm statistics.
    (ra,), (rb,) = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    for key in ("loss", "reconstruction", "kl_static", "kl_temporal"):
        assert rb[key] == pytest.approx(ra[key], rel=2e-4), key
    # The update is the same: Adam's first step moves every weight by lr * g / |g|, so
    # weights agree except where a gradient is so close to 0 that float rounding flips
    # its sign (a move of 2 lr); those must be rare. (One process run with 1 and with 2
    # threads differs in about 1% of the weights this way; data, noise or batch-norm
    # statistics that differed would move nearly all of them.)
    ma, _ = load_run(tmp_path / "one")
    mb, _ = load_run(tmp_path / "two")
    pa, pb = dict(ma.named_parameters()), dict(mb.named_parameters())
    delta = torch.cat([(pa[k] - pb[k]).abs().flatten() for k in pa])
    assert delta.max() <= 2 * LR + 1e-6
    assert (delta > 1e-5).float().mean() < 0.03
    ba, bb = dict(ma.named_buffers()), dict(mb.named_buffers())
    for k in ba:
        torch.testing.assert_close(bb[k], ba[k], rtol=1e-3, atol=1e-4, msg=k)
    # resume under torchrun continues from the checkpoint rank 0 wrote
    _run(_torchrun("--resume", "--steps", "3", "--out", str(tmp_path / "two"), "--no-check"))
    rows = metrics(tmp_path / "two")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0] == rb and all(r["loss"] < rows[0]["loss"] for r in rows[1:])
