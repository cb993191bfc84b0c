"""How much a learning-curve point moves when only the probe sets change
(:func:`stvae.curve.probe_spread`): weight snapshots scored as ``stvae curve`` scores
them, on the probe sets of several seeds, the weights fixed. The spread is what the
curve's point-to-point differences have to exceed before they say the model changed
(docs/results.md, the paper's schedule on this CPU).

    python bench/probe_noise.py RUN --steps 9000 10500 [--seeds 5]

Prints a markdown table: a row per snapshot and seed, then the mean and the sample
standard deviation over seeds per snapshot. Seed 0 is the curve's own point.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from stvae.curve import probe_spread
from stvae.errors import StvaeError

COLUMNS = (  # (label, key of a curve point)
    ("eq 19, RBF", "d_score_rbf"),
    ("eq 19, linear", "d_score"),
    ("digit from static, held-out (RBF)", "static_accuracy_rbf"),
    ("location from temporal (RBF)", "temporal_from_temporal_rbf"),
    ("location from static (RBF)", "temporal_from_static_rbf"),
    ("digit from temporal (RBF)", "static_from_temporal_rbf"),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--steps", type=int, nargs="+", required=True)
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    if args.seeds < 2:
        p.error("--seeds: at least 2 for a spread")
    try:
        spread = probe_spread(args.run, args.steps, args.seeds)
    except StvaeError as e:
        sys.exit(f"probe_noise: {e}")
    print("| step | probe seed | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for step, points in spread.items():
        rows = [[point[key] for _, key in COLUMNS] for point in points]
        for seed, row in enumerate(rows):
            print(f"| {step:,} | {seed} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        cells = (
            f"{statistics.mean(c):.3f} ± {statistics.stdev(c):.3f}" for c in zip(*rows, strict=True)
        )
        print(f"| {step:,} | mean ± sd | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
