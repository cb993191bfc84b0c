"""The training log: metrics.jsonl, TensorBoard events, and a progress bar or plain lines."""

from __future__ import annotations

import json
import sys
import time
from itertools import takewhile
from pathlib import Path

from stvae.budget import UNTIL_CHOSEN
from stvae.checkpoint import atomic_write
from stvae.errors import StvaeError

__all__ = ["MetricsLog", "cpu_name", "read_segments", "truncate_metrics", "write_segment"]


class MetricsLog:
    """metrics.jsonl, TensorBoard when installed, and a progress bar or plain lines."""

    def __init__(self, path: Path, steps: int, start: int, frames_per_step: int = 1):
        self.file = open(path, "a")  # noqa: SIM115
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(path.parent / "tb"), purge_step=start)
        except ImportError:
            pass
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            total = None if steps >= UNTIL_CHOSEN else steps  # a time budget: not known yet
            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        self.steps, self.frames_per_step = steps, frames_per_step
        self.printed: int | None = None  # off a terminal: the first record prints, then ~5%
        self.first: tuple[int, float] | None = None  # (step, time) of the first record

    def set_total(self, steps: int) -> None:
        """The run's length changed (a time budget chose it)."""
        self.steps = steps
        if self.bar is not None:
            self.bar.total = steps
            self.bar.refresh()

    def _left(self, row: dict) -> str:
        """Time left at the loop's mean rate since the first record (its rate at first)."""
        now = time.perf_counter()
        if self.first is None:
            self.first = (row["step"], now)
        step0, t0 = self.first
        if row["step"] > step0:
            per_step = (now - t0) / (row["step"] - step0)
        else:
            per_step = self.frames_per_step / max(row["frames_per_s"], 1e-9)
        left = max(0, self.steps - row["step"]) * per_step
        return f"{left / 60:.1f} min left" if left >= 60 else f"{left:.0f} s left"

    def record(self, row: dict) -> None:
        try:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        except OSError as e:  # a full disk: the records so far stay, resume truncates to them
            raise StvaeError(f"{self.file.name}: could not be written ({e.strerror})") from None
        if self.tb is not None:
            for key, value in row.items():
                if key != "step":
                    self.tb.add_scalar(key, value, row["step"])
        left = self._left(row)
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{row['loss']:.1f}", fps=f"{row['frames_per_s']:.0f}", refresh=False
            )
        due = self.printed is None or row["step"] >= self.printed + max(1, self.steps // 20)
        if self.bar is None and (due or row["final"]):
            measuring = self.steps >= UNTIL_CHOSEN  # a time budget has not chosen the steps
            of = "" if measuring else f"/{self.steps}"
            left = "timing the rate for the time budget" if measuring else left
            print(
                f"step {row['step']:>6}{of}  loss {row['loss']:.2f}  "
                f"recon {row['reconstruction']:.2f}  kl {row['kl']:.2f}  "
                f"{row['frames_per_s']:.0f} frames/s  {left}",
                flush=True,
            )
            self.printed = row["step"]

    def tick(self) -> None:
        """One step done (the bar's loss and rate change at each record: reading them every
        step would wait for the device every step)."""
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
        if self.bar is not None:
            self.bar.close()


def truncate_metrics(path: Path, step: int) -> dict | None:
    """Drops records past ``step`` (written after the checkpoint a resume starts from) and
    returns the last record kept (None without one): its ``wall_s`` is the time in the
    loop that the resumed run carries on from."""
    if not path.exists():
        return None
    keep, last = [], None
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            if record["step"] <= step:
                keep.append(line + "\n")
                last = record
        except (ValueError, KeyError):
            break  # a line cut short by a kill: everything after it is dropped too
    atomic_write(path, lambda p: p.write_text("".join(keep)))
    return last


def cpu_name() -> str:
    """The CPU's model name and its fastest bf16 path, from /proc/cpuinfo where Linux has it."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "")
    flags = next((ln for ln in info.splitlines() if ln.startswith("flags")), "")
    isa = "AMX bf16" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else ""
    return f"{name or 'unknown CPU'}" + (f", {isa}" if isa else "")


def read_segments(path: Path) -> list[dict]:
    """The run's segments log (:func:`write_segment`), in order, up to a line that does not
    parse as a record with a ``start_step`` (a line cut short ends what is read); [] when
    the run has none (runs from before it)."""
    records: list[dict] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            break
        if not (isinstance(record, dict) and "start_step" in record):
            break
        records.append(record)
    return records


def write_segment(path: Path, record: dict) -> list[dict]:
    """Appends one training process's record (``start_step``, the machine, the precision
    it resolved to, ...) to the run's segments log, first dropping the records of
    processes that started at or past ``start_step`` (their steps were lost to a resume
    from an earlier checkpoint, as :func:`truncate_metrics` drops their metrics) and
    whatever follows a line that does not parse. Returns the log as written."""
    earlier = read_segments(path)
    kept = [*takewhile(lambda r: r["start_step"] < record["start_step"], earlier), record]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write(path, lambda p: p.write_text(text))
    return kept
