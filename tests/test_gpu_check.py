"""bench/gpu_grid.sh, the check a lent GPU runs first (issue 44), tried here as its dry run
(DRY=1: the CPU, the `smoke` preset, every stage shrunk): its stages leave their files in
OUT as each ends, and it stops at once, in one line, where the check cannot run."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_grid.sh"


def _check(out: Path, runs: Path, **env) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "RUNS": str(runs),
        "OMP_NUM_THREADS": "1",
        "DRY": "1",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_missing_package_stops_the_check_at_once_in_one_line(tmp_path):
    fake = tmp_path / "site" / "mlxtend"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not on this machine')\n")
    done = _check(tmp_path / "out", tmp_path / "runs", PYTHONPATH=str(tmp_path / "site"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("gpu_grid: cannot import mlxtend: ImportError: not on this machine")
    assert "make gpu-wheels" in line
    assert not (tmp_path / "out" / "env.txt").exists()  # no stage ran


@pytest.mark.slow
def test_without_cuda_the_gpu_check_refuses_instead_of_training_on_the_cpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = _check(tmp_path / "out", tmp_path / "runs", DRY="0")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("gpu_grid: torch ") and "sees no CUDA device" in line


@pytest.mark.slow
def test_each_stage_leaves_its_files_in_out_as_it_ends(tmp_path):
    """Only the tests stage: its files are there, and nothing of the later stages."""
    out = tmp_path / "out"
    done = _check(out, tmp_path / "runs", STAGES="tests")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "tests.txt"]
    assert (out / "tests.txt").read_text().rstrip().endswith("exit 0")


@pytest.mark.slow
def test_the_dry_run_goes_through_every_stage(tmp_path):
    out = tmp_path / "out"
    done = _check(out, tmp_path / "runs")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    stages = ["env.txt", "tests.txt", "bench.txt", "bench-logs.tar.gz", "reproduce.log"]
    stages += ["runs.tar.gz"]
    log = (out / "reproduce.log").read_text()
    if "report/bouncing-mnist-smoke.md" in log:  # a run was scored inside the budget
        stages.append("bouncing-mnist-smoke.md")
    assert names == sorted(stages)
    assert len(names) <= 8  # what the device tool brings back
    bench = (out / "bench.txt").read_text()
    assert "naive eager NCHW fp32" in bench and "--no-compile" in bench
    assert "2 stvae train processes at once:" in bench and "frames/s in all" in bench
    with tarfile.open(out / "bench-logs.tar.gz") as t:
        logs = [m.name for m in t.getmembers() if m.name.endswith(".log")]
    assert len(logs) == 3  # one alone, then two at once: their output kept
    assert "first record at step" in log
    with tarfile.open(out / "runs.tar.gz") as t:
        packed = {m.name for m in t.getmembers()}
    for run in ("hierarchical-f4-beta4-seed0", "slow-f4-beta4-seed0"):
        for name in ("config.json", "metrics.jsonl", "eval.json", "model-bf16.safetensors"):
            assert f"runs/{run}/{name}" in packed, (run, name)
