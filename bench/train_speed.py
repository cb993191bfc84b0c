"""Training and encoding throughput of the paper's network, as ratios taken in one process.

    python bench/train_speed.py [--device cpu|cuda] [--batch-videos N] [--frames 16] [--steps 12]
                                [--precision auto|fp32|bf16] [--parallel N [--parallel-steps M]]
                                [--profile]

Prints, all measured in this one run so that machine noise cancels in the ratios:

* the device's fp32 and bf16 matrix-multiply peaks (GFLOP/s; 2048^3 products on a CPU,
  8192^3 on a GPU);
* frames/s and GFLOP/s of a training step for several configurations, from a naive eager
  fp32 NCHW step to what ``stvae train`` does by default, with model FLOP utilisation
  (MFU) against the peak of the precision in use, measured again just before the row
  (a shared CPU's speed drifts within a run; the spread of the readings is printed), and
  the speed-up over the naive step;
* on a GPU, end to end also with CUDA graphs and with host-made data, each as a fraction
  of the bare compiled step too, and ``--parallel`` runs at once against one alone;
* the same for encoding (inference);
* the cost of the KL terms against N (should grow linearly);
* each data generator's rate against what training consumes.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` from the ops the step
runs (convolutions, transposed convolutions and matmuls, forward and backward). Per frame
the forward pass of a 3x3 conv with C_in -> C_out channels and an H_out x W_out output
costs 2 * 9 * C_in * C_out * H_out * W_out FLOPs (one multiply and one add per weight and
output pixel); a linear layer 2 * in * out. Backward costs about twice the forward (one
product for the input gradient, one for the weight gradient; the first layer needs no
input gradient). Element-wise work (batch norm, ReLU, the loss) is not counted, as usual
for MFU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from stvae.data import GENERATED, GeneratedSource, to_tensor
from stvae.data.digits import load_digits
from stvae.data.on_device import DeviceBouncingMNIST, DeviceChairs, DeviceFeed
from stvae.model import ModelConfig, make_model
from stvae.nets import to_channels_last
from stvae.priors import kl_static, kl_temporal
from stvae.train import PRESETS, resolve_precision, train

CPU = torch.device("cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    dtype: torch.dtype, device: torch.device, seconds: float = 2.0, n: int | None = None
) -> float:
    """Best GFLOP/s of an n x n x n matmul in ``dtype`` over about ``seconds`` (n: 8192 on
    a GPU, 2048 on a CPU, unless given)."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    a @ b  # warm-up
    sync(device)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        a @ b
        sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


class Peaks:
    """The matmul peak of each precision, measured again just before each row is timed.

    A shared or throttled CPU's speed drifts by up to 2x within a run (measured here: the
    fp32 peak read 371, 216 and 161 GFLOP/s on three runs of the same machine), so a
    utilisation against a peak taken minutes earlier can exceed 1. Each row's utilisation
    is against the peak measured next to it; :meth:`spread` reports the drift.
    """

    DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

    def __init__(self, device: torch.device, n: int | None = None):
        self.device, self.n = device, n
        self.seen: dict[str, list[float]] = {name: [] for name in self.DTYPES}
        for name in self.DTYPES:
            self.measure(name, seconds=2.0)

    def measure(self, precision: str, seconds: float = 1.0) -> float:
        value = matmul_peak(self.DTYPES[precision], self.device, seconds, self.n)
        self.seen[precision].append(value)
        return value

    def __getitem__(self, precision: str) -> float:
        return self.seen[precision][-1]

    def spread(self) -> str:
        return ", ".join(
            f"{name} {min(v):.0f}-{max(v):.0f} GFLOP/s over {len(v)} readings"
            for name, v in self.seen.items()
        )


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def make_step(model, opt, x, precision: str):
    ctx = autocast(precision, x.device)

    def step():
        with ctx:
            loss = model(x)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_it(fn, steps: int, warmup: int = 3, device: torch.device = CPU) -> float:
    """Median seconds per call after ``warmup`` calls (waiting for the device each call)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


STEP_CONFIGS = {  # --step-configs name: (row, channels_last, precision, compiled)
    "naive": ("naive eager NCHW fp32", False, "fp32", False),
    "cl-fp32": ("channels-last fp32", True, "fp32", False),
    "cl-bf16": ("channels-last bf16 autocast", True, "bf16", False),
    "compiled-fp32": ("compiled channels-last fp32", True, "fp32", True),
    "compiled-bf16": ("compiled channels-last bf16", True, "bf16", True),
}
SECTIONS = ("step", "e2e", "parallel", "encode", "kl", "data")


def configurations(args):
    """(name, channels_last, precision, compiled) from naive to everything: the first
    ``--configs`` of them, or those ``--step-configs`` names; compiled ones dropped with
    ``--no-compile``."""
    names = args.step_configs.split(",") if args.step_configs else list(STEP_CONFIGS)
    rows = [STEP_CONFIGS[n] for n in names][: args.configs]
    return [r for r in rows if not (r[3] and args.no_compile)]


def profile(args) -> None:
    """The top operators of a few eager channels-last training steps in ``--precision``
    (auto: bf16), by self CPU time (torch.profiler)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    src = GeneratedSource(args.frames)
    rng = np.random.default_rng(0)
    model = to_channels_last(make_model(ModelConfig()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = to_tensor(src.batch(args.batch_videos, rng))
    precision = "bf16" if args.precision == "auto" else args.precision
    step = make_step(model, opt, x, precision)
    step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            x.copy_(to_tensor(src.batch(args.batch_videos, rng)))
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def end_to_end(args, **changes) -> tuple[float, float, float]:
    """Frames/s of ``stvae.train.train`` itself: data generated on the fly, the cpu preset's
    flags (plus ``changes``); the wall time between the record after 5 warm-up steps (which
    also absorb any compilation) and the last record, so every per-step cost counts.
    Returns (frames/s, seconds the first 5 steps took, the share of the process's CPU
    time spent in the kernel: page faults, mostly, without ``keep_freed_memory``)."""
    steps = args.steps + 5
    cfg = PRESETS["cpu"].replace(
        steps=steps,
        batch_videos=args.batch_videos,
        log_every=5,
        checkpoint_every=10_000,
        device=args.device.type,
        **{"data.frames": args.frames},
        **changes,
    )
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_SELF)
        with contextlib.redirect_stdout(io.StringIO()):
            train(cfg, Path(tmp) / "run")
        after = resource.getrusage(resource.RUSAGE_SELF)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").open()]
    first, last = rows[0], rows[-1]
    rate = (
        cfg.frames_per_batch * (last["step"] - first["step"]) / (last["wall_s"] - first["wall_s"])
    )
    system = after.ru_stime - before.ru_stime
    return rate, first["wall_s"], system / (system + after.ru_utime - before.ru_utime)


def several_at_once(args, runs: int) -> tuple[float, list[float]]:
    """Frames/s of ``runs`` ``stvae train`` processes started together on the device (cpu
    preset flags, ``--parallel-steps`` + 5 steps, seeds 0..runs-1), counted over the window in which
    all of them were training (from the last one's first record, after its 5 warm-up
    steps and any compiling, to the first one's last record; each run's steps in the
    window interpolated from its records' times). Each run's output goes to
    ``--logs``/parallel-<runs>-run<i>.log where that is given. Returns (all of them together,
    each)."""
    steps = args.parallel_steps + 5
    flags = (
        f"--preset cpu --steps {steps} --batch-videos {args.batch_videos} --frames {args.frames}"
        f" --log-every 5 --checkpoint-every 100000 --device {args.device.type}"
        f" --precision {args.precision} --no-check" + (" --no-compile" if args.no_compile else "")
    ).split()
    logs = [
        open(Path(args.logs) / f"parallel-{runs}-run{i}.log", "w")  # noqa: SIM115 - closed below
        if args.logs
        else subprocess.DEVNULL
        for i in range(runs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stvae",
                    "train",
                    *flags,
                    "--seed",
                    str(i),
                    "--out",
                    f"{tmp}/run{i}",
                ],
                stdout=logs[i],
                stderr=subprocess.STDOUT,
            )
            for i in range(runs)
        ]
        for f in logs:
            if f is not subprocess.DEVNULL:
                f.close()
        if any(p.wait() for p in procs):
            where = f" (their output: {args.logs}/parallel-{runs}-run*.log)" if args.logs else ""
            raise RuntimeError(f"a run failed{where}")
        records = []
        for i in range(runs):
            rows = [json.loads(line) for line in (Path(tmp) / f"run{i}" / "metrics.jsonl").open()]
            records.append(
                (np.array([r["time"] for r in rows]), np.array([r["step"] for r in rows]))
            )
    begin = max(t[0] for t, _ in records)
    end = min(t[-1] for t, _ in records)
    if end <= begin:
        raise RuntimeError("the runs did not train at the same time; give more --parallel-steps")
    frames = args.batch_videos * args.frames
    each = [
        frames * float(np.diff(np.interp([begin, end], t, s))[0]) / (end - begin)
        for t, s in records
    ]
    return sum(each), each


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--batch-videos", type=int, help="videos a step (default: 16 on a CPU, 64 on a GPU)"
    )
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--configs", type=int, default=5, help="how many configurations to time")
    p.add_argument(
        "--step-configs",
        help="comma-separated training-step configurations, timed in this order "
        f"({', '.join(STEP_CONFIGS)})",
    )
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, run in this order (default {','.join(SECTIONS)}); "
        "the matmul peaks always come first",
    )
    p.add_argument("--no-compile", action="store_true", help="leave out every compiled row")
    p.add_argument(
        "--peak-n", type=int, help="matmul size of the peaks (default 8192 on a GPU, 2048 here)"
    )
    p.add_argument("--logs", help="folder for the output of the --parallel runs")
    p.add_argument(
        "--profile",
        action="store_true",
        help="only print where a channels-last training step (--precision; auto: bf16) "
        "spends its time",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="the precision of the end-to-end runs (auto: what stvae train picks here; fp32 "
        "measures the path of CPUs without bf16) and of --profile",
    )
    p.add_argument(
        "--parallel",
        type=int,
        help="also time this many stvae train processes at once against one alone "
        "(default: 3 on a GPU, none on a CPU)",
    )
    p.add_argument(
        "--parallel-steps",
        type=int,
        help="steps of each --parallel run (default: --steps); more where tiny steps end "
        "before a process started a little later begins",
    )
    args = p.parse_args()
    args.sections = args.sections.split(",")
    unknown = [x for x in args.sections if x not in SECTIONS]
    unknown += [x for x in (args.step_configs or "").split(",") if x and x not in STEP_CONFIGS]
    if unknown:
        p.error(f"unknown section or configuration: {', '.join(unknown)}")
    args.device = dev = torch.device(args.device)
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
    if args.parallel is None:
        args.parallel = 3 if dev.type == "cuda" else 0
    if args.batch_videos is None:
        args.batch_videos = 64 if dev.type == "cuda" else 16
    if args.parallel_steps is None:
        args.parallel_steps = args.steps
    return args


class Bench:
    """What the sections share: the device, the peaks, a batch, the counted FLOPs, and the
    naive and bare compiled step times once the ``step`` section has measured them."""

    def __init__(self, args):
        self.args, self.dev = args, args.device
        self.frames = args.batch_videos * args.frames
        self.peak = Peaks(self.dev, args.peak_n)
        src = GeneratedSource(args.frames)
        self.x = to_tensor(src.batch(args.batch_videos, np.random.default_rng(0)), self.dev)
        self.base = make_model(ModelConfig()).to(self.dev)
        self.train_flops = count_flops(lambda: self.base(self.x)["loss"].backward())
        with torch.no_grad():
            self.enc_flops = count_flops(lambda: self.base.encode(self.x))
        self.naive = self.bare = None

    def step(self) -> None:
        print("\ntraining step")
        head = f"{'frames/s':>9s} {'GFLOP/s':>8s} {'MFU':>6s} {'vs naive':>8s}"
        print(f"{'configuration':32s} {head}")
        for name, cl, precision, compiled in configurations(self.args):
            model = make_model(ModelConfig()).to(self.dev)
            model.load_state_dict(self.base.state_dict())
            if cl:
                model = to_channels_last(model)
            run = model
            if compiled:
                try:
                    run = torch.compile(model)
                except Exception as e:  # noqa: BLE001 - report and go on
                    print(f"{name:32s} torch.compile unavailable: {e}")
                    continue
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            self.peak.measure(precision)
            try:
                step = make_step(run, opt, self.x, precision)
                sec = time_it(step, self.args.steps, device=self.dev)
            except Exception as e:  # noqa: BLE001 - a failed compile is a result too
                print(f"{name:32s} failed: {type(e).__name__}: {str(e).splitlines()[0][:60]}")
                continue
            self.naive = self.naive or sec
            self.bare = sec if compiled else self.bare  # the last compiled row: stvae's step
            gflops = self.train_flops / sec / 1e9
            print(
                f"{name:32s} {self.frames / sec:9.0f} {gflops:8.0f} "
                f"{gflops / self.peak[precision]:6.2f} {self.naive / sec:8.2f}x"
            )

    def e2e(self) -> None:
        args, frames = self.args, self.frames
        print("\nend to end (stvae.train.train)")
        default_precision = resolve_precision(args.precision, self.dev)
        flag = "" if args.precision == "auto" else f" --precision {args.precision}"
        same = {"precision": args.precision}
        eager = {**same, "compile": False}
        variants = [(f"stvae train{flag} (compiled)", same)] if not args.no_compile else []
        if self.dev.type == "cuda":  # data made on the device is the default there
            graphs = {**same, "cuda_graphs": True}
            variants.append((f"stvae train{flag} --cuda-graphs", graphs))
            host = {**(eager if args.no_compile else same), "data_on": "host"}
            variants.append((f"stvae train{flag} --data-on host", host))
            variants.append(("  ... --data-workers 0", {**host, "data_workers": 0}))
        variants.append((f"stvae train{flag} --no-compile", eager))
        if self.dev.type == "cpu":  # glibc's default: freed memory goes back (stvae.hostmem)
            returned = {**(eager if args.no_compile else same), "keep_freed_memory": False}
            variants.append((f"stvae train{flag} --no-keep-freed-memory", returned))
        for name, changes in variants:
            self.peak.measure(default_precision)
            try:
                rate, warmup_s, system = end_to_end(args, **changes)
            except Exception as e:  # noqa: BLE001 - a failed variant is a result too
                print(f"{name:32s} failed: {type(e).__name__}: {str(e).splitlines()[0][:60]}")
                continue
            gflops = self.train_flops / frames * rate / 1e9
            vs_bare = (
                f", {rate * self.bare / frames:.2f} of the bare compiled step" if self.bare else ""
            )
            vs_naive = f"{rate * self.naive / frames:8.2f}x" if self.naive else f"{'':9s}"
            print(
                f"{name:32s} {rate:9.0f} {gflops:8.0f} "
                f"{gflops / self.peak[default_precision]:6.2f} {vs_naive}"
                f"   (first 5 steps: {warmup_s:.0f} s{vs_bare}; system time {system:.2f})"
            )

    def parallel(self) -> None:
        args = self.args
        if args.parallel < 2:
            return
        try:
            one, _ = several_at_once(args, 1)
            together, each = several_at_once(args, args.parallel)
            print(
                f"{args.parallel} stvae train processes at once: {together:.0f} frames/s in "
                f"all ({' + '.join(f'{r:.0f}' for r in each)}), {together / one:.2f}x one "
                f"alone ({one:.0f}, the same flags)"
            )
        except RuntimeError as e:
            print(f"{args.parallel} stvae train processes at once: {e}")

    def encode(self) -> None:
        print("\nencoding (inference, eval mode)")
        for name, cl, precision in [
            ("eager NCHW fp32", False, "fp32"),
            ("channels-last bf16", True, "bf16"),
        ]:
            model = make_model(ModelConfig()).to(self.dev).eval()
            if cl:
                model = to_channels_last(model)
            ctx = autocast(precision, self.dev)

            def enc(model=model, ctx=ctx):
                with torch.no_grad(), ctx:
                    model.encode(self.x)

            self.peak.measure(precision)
            sec = time_it(enc, self.args.steps, device=self.dev)
            gflops = self.enc_flops / sec / 1e9
            print(
                f"{name:32s} {self.frames / sec:9.0f} frames/s {gflops:6.0f} GFLOP/s "
                f"MFU {gflops / self.peak[precision]:.2f}"
            )

    def kl(self) -> None:
        print("\nKL cost against N (B=16, F=4, forward + backward)")
        prev = None
        for n in (16, 160, 1600, 16000):
            mu = torch.randn(16, n, 4, device=self.dev, requires_grad=True)
            lv = torch.randn(16, n, 4, device=self.dev, requires_grad=True)

            def kl(mu=mu, lv=lv):
                (kl_static(mu, lv, 0.01) + kl_temporal(mu, lv, 0.01)).sum().backward()

            sec = time_it(kl, 20, device=self.dev)
            growth = "" if prev is None else f"  x{sec / prev:.1f} for 10x N"
            print(f"N = {n:6d}: {sec * 1e6:9.1f} us{growth}")
            prev = sec

    def data(self) -> None:
        args, dev, frames = self.args, self.dev, self.frames
        print("\ndata generation (one thread), against a bf16 training step of the same channels")
        steps = {}
        for name in GENERATED:
            src = GeneratedSource(args.frames, name=name)
            rng = np.random.default_rng(0)
            gen = time_it(lambda src=src, rng=rng: src.batch(args.batch_videos, rng), 20)
            c = src.channels
            if c not in steps:
                model = to_channels_last(make_model(ModelConfig(channels=c)).to(dev))
                opt = torch.optim.Adam(model.parameters(), lr=1e-4)
                xc = to_tensor(src.batch(args.batch_videos, rng), dev)
                steps[c] = time_it(make_step(model, opt, xc, "bf16"), 4, 1, device=dev)
            print(
                f"{name:16s} {frames / gen:9.0f} frames/s, {steps[c] / gen:5.1f}x what a "
                f"{'colour' if c == 3 else 'grey'} step consumes ({gen * 1e3:.1f} ms a batch)"
            )
        print(f"made on the {dev.type} by torch ops (stvae.data.on_device), float32 batch included")
        videos = range(args.batch_videos)
        made = {
            "bouncing-mnist": DeviceBouncingMNIST(load_digits("train"), args.frames, device=dev),
            "chairs (40 chairs)": DeviceChairs(args.frames, dev, identities=40),
        }
        for name, source in made.items():
            feed = DeviceFeed(source, 0, videos)
            counter = iter(range(10**9))
            draw = lambda feed=feed, counter=counter: feed.get(next(counter))  # noqa: E731
            gen = time_it(draw, 20, device=dev)
            print(
                f"{name:18s} {frames / gen:7.0f} frames/s, {steps[1] / gen:5.1f}x what a "
                f"grey step consumes ({gen * 1e3:.2f} ms a batch)"
            )


def main() -> None:
    args = parse_args()
    if args.profile:
        profile(args)
        return
    torch.manual_seed(0)
    dev = args.device
    where = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{where}, {args.batch_videos * args.frames} frames a step"
    )
    bench = Bench(args)
    peak = bench.peak
    print(f"matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    print(
        f"counted: {bench.train_flops / bench.frames / 1e9:.3f} GFLOP per frame for a training "
        f"step, {bench.enc_flops / bench.frames / 1e9:.4f} for encoding"
    )
    for section in args.sections:
        getattr(bench, section)()
        print(f"matmul peak readings: {peak.spread()}; each MFU is against the reading before it")


if __name__ == "__main__":
    main()
