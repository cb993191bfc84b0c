"""Training loop, run directory, checkpoints and resume."""

import errno
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import pytest
import torch

import stvae
from stvae import StvaeError, distributed
from stvae import checkpoint as checkpoint_module
from stvae import train as train_module
from stvae.checkpoint import RunLock, load_checkpoint, previous, read_json
from stvae.cli import main
from stvae.data import DataConfig
from stvae.model import ModelConfig, VideoVAE, make_model
from stvae.runlog import MetricsLog, write_segment
from stvae.train import (
    PRESETS,
    RUN_FILES,
    TrainConfig,
    build_model,
    load_run,
    resolve_precision,
    train,
)

TINY = PRESETS["smoke"]  # 6 steps of 2 videos x 4 frames, eager fp32: every path once


CLI_TRAIN = [sys.executable, "-m", "stvae.cli", "train"]


def tiny_argv(steps: int, checkpoint_every: int, log_every: int) -> list[str]:
    """`stvae train` flags of a tiny, eager, fp32 run (for the tests that kill one)."""
    return (
        f"--steps {steps} --batch-videos 2 --frames 4 --checkpoint-every {checkpoint_every} "
        f"--log-every {log_every} --no-check --precision fp32 --no-compile"
    ).split()


def metrics(run):
    return [json.loads(line) for line in (run / RUN_FILES["metrics"]).read_text().splitlines()]


def _last_step(run) -> int:
    """The step of the last whole line of a run's metrics.jsonl while a process writes it."""
    whole = (run / RUN_FILES["metrics"]).read_text().rsplit("\n", 1)[0].splitlines()
    return json.loads(whole[-1])["step"] if whole else 0


def resumed_from(run, since: float) -> int:
    """The last step whose record was written before ``since`` (when a resume began) and
    kept: the step the resume continued from (0: it started over)."""
    kept = [r["step"] for r in metrics(run) if r["time"] < since]
    return kept[-1] if kept else 0


def test_run_directory(tmp_path):
    run = tmp_path / "run"
    summary = train(TINY, run)
    assert summary["step"] == 6
    for name in RUN_FILES.values():
        assert (run / name).is_file()
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "reconstruction", "kl_static", "kl_temporal", "frames_per_s", "time"} <= set(
        rows[0]
    )
    assert rows[2]["lr"] == pytest.approx(1e-3) and rows[3]["lr"] == pytest.approx(1e-4)
    # the config as given, with what it left open fixed: the data's channels (grey: 1) and
    # where batches were made (auto on a CPU: the host)
    saved = TrainConfig.from_dict(read_json(run / RUN_FILES["config"]))
    assert saved == TINY.replace(**{"model.channels": 1}, data_on="host")
    assert not list(run.glob(".*tmp"))


def test_saved_run_gives_the_same_outputs(tmp_path):
    run = tmp_path / "run"
    train(TINY, run)
    model, config = load_run(run)
    ref = make_model(config.model)
    load_checkpoint(run / RUN_FILES["checkpoint"], ref)
    x = torch.rand(1, 4, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), ref.eval().encode(x))


def test_resume_continues_exactly(tmp_path):
    straight = tmp_path / "straight"
    train(TINY, straight)
    parted = tmp_path / "parted"
    train(TINY.replace(steps=4), parted)
    # resume to the full length; the rows and weights must be those of the straight run
    summary = train(TINY, parted, resume=True)
    a, b = metrics(straight), metrics(parted)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    # the clock carries on from the first process's time, as the step count does
    assert summary["earlier_wall_s"] == b[3]["wall_s"] > 0
    walls = [r["wall_s"] for r in b]
    assert walls == sorted(walls) and summary["wall_s"] >= walls[-1]
    for ra, rb in zip(a, b, strict=True):
        assert ra["loss"] == rb["loss"]
    ma, _ = load_run(straight)
    mb, _ = load_run(parted)
    for (ka, va), (kb, vb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    # segments.jsonl: one record per process, from the step each began at, with what ran it
    segments = [json.loads(ln) for ln in (parted / RUN_FILES["segments"]).read_text().splitlines()]
    assert [r["start_step"] for r in segments] == [0, 4]
    cpu = torch.device("cpu")
    for r in segments:
        assert r["device"] == "cpu" and r["precision"] == resolve_precision(TINY.precision, cpu)
        assert r["machine"] and r["threads"] == torch.get_num_threads() and r["processes"] == 1
        assert r["torch"] == torch.__version__ and r["stvae"] == stvae.__version__


def test_the_segments_log_drops_processes_whose_steps_a_resume_lost(tmp_path):
    """A process that started past the checkpoint a resume begins from trained steps that
    are gone: its record is dropped as its metrics are, and so is a line cut short."""
    path = tmp_path / "segments.jsonl"
    for start in (0, 100, 300):
        write_segment(path, {"start_step": start, "machine": f"m{start}"})
    with open(path, "a") as f:
        f.write('{"start_step": 40')  # killed mid-write
    kept = write_segment(path, {"start_step": 200, "machine": "again"})
    assert [(r["start_step"], r["machine"]) for r in kept] == [
        (0, "m0"),
        (100, "m100"),
        (200, "again"),
    ]
    assert [json.loads(ln) for ln in path.read_text().splitlines()] == kept


def test_resume_drops_records_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(TINY.replace(steps=5), run)  # checkpoints at 2, 4 and 5
    with open(run / RUN_FILES["metrics"], "a") as f:
        f.write('{"step": 9, "loss": 1.0}\n{"step": 10, "lo')  # as if killed mid-write
    train(TINY, run, resume=True)
    assert [r["step"] for r in metrics(run)] == [1, 2, 3, 4, 5, 6]


def test_existing_run_is_not_overwritten(tmp_path):
    run = tmp_path / "run"
    train(TINY, run)
    with pytest.raises(StvaeError, match="already exists"):
        train(TINY, run)
    with pytest.raises(StvaeError, match="nothing to resume"):
        train(TINY, tmp_path / "other", resume=True)
    (tmp_path / "a-file").write_text("kept")
    for resume in (False, True):
        with pytest.raises(StvaeError, match="a-file: is a file, not a run directory"):
            train(TINY, tmp_path / "a-file", resume=resume)
    assert (tmp_path / "a-file").read_text() == "kept"
    # resuming with fewer steps than the checkpoint holds would leave config.json naming
    # fewer steps than its weights took: refused, every file of the run as it was
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(StvaeError, match="reached step 6; --steps 4 would shorten it"):
        train(TINY.replace(steps=4), run, resume=True)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files
    assert train(TINY, run, resume=True)["step"] == 6  # its own steps: nothing to do


def test_bad_data_leaves_no_run_directory(tmp_path):
    run = tmp_path / "run"
    np.save(tmp_path / "short.npy", np.zeros((2, 3, 64, 64), np.uint8))
    with pytest.raises(StvaeError, match="fewer than"):
        train(TINY.replace(**{"data.source": str(tmp_path / "short.npy")}), run)
    assert not run.exists()


def test_trains_on_a_file(tmp_path):
    videos = (np.random.default_rng(0).random((3, 6, 64, 64)) > 0.9).astype(np.float32)
    np.save(tmp_path / "v.npy", videos)
    summary = train(TINY.replace(**{"data.source": str(tmp_path / "v.npy")}), tmp_path / "run")
    assert summary["step"] == 6


def test_non_finite_loss_stops_cleanly(tmp_path, monkeypatch):
    poison_loss(monkeypatch, call=4, factor=float("nan"))  # after the step-2 checkpoint
    run = tmp_path / "run"
    with pytest.raises(
        StvaeError, match="loss became non-finite at step 3 .*; the last good checkpoint"
    ):
        train(TINY, run)
    model, _ = load_run(run)  # the checkpoint is intact and finite
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_non_finite_gradient_from_a_finite_loss_stops_before_the_update(tmp_path, monkeypatch):
    """bf16 overflow in backward, or a bad batch: the loss is finite, a gradient is not."""
    real_build = build_model
    calls = {"n": 0}

    def poison(grad):
        calls["n"] += 1
        return grad * float("inf") if calls["n"] == 3 else grad  # the backward of step 3

    def build(config, device):
        model = real_build(config, device)
        next(model.parameters()).register_hook(poison)
        return model

    monkeypatch.setattr(train_module, "build_model", build)
    run = tmp_path / "run"
    with pytest.raises(
        StvaeError, match="the gradient became non-finite at step 2 .*; the last good check"
    ):
        train(TINY, run)  # steps count from 0: the third backward is step 2
    model, _ = load_run(run)  # the step-2 checkpoint (after 2 steps) is intact and finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not (run / RUN_FILES["weights"]).exists()
    step = load_checkpoint(run / RUN_FILES["checkpoint"], make_model(TINY.model))
    assert step == 2


def poison_loss(monkeypatch, call: int, factor: float) -> dict:
    """Makes the ``call``-th forward's loss non-finite (times ``factor``); returns the
    count of forwards, ``{"n": ...}``."""
    forward = VideoVAE.forward
    calls = {"n": 0}

    def poisoned(self, x, beta=None, eps=None):
        out = forward(self, x, beta, eps)
        calls["n"] += 1
        if calls["n"] == call:
            out["loss"] = out["loss"] * factor
        return out

    monkeypatch.setattr(VideoVAE, "forward", poisoned)
    return calls


def test_a_non_finite_step_is_skipped_on_the_device_and_reported_at_the_next_log(
    tmp_path, monkeypatch
):
    """No host round trip a step: the bad step's update is skipped (Adam's found_inf) and
    the run stops where it next logs or saves, naming the step."""
    calls = poison_loss(monkeypatch, call=2, factor=float("nan"))  # step 1
    config = TINY.replace(steps=8, log_every=4, checkpoint_every=4)
    with pytest.raises(StvaeError, match="loss became non-finite at step 1 .*before any checkp"):
        train(config, tmp_path / "run")
    assert calls["n"] == 4  # it ran on to the log of step 4, then stopped
    assert not (tmp_path / "run").exists()  # nothing to resume: no half-written run


def test_a_run_that_fails_before_its_first_checkpoint_keeps_its_metrics_log(tmp_path, monkeypatch):
    poison_loss(monkeypatch, call=3, factor=float("inf"))  # step 2
    run = tmp_path / "run"
    kept = tmp_path / "run.metrics.jsonl"
    with pytest.raises(StvaeError, match=f"metrics log is kept as {kept}"):
        train(TINY.replace(steps=8, log_every=1, checkpoint_every=100), run)
    assert not run.exists()
    rows = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # why it stopped: the bad loss is there
    assert not math.isfinite(rows[-1]["loss"])


def test_the_loop_skips_a_non_finite_update(tmp_path, monkeypatch):
    """Driven through the loop: steps 1-3 ran after a NaN loss at step 1 (the run stops at
    its log of step 4), and the weights and Adam's moments never took a NaN."""
    models = []
    real_build = train_module.build_model
    monkeypatch.setattr(
        train_module, "build_model", lambda *a: models.append(real_build(*a)) or models[-1]
    )
    poison_loss(monkeypatch, call=2, factor=float("nan"))  # step 1
    optimizers = []
    real_adam = torch.optim.Adam
    monkeypatch.setattr(
        torch.optim, "Adam", lambda *a, **k: optimizers.append(real_adam(*a, **k)) or optimizers[-1]
    )
    with pytest.raises(StvaeError, match="non-finite at step 1"):
        train(TINY.replace(steps=8, log_every=4, checkpoint_every=4), tmp_path / "run")
    (model,), (optimizer,) = models, optimizers
    assert all(torch.isfinite(p).all() for p in model.parameters())
    moments = [v for state in optimizer.state.values() for v in state.values() if v.dim()]
    assert moments and all(torch.isfinite(m).all() for m in moments)


def test_the_skipped_update_leaves_weights_and_optimiser_untouched(monkeypatch):
    model = build_model(TINY, torch.device("cpu"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x = torch.rand(2, 4, 1, 64, 64)
    eps = torch.randn(2, 4, 4)
    args = (x, 1.0, eps, nullcontext(), optimizer, distributed.Dist())

    def nan_loss(x, beta=None, eps=None):
        out = model(x, beta=beta, eps=eps)
        out["loss"] = out["loss"] * float("nan")
        return out

    params = dict(model.named_parameters())
    before = {k: v.detach().clone() for k, v in params.items()}
    _, what = train_module._forward_backward(nan_loss, *args)
    assert int(what) == 1
    optimizer.found_inf = (what > 0).float()
    optimizer.step()
    for k, v in before.items():
        assert torch.equal(params[k], v), k
    assert all(float(s["step"]) == 0 for s in optimizer.state.values())
    _, what = train_module._forward_backward(model, *args)  # a good step does update
    assert int(what) == 0
    optimizer.found_inf = (what > 0).float()
    optimizer.step()
    assert not all(torch.equal(params[k], v) for k, v in before.items())


def test_failure_before_any_checkpoint_removes_the_run(tmp_path, monkeypatch):
    def broken(self, x, beta=None, eps=None):
        raise StvaeError("boom")

    monkeypatch.setattr(VideoVAE, "forward", broken)
    with pytest.raises(StvaeError, match="boom"):
        train(TINY, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_presets():
    paper = PRESETS["paper"]
    assert (paper.steps, paper.batch_videos, paper.data.frames) == (30_000, 64, 16)
    assert paper.lr == 1e-3 and paper.lr_decay == 0.1 and paper.lr_decay_every == 10_000
    assert paper.model.sigma2 == 0.01 and paper.precision == "auto"
    assert paper.lr_at(9_999) == 1e-3 and paper.lr_at(10_000) == pytest.approx(1e-4)
    cpu = PRESETS["cpu"]
    assert cpu.model == paper.model and cpu.data == paper.data
    assert paper.compile and cpu.compile  # the fast path is the default one (issue 5)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"lr": -1.0}, "lr must be"),
        ({"device": "tpu"}, "device must be"),
        ({"precision": "fp8"}, "precision must be"),
        ({"data.frames": 0}, "frames must be"),
        ({"data.source": "video.mp4"}, "--data must be"),
        ({"cuda_graphs": True}, "cuda-graphs needs compile"),
    ],
)
def test_bad_config_values(change, message):
    with pytest.raises(StvaeError, match=message):
        TINY.replace(**change)


def test_config_from_another_version_is_refused(tmp_path):
    d = TINY.to_dict()
    d["model"]["prior_family"] = "laplace"
    d["version"] = "9.9"
    with pytest.raises(StvaeError, match="written by stvae 9.9"):
        TrainConfig.from_dict(d)
    with pytest.raises(StvaeError, match="not a TrainConfig"):
        TrainConfig.from_dict({"class": "Other"})


def test_cuda_graphs_compile_with_reduce_overhead_only_on_cuda(tmp_path, monkeypatch, capsys):
    modes = []

    def compiled(model, mode=None):
        modes.append(mode)
        return model  # eager: the mode is what is under test

    monkeypatch.setattr(train_module, "_compiled", compiled)
    train(TINY.replace(compile=True, cuda_graphs=True, steps=1), tmp_path / "cpu")
    assert modes == [None]
    assert "cuda-graphs needs CUDA; compiling without them on cpu" in capsys.readouterr().err
    if torch.cuda.is_available():
        config = TINY.replace(compile=True, cuda_graphs=True, steps=1, device="cuda")
        train(config, tmp_path / "cuda")
        assert modes == [None, "reduce-overhead"]


@pytest.mark.slow
def test_compiled_step_equals_eager_step(tmp_path, capsys):
    # The presets compile by default, so the compiled step must be the same step: same
    # loss terms and gradients as eager on one batch (fp32), and train() must use it.
    model = make_model(ModelConfig(features=4)).train()
    x = torch.rand(2, 4, 1, 64, 64)
    eps = torch.randn(2, 4, 4)
    results = []
    for forward in (model, torch.compile(model)):
        model.zero_grad()
        terms = forward(x, eps=eps)
        terms["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        results.append(({k: v.item() for k, v in terms.items()}, grads))
    (te, ge), (tc, gc) = results
    assert tc == pytest.approx(te, rel=1e-4)
    assert (gc - ge).norm() <= 1e-3 * ge.norm()
    train(TINY, tmp_path / "eager")
    assert "compiling" not in capsys.readouterr().err
    train(TINY.replace(compile=True), tmp_path / "compiled")
    err = capsys.readouterr().err
    assert "training eagerly" not in err
    assert err.count("stvae: compiling the model") == 1  # a silent minute is explained
    first_e, first_c = metrics(tmp_path / "eager")[0], metrics(tmp_path / "compiled")[0]
    for key in ("loss", "reconstruction", "kl_static", "kl_temporal"):
        assert first_c[key] == pytest.approx(first_e[key], rel=1e-4), key


def test_compile_failure_falls_back_to_eager(tmp_path, monkeypatch, capsys):
    from torch._inductor.exc import CppCompileError

    def broken_compile(model, **options):
        def run(*args, **kwargs):
            raise CppCompileError(["cc"], "no C compiler here")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    train(TINY.replace(compile=True), tmp_path / "compiled")
    assert "torch.compile failed (CppCompileError); training eagerly" in capsys.readouterr().err
    train(TINY, tmp_path / "eager")
    assert [r["loss"] for r in metrics(tmp_path / "compiled")] == [
        r["loss"] for r in metrics(tmp_path / "eager")
    ]


DEFAULT_PATH = "compiled, precision auto, fused Adam, data thread"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["eager fp32", pytest.param(DEFAULT_PATH, marks=pytest.mark.slow)])
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, path):
    cmd, argv = CLI_TRAIN, tiny_argv(steps=40, checkpoint_every=3, log_every=1)
    if path == DEFAULT_PATH:  # the presets' path: every flag left at its default
        argv = [a for a in argv if a not in ("--precision", "fp32", "--no-compile")]
    subprocess.run(
        [*cmd, *argv, "--out", str(tmp_path / "straight")], check=True, capture_output=True
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, *argv, "--out", str(killed)], stdout=subprocess.DEVNULL)
    rng = np.random.default_rng()
    deadline = time.time() + 300  # compiling first, on the default path
    while not (killed / RUN_FILES["checkpoint"]).exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the middle, maybe during a write
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # it was killed, not finished
    assert not (killed / RUN_FILES["weights"]).exists()
    since = time.time()
    done = subprocess.run(
        [*cmd, "--resume", "--out", str(killed), "--no-check"], check=True, capture_output=True
    )
    start = resumed_from(killed, since)
    assert start >= 3 and start % 3 == 0  # from a checkpoint, not from the beginning
    assert f"resumed at step {start}" in done.stdout.decode()
    a, b = metrics(tmp_path / "straight"), metrics(killed)
    assert [r["step"] for r in b] == list(range(1, 41))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    ma, _ = load_run(tmp_path / "straight")
    mb, _ = load_run(killed)
    for va, vb in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb)


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    straight = tmp_path / "straight"
    train(TINY, straight)
    run = tmp_path / "run"
    train(TINY.replace(steps=4), run)  # checkpoints at 2 and 4: step 2 is kept as previous
    ckpt = run / RUN_FILES["checkpoint"]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    train(TINY, run, resume=True)
    err = capsys.readouterr().err
    assert "checkpoint.safetensors: corrupt or truncated" in err
    assert "resuming from checkpoint.prev.safetensors" in err
    assert [r["loss"] for r in metrics(run)] == [r["loss"] for r in metrics(straight)]


def test_a_kill_between_the_two_renames_resumes_from_the_previous_checkpoint(tmp_path, capsys):
    straight = tmp_path / "straight"
    train(TINY, straight)
    run = tmp_path / "run"
    train(TINY.replace(steps=4), run)
    ckpt = run / RUN_FILES["checkpoint"]
    ckpt.replace(previous(ckpt))  # the newest moved aside, the next not yet in place
    (run / RUN_FILES["weights"]).unlink()
    train(TINY, run, resume=True)
    assert "resuming from checkpoint.prev.safetensors" in capsys.readouterr().err
    assert [r["loss"] for r in metrics(run)] == [r["loss"] for r in metrics(straight)]


def test_one_writer_per_run_directory(tmp_path):
    run = tmp_path / "run"
    train(TINY.replace(steps=2), run)
    assert not (run / RunLock.NAME).exists()  # released at the end
    with RunLock(run), pytest.raises(StvaeError, match=f"in use by process {os.getpid()} on "):
        train(TINY, run, resume=True)  # as a second process resuming a training run would be
    assert (run / RUN_FILES["config"]).exists()  # refused without touching the run
    # a lock file left by a process that died, by another host's process, or left empty
    # (a crash between creating it and writing it) holds no OS lock: it is taken
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for left in (
        json.dumps({"pid": dead.pid, "host": socket.gethostname()}),
        json.dumps({"pid": 1, "host": "another-host"}),
        "",
    ):
        (run / RunLock.NAME).write_text(left)
        steps = metrics(run)[-1]["step"] + 1
        train(TINY.replace(steps=steps), run, resume=True)
        assert metrics(run)[-1]["step"] == steps and not (run / RunLock.NAME).exists()


def test_a_start_killed_before_config_json_does_not_strand_its_directory(tmp_path, monkeypatch):
    """A kill between taking the lock and writing config.json leaves the lock file and
    perhaps a temporary: the folder holds no run, so a new start takes it (and clears what
    was left) and --resume says how to start it instead of that it is not empty."""
    run = tmp_path / "run"
    run.mkdir()
    (run / RunLock.NAME).write_text(json.dumps({"pid": 1, "host": "x", "since": "then"}))
    (run / ".config.json.k3j2.tmp").write_text("{")
    with pytest.raises(StvaeError, match="nothing to resume .*train without --resume"):
        train(TINY, run, resume=True)
    train(TINY.replace(steps=2), run)
    assert metrics(run)[-1]["step"] == 2
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    # such a folder, taken by a start that then fails before its first checkpoint, is
    # removed as a folder that start had made would be: it holds no run of anyone's
    (run.parent / "again").mkdir()
    (run.parent / "again" / RunLock.NAME).write_text("")

    def fails(*args):
        raise RuntimeError("the first step failed")

    monkeypatch.setattr(train_module, "_train", fails)
    with pytest.raises(RuntimeError, match="the first step failed"):
        train(TINY, run.parent / "again")
    assert not (run.parent / "again").exists()


def test_out_is_checked_again_under_the_lock(tmp_path, monkeypatch):
    """Another process may train into an empty --out between the first check and the lock:
    the second start is refused under the lock and leaves the other's run as it was."""
    run = tmp_path / "run"
    real = train_module.make_folder

    def another_process_trains_first(path):
        real(path)
        (path / RUN_FILES["config"]).write_text("{}")  # as the other run's, already there

    monkeypatch.setattr(train_module, "make_folder", another_process_trains_first)
    with pytest.raises(StvaeError, match="already exists and is not empty"):
        train(TINY, run)
    assert sorted(p.name for p in run.iterdir()) == [RUN_FILES["config"]]


def test_the_next_writer_clears_temporaries_that_kills_left(tmp_path):
    run = tmp_path / "run"
    train(TINY.replace(steps=2, snapshot_every=1), run)
    left = [
        run / ".checkpoint.safetensors.a1b2c3.tmp",  # atomic_write's
        run / ".tmpAb12Cd",  # safetensors' own, beside it
        run / "snapshots" / ".step-000003.safetensors.x9y8.tmp",
    ]
    for p in left:
        p.write_bytes(b"\0" * 1024)
    (run / "notes.tmp").write_text("mine")  # not a temporary of ours: kept
    train(TINY.replace(steps=3, snapshot_every=1), run, resume=True)
    assert [p for p in left if p.exists()] == []
    assert (run / "notes.tmp").exists()


def test_the_refusal_says_how_to_clear_a_lock_on_a_file_system_without_locks(tmp_path):
    with RunLock(tmp_path), pytest.raises(StvaeError) as refused:
        RunLock(tmp_path).acquire()
    assert f"delete {tmp_path / RunLock.NAME}" in str(refused.value)


@pytest.mark.slow
def test_of_two_processes_resuming_a_killed_run_together_exactly_one_trains(tmp_path):
    """The refused one ends while the other is still training (the run is far longer than
    the test), so the outcome does not depend on how fast this machine trains."""
    run = tmp_path / "run"
    argv = tiny_argv(steps=100_000, checkpoint_every=2, log_every=1)
    owner = subprocess.Popen([*CLI_TRAIN, *argv, "--out", str(run)], stderr=subprocess.DEVNULL)
    while not (run / RUN_FILES["checkpoint"]).exists():
        time.sleep(0.1)
    owner.kill()  # -9: its lock file stays behind, its OS lock does not
    owner.wait()
    assert (run / RunLock.NAME).exists()
    killed_at = metrics(run)[-1]["step"]
    both = [
        subprocess.Popen(
            [*CLI_TRAIN, *argv, "--resume", "--out", str(run)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.time() + 120
        while all(p.poll() is None for p in both) and time.time() < deadline:
            time.sleep(0.1)
        ended = [p for p in both if p.poll() is not None]
        assert len(ended) == 1, f"{len(ended)} of the two ended before the deadline"
        refused, (winner,) = ended[0], [p for p in both if p is not ended[0]]
        assert refused.returncode == 2
        err = refused.communicate()[1]
        assert "in use by" in err and "Traceback" not in err
        while winner.poll() is None and _last_step(run) <= killed_at + 2:
            time.sleep(0.1)  # the other trains on, past where the killed owner stopped
        assert winner.poll() is None
        winner.send_signal(signal.SIGTERM)
        winner.communicate(timeout=120)
        assert winner.returncode == 128 + signal.SIGTERM
    finally:
        for p in both:
            p.kill()
    steps = [r["step"] for r in metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] > killed_at + 2  # one writer, no repeats


def test_a_full_disk_stops_cleanly_and_resume_continues_once_there_is_space(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(TINY, straight)
    real_save = checkpoint_module.save_file
    writes = {"n": 0}

    def full_disk(tensors, path, metadata=None):
        writes["n"] += 1
        if writes["n"] == 2:  # the step-4 checkpoint
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", full_disk)
    run = tmp_path / "run"
    with pytest.raises(StvaeError, match=r"checkpoint.safetensors: could not be written \(No sp"):
        train(TINY, run)
    assert not list(run.glob(".*.tmp"))  # no half-written file left behind
    # the new file is written before the old one moves: the step-2 checkpoint is in place
    assert load_checkpoint(run / RUN_FILES["checkpoint"], make_model(TINY.model)) == 2
    assert not previous(run / RUN_FILES["checkpoint"]).exists()
    monkeypatch.setattr(checkpoint_module, "save_file", real_save)  # space again
    train(TINY, run, resume=True)
    assert [r["loss"] for r in metrics(run)] == [r["loss"] for r in metrics(straight)]
    # the metrics log too: one clear error, the records so far kept
    log = MetricsLog(tmp_path / "m.jsonl", 10, 0)
    log.file = _FullFile(log.file)
    with pytest.raises(StvaeError, match=r"m.jsonl: could not be written \(No space left"):
        log.record({"step": 1, "loss": 1.0, "reconstruction": 1.0, "kl": 0.0})


@pytest.mark.slow
def test_a_file_size_limit_fails_the_real_safetensors_write_in_one_line(tmp_path):
    # safetensors reports a failed write as its own error type with the OS message inside
    run = tmp_path / "run"
    argv = tiny_argv(steps=2, checkpoint_every=2, log_every=1)
    assert main(["train", *argv, "--out", str(run)]) == 0  # the same command, in this process
    ckpt = run / RUN_FILES["checkpoint"]
    size = ckpt.stat().st_size
    limited = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size // 2}, {size // 2})); "
        "from stvae.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = tiny_argv(steps=4, checkpoint_every=2, log_every=1)
    cmd = [sys.executable, "-c", limited, "train", *argv, "--resume", "--out", str(run)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "checkpoint.safetensors: could not be written (" in done.stderr
    assert "File too large" in done.stderr and "it is unchanged" in done.stderr
    assert ckpt.exists() and not previous(ckpt).exists()  # nothing rotated before the write
    assert load_checkpoint(ckpt, make_model(TINY.model)) == 2  # the last good one, in place
    assert not list(run.glob(".*.tmp"))


class _FullFile:
    """A file on a full disk: every write fails as the OS says it."""

    def __init__(self, f):
        self.name, self._f = f.name, f

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        pass


def test_no_good_checkpoint_says_so(tmp_path):
    run = tmp_path / "run"
    train(TINY.replace(steps=2, checkpoint_every=5), run)  # one checkpoint, no previous
    ckpt = run / RUN_FILES["checkpoint"]
    ckpt.write_bytes(b"junk")
    with pytest.raises(StvaeError, match="no previous checkpoint to fall back to"):
        train(TINY, run, resume=True)


@pytest.mark.slow
def test_sigterm_stops_with_a_checkpoint_of_that_step_and_resume_is_exact(tmp_path):
    cmd, argv = CLI_TRAIN, tiny_argv(steps=40, checkpoint_every=1000, log_every=7)
    run = tmp_path / "stopped"
    proc = subprocess.Popen(
        [*cmd, *argv, "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    log = run / RUN_FILES["metrics"]
    while not (log.exists() and log.read_text()) and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGTERM)  # after step 7: off the checkpoint grid
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM at step" in lines[0], lines
    step = int(lines[0].split("at step ")[1].split()[0])
    assert 7 <= step < 40
    assert not (run / RUN_FILES["weights"]).exists()  # not finished: no final weights
    rows = metrics(run)
    assert rows[-1]["step"] == step and not rows[-1]["final"]  # the stop is logged
    assert (
        load_checkpoint(run / RUN_FILES["checkpoint"], make_model(ModelConfig(features=4))) == step
    )
    since = time.time()
    subprocess.run([*cmd, "--resume", "--out", str(run), "--no-check"], check=True)
    assert resumed_from(run, since) == step  # continued from the stop, not restarted
    straight = tmp_path / "straight"
    train(TrainConfig.from_dict(read_json(run / RUN_FILES["config"])), straight)
    assert metrics(run)[-1]["loss"] == metrics(straight)[-1]["loss"]
    ma, _ = load_run(straight)
    mb, _ = load_run(run)
    for va, vb in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb)


@pytest.mark.slow
def test_worker_processes_draw_the_same_batches_as_the_thread(tmp_path):
    from stvae.data import open_source
    from stvae.prefetch import Prefetch, make_batch

    source = open_source(DataConfig(frames=4))
    with Prefetch(source, 7, range(1, 3), 5, 9, workers=2) as ahead:
        got = [ahead.get(s) for s in range(5, 9)]
    for s, batch in zip(range(5, 9), got, strict=True):
        assert np.array_equal(batch, make_batch(source, 7, s, range(1, 3)))
    assert not np.array_equal(got[0], got[1])
    # and a run drawn by workers trains exactly like one drawn by the thread
    train(TINY.replace(steps=3, data_workers=2), tmp_path / "workers")
    train(TINY.replace(steps=3, data_workers=0), tmp_path / "thread")
    assert [r["loss"] for r in metrics(tmp_path / "workers")] == [
        r["loss"] for r in metrics(tmp_path / "thread")
    ]


def test_data_workers_auto_uses_processes_only_for_generated_data_on_cuda():
    from stvae.train import data_workers

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert data_workers(TINY, cpu) == 0
    assert data_workers(TINY, cuda) >= 1
    assert data_workers(TINY.replace(data_workers=3), cpu) == 3
    assert data_workers(TINY.replace(**{"data.source": "clips.npy"}), cuda) == 0
    with pytest.raises(StvaeError, match="data-workers must be -1"):
        TINY.replace(data_workers=-2)


def test_snapshots_keep_the_weights_every_n_steps_and_at_the_end(tmp_path):
    run = tmp_path / "run"
    train(TINY.replace(steps=7, snapshot_every=3), run)
    snaps = sorted(p.name for p in (run / train_module.SNAPSHOTS).iterdir())
    assert snaps == [
        "step-000003.safetensors",
        "step-000006.safetensors",
        "step-000007.safetensors",
    ]
    final = checkpoint_module._load(run / RUN_FILES["weights"])[0]
    last = checkpoint_module._load(train_module.snapshot_path(run, 7))[0]
    earlier = checkpoint_module._load(train_module.snapshot_path(run, 3))[0]
    assert final.keys() == last.keys()
    for k in final:
        torch.testing.assert_close(last[k], final[k], rtol=0, atol=0)
    assert any(not torch.equal(earlier[k], final[k]) for k in final)  # weights of step 3


def test_no_snapshots_by_default(tmp_path):
    run = tmp_path / "run"
    train(TINY, run)
    assert not (run / train_module.SNAPSHOTS).exists()


def _compiled_that_fails_at(call: int, error: Exception):
    """A stand-in for torch.compile whose model runs eagerly until its ``call``-th call."""

    def compile_(model, **options):
        calls = []

        def run(*args, **kwargs):
            calls.append(1)
            if len(calls) == call:
                raise error
            return model(*args, **kwargs)

        return run

    return compile_


@pytest.mark.parametrize("call", [1, 3])  # the first compiled step, and a later one
def test_an_error_of_a_compiled_step_not_the_compilers_is_not_taken_for_a_compile_failure(
    tmp_path, monkeypatch, capsys, call
):
    oom = RuntimeError("CPU out of memory: tried to allocate")
    monkeypatch.setattr(torch, "compile", _compiled_that_fails_at(call, oom))
    with pytest.raises(RuntimeError, match="out of memory"):
        train(TINY.replace(compile=True), tmp_path / "oom")
    assert "training eagerly" not in capsys.readouterr().err


def test_the_compilers_own_error_at_a_later_step_falls_back_to_eager(tmp_path, monkeypatch, capsys):
    from torch._dynamo.exc import RecompileError

    monkeypatch.setattr(torch, "compile", _compiled_that_fails_at(3, RecompileError("again")))
    summary = train(TINY.replace(compile=True), tmp_path / "recompiled")
    assert "torch.compile failed (RecompileError); training eagerly" in capsys.readouterr().err
    assert summary["step"] == TINY.steps and not summary["compiled"]


@pytest.mark.parametrize("capability, want", [((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_on_cuda_is_bf16_only_where_the_gpu_has_it(monkeypatch, capability, want):
    from stvae.train import resolve_precision

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", torch.device("cuda")) == want
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
