"""Training: the config, the presets, the loop, the run directory and resume (section 4.2).

A run directory holds

* ``config.json``: the :class:`TrainConfig` (with class name and package version);
* ``metrics.jsonl``: one JSON object per logged step (loss terms, lr, beta, frames/s);
* ``segments.jsonl``: one JSON object per training process (its first step, the machine,
  the precision it resolved to, threads, torch and stvae versions): which hardware
  trained which steps of a run resumed across machines;
* ``checkpoint.safetensors``: the full training state, rewritten atomically;
* ``model.safetensors``: the final weights (config in its metadata);
* ``snapshots/step-NNNNNN.safetensors``: the weights every ``snapshot_every`` steps and at
  the end (with ``--snapshot-every``; scored into a learning curve by :mod:`stvae.curve`);
* ``tb/``: TensorBoard events, when tensorboard is installed.

SIGTERM (a scheduler's time limit, ``timeout``, ``kill``) ends a one-process run cleanly:
the step in flight finishes, a checkpoint of it is written, and ``--resume`` continues
from exactly there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

from stvae import __version__, budget, distributed
from stvae.checkpoint import (
    RunLock,
    clear_temporaries,
    load_checkpoint,
    make_folder,
    previous,
    read_json,
    save_checkpoint,
    save_weights,
    write_json,
)
from stvae.config import AUTO_FIELDS, PRESETS, RESUMABLE, RUN_FILES, TrainConfig
from stvae.data import open_source
from stvae.data.on_device import DeviceFeed
from stvae.data.registry import DATASETS
from stvae.errors import StvaeError
from stvae.hostmem import kept_freed_memory
from stvae.model import kind_of, make_model
from stvae.nets import to_channels_last
from stvae.prefetch import HostFeed, Prefetch
from stvae.rundir import SNAPSHOTS, load_run, resolve_device, snapshot_path
from stvae.runlog import MetricsLog, cpu_name, truncate_metrics, write_segment

__all__ = [
    "TrainConfig",
    "PRESETS",
    "train",
    "resume_config",
    "load_run",
    "resolve_device",
    "resolve_precision",
    "resolve_data_on",
    "snapshot_path",
    "RUN_FILES",
]


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 wherever the hardware has it (a CUDA GPU of compute capability 8.0
    or above, or a CPU with native bf16; see docs/results/cpu-preset-search.md), else fp32;
    fp32 and bf16 stay as they are."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        fast = torch.cuda.get_device_capability(device)[0] >= 8  # Ampere on: bf16 tensor cores
    else:
        fast = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bf16" if fast else "fp32"


def _autocast(config: TrainConfig, device: torch.device):
    if resolve_precision(config.precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _compiled(model: nn.Module, mode: str | None = None):
    """``torch.compile(model, mode=mode)``, or ``model`` where compiling is unavailable.

    A fresh dynamo cache per run: several runs in one process (a reproduce grid) would
    otherwise pile up recompilations of VideoVAE.forward until dynamo's recompile limit
    silently turns them eager. Compiled kernels stay in inductor's on-disk cache."""
    try:
        torch.compiler.reset()
        return torch.compile(model, mode=mode)
    except Exception as e:  # noqa: BLE001 - e.g. no C compiler, unsupported platform
        print(
            f"stvae: torch.compile unavailable ({type(e).__name__}); training eagerly",
            file=sys.stderr,
        )
        return model


def data_workers(config: TrainConfig, device: torch.device) -> int:
    """How many processes draw batches (0: one thread). Auto: one thread keeps a CPU's
    training fed; a GPU needs several to generate Bouncing MNIST or chairs fast enough
    (docs/results/performance.md). A file's clips are cheap to cut: a thread."""
    if config.data_workers >= 0:
        return config.data_workers
    if device.type == "cuda" and config.data.generated:
        return max(1, min(8, (os.cpu_count() or 2) - 2))
    return 0


def resolve_data_on(config: TrainConfig, device: torch.device) -> str:
    """Where training batches are made (``TrainConfig.data_on``): "device" draws generated
    Bouncing MNIST or chairs on the training device (:mod:`stvae.data.on_device`), "host"
    in numpy ahead of the loop; "auto" is "device" on CUDA where it can be, else "host" (a
    CPU's spare core keeps the host path ahead of its model, and its stream stays as it
    was)."""
    spec = config.data.spec
    can = spec is not None and spec.on_device is not None
    if config.data_on == "device" and not can:
        able = [name for name, s in DATASETS.items() if s.on_device is not None]
        raise StvaeError(
            f"data-on device makes generated {' and '.join(able)} only; "
            f"{config.data.source} is made on the host (use --data-on host or auto)"
        )
    if config.data_on == "auto":
        return "device" if can and device.type == "cuda" else "host"
    return config.data_on


def _feed(config: TrainConfig, source, mine: range, step: int, device: torch.device):
    """The loop's batches, float32 [B/W, N, C, 64, 64] on ``device``, from ``step`` on."""
    if config.data_on == "device":
        made = config.data.spec.on_device(
            source.context, config.data.frames, source.options, device
        )
        return DeviceFeed(made, config.seed, mine, config.model.channels)
    workers = data_workers(config, device)
    prefetch = Prefetch(source, config.seed, mine, step, config.steps, workers)
    return HostFeed(prefetch, device, config.model.channels)


def build_model(config: TrainConfig, device: torch.device) -> nn.Module:
    torch.manual_seed(config.seed)
    return to_channels_last(make_model(config.model)).to(device)


def _holds_nothing(out: Path) -> bool:
    """A folder that holds no run: empty, or only what a start killed before it wrote
    config.json leaves (its lock, temporaries: :meth:`RunLock.leftover`)."""
    return out.is_dir() and all(RunLock.leftover(p.name) for p in out.iterdir())


def _check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise StvaeError(f"{out}: is a file, not a run directory; give another --out")
    cfg = out / RUN_FILES["config"]
    if resume:
        if not cfg.is_file():
            empty = out.exists() and _holds_nothing(out)
            hint = "; train without --resume to start it" if empty else ""
            raise StvaeError(f"{out}: nothing to resume (no {RUN_FILES['config']}){hint}")
    elif out.exists() and not _holds_nothing(out):
        raise StvaeError(f"{out}: already exists and is not empty; use --resume or another --out")


def _check_frames(config: TrainConfig) -> None:
    """A kind whose prior ties frames together (``min_frames`` 2: the random walk of eq 8,
    dsvae's dynamics) learns nothing of time from clips of one frame."""
    kind = kind_of(config.model.kind)
    if config.data.frames < kind.min_frames:
        raise StvaeError(
            f"frames must be at least {kind.min_frames} for the {config.model.kind} model "
            f"(its prior ties each frame to the others); got {config.data.frames}"
        )


def resume_config(
    out: str | Path, given: dict, may_change: frozenset[str] = RESUMABLE
) -> tuple[TrainConfig, list[str]]:
    """What continuing the run in ``out`` trains: its config.json, with the ``given``
    values (dotted field names) of the fields in ``may_change`` (by default those
    ``--resume`` may change: :data:`stvae.config.RESUMABLE`). Any other given field must
    equal the run's, except an "auto" the run resolved when it began and a time budget
    the run already turned into steps: the natural retry of a killed command. Returns
    the config and the given fields that differ, as ``name (run: X, given: Y)``; the
    caller refuses those in its own words (``stvae train --resume``, the grids)."""
    out = Path(out)
    _check_out(out, resume=True)
    path = out / RUN_FILES["config"]
    config = TrainConfig.from_dict(read_json(path), str(path))
    given = dict(given)
    if config.time_budget is None:
        given.pop("time_budget", None)
    for name in AUTO_FIELDS:
        if given.get(name) == "auto":
            given.pop(name)
    changed = []
    for name, value in sorted(given.items()):
        have = config.get(name)
        if isinstance(have, tuple) and value is not None:
            value = tuple(value)
        if name not in may_change and have != value:
            changed.append(f"{name} (run: {have!r}, given: {value!r})")
    return config.replace(**{n: v for n, v in given.items() if n in may_change}), changed


def _claim(out: Path, resume: bool, lock: RunLock) -> bool:
    """Takes ``out`` for this run: creates it, takes its lock, removes the temporaries an
    interrupted writer left, and checks it again under the lock (another process may have
    trained into it since the first check). Returns whether a failure before the first
    checkpoint removes the folder: this call made it, or a start killed before it wrote
    anything did (a stale lock, nothing else)."""
    stranded = (out / RunLock.NAME).exists() and _holds_nothing(out)
    made = not out.exists()
    make_folder(out)
    lock.acquire()  # one writer per run directory: a second process is refused here
    try:
        clear_temporaries(out, out / SNAPSHOTS)
        _check_out(out, resume)
    except BaseException:
        lock.release()
        raise
    return made or stranded


def train(config: TrainConfig, out: str | Path, resume: bool = False) -> dict:
    """Trains ``config`` into run directory ``out`` (or continues it with ``resume``).

    Under ``torchrun`` every rank calls this with the same arguments (see
    :mod:`stvae.distributed`). Returns a summary: the run directory, the step it started
    from (``start_step``: 0, or the checkpoint's step on resume), the step reached,
    whether SIGTERM stopped it early (then the checkpoint holds that step and no final
    weights are written), the last loss terms and the seconds spent in the loop
    (``wall_s``, over all processes of a resumed run, as in metrics.jsonl;
    ``earlier_wall_s`` is the part before this call), and how it ran (``device``, its
    ``device_name``: the GPU's model on CUDA, ``precision``, ``compiled``: false when
    compiling was off or fell back to eager).
    Everything a user can get wrong is checked before ``out`` is created.
    """
    t_call = time.perf_counter()  # a time budget counts from here
    out = Path(out)
    _check_out(out, resume)
    _check_frames(config)
    device = resolve_device(config.device)
    ranks = distributed.setup(device)
    if config.batch_videos % ranks.world:
        raise StvaeError(
            f"batch-videos {config.batch_videos} does not split over {ranks.world} processes"
        )
    source = open_source(config.data)  # reads and validates a data file once, up front
    if config.model.channels is None:  # what the data has; config.json records the number
        config = config.replace(**{"model.channels": source.channels})
    config = config.replace(data_on=resolve_data_on(config, device))  # recorded, kept on resume
    if ranks.world > 1:
        torch.distributed.barrier()  # every rank has checked `out` before rank 0 fills it
    lock = RunLock(out)
    created = _claim(out, resume, lock) if ranks.main else False
    try:
        try:
            with kept_freed_memory(config.keep_freed_memory and device.type == "cpu"):
                return _train(config, out, resume, device, source, ranks, t_call)
        except RuntimeError as e:
            _raise_if_peer_lost(e, ranks, out)
            raise
    except BaseException as e:
        ckpt = out / RUN_FILES["checkpoint"]
        if ranks.main and created and not (ckpt.exists() or previous(ckpt).exists()):
            kept = _keep_log(out)
            lock.release()
            shutil.rmtree(out, ignore_errors=True)  # never leave a run that cannot resume
            if kept is not None:
                where = f"{out} was removed (no checkpoint yet); its metrics log is kept as {kept}"
                if isinstance(e, StvaeError):
                    raise StvaeError(f"{e}; {where}") from None
                print(f"stvae: {where}", file=sys.stderr)
        raise
    finally:
        lock.release()


def _raise_if_peer_lost(e: RuntimeError, ranks, out: Path) -> None:
    """A lost peer of a distributed run, said in one line with where the run stands."""
    lost = distributed.lost_peer(e, ranks)
    if lost is None:
        return
    ckpt = out / RUN_FILES["checkpoint"]
    where = f"the last checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint yet"
    raise StvaeError(
        f"rank {ranks.rank}: lost contact with another process of the run ({lost[:160]}); {where}"
    ) from None


def _keep_log(out: Path) -> Path | None:
    """A run that ends before its first checkpoint is removed; its metrics log, when it
    holds a record (why it diverged), is moved beside it as ``<out>.metrics.jsonl``."""
    log = out / RUN_FILES["metrics"]
    if not (log.is_file() and log.stat().st_size):
        return None
    kept = out.with_name(out.name + "." + RUN_FILES["metrics"])
    try:
        os.replace(log, kept)
    except OSError:
        return None
    return kept


class _StopOnSigterm:
    """Turns SIGTERM into a flag the loop reads after each step (one process, main thread
    only: under torchrun the ranks would see it at different steps)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signalled = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        self.signalled = True

    def __enter__(self) -> _StopOnSigterm:
        if self.enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGTERM, self._previous)


def _announce_compiling(device: torch.device) -> None:
    print(
        f"stvae: compiling the model for {device.type} (typically 30-90 s on a CPU with a cold "
        "cache, seconds with a warm one); training starts after",
        file=sys.stderr,
        flush=True,
    )


def _train(config, out, resume, device, source, ranks, t_call) -> dict:
    # -- set-up: the model, its optimiser, where the run stands, the budget
    model = build_model(config, device)
    # fused: one kernel for the whole update instead of a dozen element-wise ops per tensor
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    ckpt = out / RUN_FILES["checkpoint"]
    step = 0
    if resume and (ckpt.exists() or previous(ckpt).exists()):
        step = load_checkpoint(ckpt, model, optimizer)
    _refuse_shortening(out, step, config.steps)
    earlier = _write_start(config, out, resume, step, ranks, device)
    clock = budget.Budget(config, step, earlier, resume, t_call)
    config = clock.provisional(config)
    loop = _Loop(config, model, optimizer, source, step, device, ranks, out)
    t_start = time.perf_counter() - earlier
    stop = _StopOnSigterm(ranks.world == 1)
    # -- the loop: one step, the budget's clock, then the record and the files
    try:
        stop.__enter__()  # left in the finally below
        model.train()
        halt = False
        while step < loop.config.steps and not halt:
            terms, beta = loop.step(step)
            step += 1
            chosen = clock.after_step(step, ranks, device)
            if chosen is not None:
                loop.choose(chosen, clock)
            halt = stop.signalled  # read once a step, so the last record and checkpoint agree
            loop.record_and_save(step, terms, beta, halt, t_start)
    finally:
        stop.__exit__()
        loop.close()
    # -- the end: final weights, or a word on where a stopped run stands
    config = loop.config
    stopped = step < config.steps
    if stopped:
        print(
            f"stvae: stopped by SIGTERM at step {step} of {config.steps}; the checkpoint "
            f"holds that step (continue with --resume --out {out})",
            file=sys.stderr,
        )
    elif ranks.main:
        save_weights(out / RUN_FILES["weights"], model, config.to_dict())
    if ranks.world > 1:
        torch.distributed.barrier()  # the run directory is complete before anyone returns
    return {
        "run_dir": str(out),
        "start_step": loop.start,
        "step": step,
        "stopped": stopped,
        "wall_s": time.perf_counter() - t_start,
        "earlier_wall_s": earlier,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": resolve_precision(config.precision, device),
        "compiled": loop.forward is not loop.eager,
        "final": loop.row,
        "budget": None if clock.choice is None else dataclasses.asdict(clock.choice),
    }


def _refuse_shortening(out: Path, step: int, steps: int) -> None:
    """A resume asked for fewer ``steps`` than its checkpoint's ``step`` is refused before
    config.json is written (every rank: they all read the checkpoint), the run as it was."""
    if step > steps:
        raise StvaeError(
            f"{out}: the run has reached step {step}; --steps {steps} would shorten it "
            f"(a resumed run keeps every step it took: give --steps {step} or more)"
        )


def _write_start(config: TrainConfig, out: Path, resume: bool, step: int, ranks, device) -> float:
    """Writes config.json (on resume: with its new --steps), adds this process's record to
    segments.jsonl (the machine and precision that train from ``step`` on) and cuts the
    metrics log back to the checkpoint's step; returns the loop seconds spent before (0
    for a new run)."""
    if not ranks.main:
        return 0.0
    write_json(out / RUN_FILES["config"], config.to_dict())
    write_segment(out / RUN_FILES["segments"], _segment(config, step, ranks, device))
    if not resume:
        return 0.0
    last = truncate_metrics(out / RUN_FILES["metrics"], step)
    return last.get("wall_s", 0.0) if last else 0.0


def _segment(config: TrainConfig, step: int, ranks, device: torch.device) -> dict:
    """What trains a run from ``step`` on: one record of segments.jsonl (a run resumed on
    other machines has one per process, so its steps can be told apart by hardware)."""
    cuda = device.type == "cuda"
    return {
        "start_step": step,
        "time": time.time(),
        "machine": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "device": str(device),
        "precision": resolve_precision(config.precision, device),
        "threads": torch.get_num_threads(),
        "processes": ranks.world,
        "torch": torch.__version__,
        "stvae": __version__,
    }


class _Loop:
    """What the loop works with (model, optimiser, feed, log) and its three actions: one
    optimiser step, a chosen budget, and the record and files after a step."""

    def __init__(self, config, model, optimizer, source, step, device, ranks, out):
        self.config, self.model, self.optimizer = config, model, optimizer
        self.device, self.ranks, self.out = device, ranks, out
        self.ckpt = out / RUN_FILES["checkpoint"]
        self.log = None  # written by the main process only
        if ranks.main:
            self.log = MetricsLog(
                out / RUN_FILES["metrics"], config.steps, step, config.frames_per_batch
            )
        self.autocast = _autocast(config, device)
        self.eager = model
        if ranks.world > 1:
            distributed.convert_sync_batchnorm(model)
            ids = [torch.cuda.current_device()] if device.type == "cuda" else None
            self.eager = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.graphs = config.cuda_graphs and device.type == "cuda"
        if config.cuda_graphs and not self.graphs and ranks.main:
            print(
                f"stvae: cuda-graphs needs CUDA; compiling without them on {device.type}",
                file=sys.stderr,
            )
        mode = "reduce-overhead" if self.graphs else None
        self.forward = _compiled(self.eager, mode) if config.compile else self.eager
        if self.forward is not self.eager and ranks.main:
            _announce_compiling(device)
        self.start = step  # the first step of this process (the summary's start_step)
        self.mine = ranks.shard(config.batch_videos)
        self.noise_shape = (config.batch_videos, config.data.frames, config.model.features)
        # Video k of step s is a pure function of (seed, s, k): resume needs no data state,
        # and any number of ranks splits the same global batch.
        self.feed = _feed(config, source, self.mine, step, device)
        # The first non-finite step, as 4 * step + what (1: the loss, 2: a gradient), kept on
        # the device (no host round trip a step) and read where the loop logs or saves.
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.t_logged, self.step_logged = time.perf_counter(), step  # frames/s of a record
        self.row = None  # the last record

    def step(self, step: int) -> tuple[dict, float]:
        """One optimiser step (the update skipped where it went non-finite); returns the
        loss terms (device scalars) and the beta it used."""
        config, optimizer = self.config, self.optimizer
        x = self.feed.get(step)  # [B/W, N, C, 64, 64]
        # noise for the global batch from the same stream on every rank, then this slice
        eps = torch.randn(self.noise_shape, device=self.device)[self.mine.start : self.mine.stop]
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        beta = config.beta_at(step)
        args = (x, beta, eps, self.autocast, optimizer, self.ranks)
        if self.graphs:  # the last step's graph outputs (already read) may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        try:
            terms, what = _forward_backward(self.forward, *args)
        except Exception as e:
            if self.forward is self.eager or not _compile_failed(e):
                raise
            print(
                f"stvae: torch.compile failed ({type(e).__name__}); training eagerly",
                file=sys.stderr,
            )
            self.forward = self.eager
            terms, what = _forward_backward(self.forward, *args)
        optimizer.found_inf = (what > 0).float()  # fused Adam skips the update on 1
        optimizer.step()
        bad = (self.first_bad < 0) & (what > 0)
        self.first_bad = torch.where(bad, 4 * step + what, self.first_bad)
        return terms, beta

    def choose(self, config: TrainConfig, clock) -> None:
        """Trains on to the steps a time budget chose (recorded in config.json)."""
        self.config = config
        if self.log is not None:
            write_json(self.out / RUN_FILES["config"], config.to_dict())
            self.log.set_total(config.steps)
            budget.say(clock.planned, clock.choice)
        self.feed.extend(config.steps)

    def record_and_save(self, step: int, terms: dict, beta: float, halt: bool, t_start) -> None:
        """After ``step`` steps: the metrics record, the non-finite check, the checkpoint
        and the snapshot, each when it is due (and all of them at the end or a stop)."""
        config = self.config
        final = step == config.steps
        logged = step % config.log_every == 0 or final or halt
        saved = step % config.checkpoint_every == 0 or final or halt
        if self.log is not None:
            self.log.tick()
            if logged:  # recorded before the check below: a bad step's loss is shown
                self.row = {k: v.item() for k, v in terms.items()}  # waits for the step
                now = time.perf_counter()
                fps = config.frames_per_batch * (step - self.step_logged)
                fps /= max(now - self.t_logged, 1e-9)
                self.t_logged, self.step_logged = now, step
                self.row.update(step=step, lr=config.lr_at(step - 1), beta=beta, frames_per_s=fps)
                self.row.update(wall_s=now - t_start, time=time.time(), final=final)
                self.log.record(self.row)
        if logged or saved:
            _raise_if_bad(self.first_bad, self.ckpt)  # every rank: they all saw the same values
        if self.log is None:
            return
        if saved:
            save_checkpoint(self.ckpt, self.model, self.optimizer, step, config.to_dict())
        if config.snapshot_every and (step % config.snapshot_every == 0 or final):
            (self.out / SNAPSHOTS).mkdir(exist_ok=True)
            save_weights(snapshot_path(self.out, step), self.model, config.to_dict())

    def close(self) -> None:
        self.feed.close()
        if self.log is not None:
            self.log.close()


def _compile_failed(e: Exception) -> bool:
    """Whether an error of a compiled step is compiling's own failure, after which the run
    goes on eagerly: an exception type of the compiler itself (``torch._dynamo``,
    ``torch._inductor``: a missing C compiler, a failed lowering, a recompilation), on
    the first step or later. Anything else (out of memory, a lost peer, a bad value) is
    the run's error and goes out as it is, on the first compiled step too."""
    compiler = ("torch._dynamo", "torch._inductor")
    return any(t.__module__.startswith(compiler) for t in type(e).__mro__)


def _forward_backward(forward, x, beta, eps, autocast, optimizer, ranks) -> tuple[dict, Tensor]:
    """Puts the gradients of one batch in place; returns its loss terms averaged over ranks
    (device scalars, for the log) and what went non-finite (int64 []: 0 nothing, 1 the
    loss, 2 a gradient), computed on the device without a host round trip.

    A finite loss can still give a non-finite gradient (bf16 overflow in backward): one
    norm over all gradients is non-finite exactly when some gradient is. Under DDP the loss
    is averaged over ranks and the gradients already are, so every rank sees the same."""
    with autocast:
        terms = forward(x, beta=beta, eps=eps)
    means = distributed.mean_over_ranks(terms, ranks)  # the terms themselves in one process
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    loss_bad = ~torch.isfinite(means["loss"].detach())
    what = torch.where(loss_bad, 1, torch.where(torch.isfinite(norm), 0, 2))
    return means, what


def _raise_if_bad(first_bad: Tensor, ckpt: Path) -> None:
    """Stops the run if some step since the last check went non-finite. That step's update
    was skipped (``found_inf``), so nothing non-finite reached the weights, and the check
    comes before any checkpoint is written."""
    code = int(first_bad)
    if code >= 0:
        what = "loss" if code % 4 == 1 else "the gradient"
        where = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "before any checkpoint"
        raise StvaeError(
            f"{what} became non-finite at step {code // 4} (its update was skipped); {where}"
        )
