"""How much a learning-curve point moves when only the probe sets change
(:func:`stvae.curve.probe_spread`): weight snapshots scored as ``stvae curve`` scores
them, on the probe sets of several seeds, the weights fixed. The spread is what the
curve's point-to-point differences have to exceed before they say the model changed
(docs/results.md, the paper's schedule on this CPU).

    python bench/probe_noise.py RUN --steps 9000 10500 [--seeds 5] [--table2] [--videos 256]

Prints a markdown table: a row per snapshot and seed, then the mean and the sample
standard deviation over seeds per snapshot. Seed 0 is the curve's own point. With
--table2, the columns are instead Table 2's: the digit read from the static features
(Acc 2) and from all features (Acc 4), under both probes. --videos sets the size of
every probe set (the curve's are 256), --score-videos that of the scoring set alone, and
the seconds each seed took are printed after the table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from stvae.curve import probe_spread
from stvae.errors import StvaeError
from stvae.evaluate import PROBE_VIDEOS

COLUMNS = (  # (label, key of a curve point)
    ("eq 19, RBF", "d_score_rbf"),
    ("eq 19, linear", "d_score"),
    ("digit from static, held-out (RBF)", "static_accuracy_rbf"),
    ("location from temporal (RBF)", "temporal_from_temporal_rbf"),
    ("location from static (RBF)", "temporal_from_static_rbf"),
    ("digit from temporal (RBF)", "static_from_temporal_rbf"),
)
TABLE2 = (  # Table 2: Acc 2 is the static features, Acc 4 all four
    ("Acc 2, RBF", "static_accuracy_rbf"),
    ("Acc 4, RBF", "static_all_features_rbf"),
    ("Acc 2, linear", "static_accuracy"),
    ("Acc 4, linear", "static_all_features"),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--steps", type=int, nargs="+", required=True)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--table2", action="store_true", help="Table 2's Acc 2 and Acc 4 columns")
    p.add_argument("--videos", type=int, help=f"videos in each probe set ({PROBE_VIDEOS})")
    p.add_argument("--score-videos", type=int, help="videos in the scoring set (default --videos)")
    args = p.parse_args()
    if args.seeds < 2:
        p.error("--seeds: at least 2 for a spread")
    try:
        start = time.perf_counter()
        spread = probe_spread(
            args.run, args.steps, args.seeds, videos=args.videos, score_videos=args.score_videos
        )
        seconds = time.perf_counter() - start
    except StvaeError as e:
        sys.exit(f"probe_noise: {e}")
    columns = TABLE2 if args.table2 else COLUMNS
    if args.table2 and "static_all_features" not in next(iter(spread.values()))[0]:
        sys.exit("probe_noise: --table2 needs a model with a static factor")
    print("| step | probe seed | " + " | ".join(c[0] for c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for step, points in spread.items():
        rows = [[point[key] for _, key in columns] for point in points]
        for seed, row in enumerate(rows):
            print(f"| {step:,} | {seed} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        cells = (
            f"{statistics.mean(c):.3f} ± {statistics.stdev(c):.3f}" for c in zip(*rows, strict=True)
        )
        print(f"| {step:,} | mean ± sd | " + " | ".join(cells) + " |")
    per_seed = seconds / args.seeds
    scored = f", {args.score_videos} scored" if args.score_videos else ""
    sized = f"{args.videos or PROBE_VIDEOS} videos a probe set{scored}"
    print(f"\n{sized}: {per_seed:.0f} s a seed, {len(spread)} snapshot(s)")


if __name__ == "__main__":
    main()
