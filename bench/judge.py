"""The sprites judge: its accuracy per head on real held-out clips against its training
cost, for a few schedules, measured in one process (nothing cached).

    python bench/judge.py [--frames 8] [--clips 512] [--schedules 600x16,400x32]

Prints, for each schedule (batches x clips per batch), the seconds spent training it and
its accuracy on ``--clips`` clips of held-out characters per head (four attributes, the
action): what the default (600x16) is chosen by.
"""

from __future__ import annotations

import argparse
import os
import time

from stvae.judge import _trained_judge, judge_accuracy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--clips", type=int, default=512)
    p.add_argument("--schedules", default="600x16,400x32")
    args = p.parse_args()
    os.environ["STVAE_CACHE"] = "off"  # every schedule trained here
    for schedule in args.schedules.split(","):
        steps, batch = (int(v) for v in schedule.split("x"))
        t0 = time.perf_counter()
        judge = _trained_judge(0, args.frames, steps, batch)
        seconds = time.perf_counter() - t0
        acc = judge_accuracy(judge, args.clips, frames=args.frames)
        heads = "  ".join(f"{k} {v:.3f}" for k, v in acc.items())
        print(f"{steps} x {batch}: {seconds:.1f} s  {heads}", flush=True)


if __name__ == "__main__":
    main()
