"""Two runs' scores on the same probe sets, set by set: the per-seed rows of one table in
each of two probe-spread reports (``bench/probe_noise.py``'s markdown, as committed), the
difference on each set, and its mean ± sd over sets. Probe seed k makes the same videos for
any two runs with the same data settings, so the difference on a set leaves out what the
videos alone move (docs/results.md, the paper's schedule on this CPU).

    python bench/paired_probes.py A.md B.md [--section "256 fitting and 1,024 scoring"]
        [--column "eq 19, RBF"] [--names hierarchical slow]

Prints a markdown table: a row per probe seed found in both, then the mean ± sd.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def seed_rows(path: Path, section: str, column: str) -> dict[int, float]:
    """{probe seed: value of ``column``} from the first table under the heading that starts
    with ``section`` (the text before the first heading when ``section`` is empty)."""
    parts = path.read_text().split("\n## ")
    found = [p for p in parts if p.startswith(section)] if section else parts[:1]
    if not found:
        raise SystemExit(f"{path}: no section starting with {section!r}")
    header, values = None, {}
    for line in found[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None and "probe seed" in cells:
            header = cells
            if column not in header:
                raise SystemExit(f"{path}: no column {column!r} (have: {', '.join(header)})")
        elif header and len(cells) == len(header) and cells[1].isdigit():
            values[int(cells[1])] = float(cells[header.index(column)])
    if not values:
        raise SystemExit(f"{path}: no per-seed rows under {section!r}")
    return values


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--section", default="256 fitting and 1,024 scoring")
    p.add_argument("--column", default="eq 19, RBF")
    p.add_argument("--names", nargs=2, default=("A", "B"))
    args = p.parse_args()
    a, b = (seed_rows(f, args.section, args.column) for f in (args.a, args.b))
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        sys.exit(f"fewer than 2 probe seeds in both reports: {seeds}")
    first, second = args.names
    column = args.column
    print(f"| probe seed | {column}, {first} | {column}, {second} | {first} minus {second} |")
    print("|---|---|---|---|")
    diffs = [a[s] - b[s] for s in seeds]
    for s in seeds:
        print(f"| {s} | {a[s]:.3f} | {b[s]:.3f} | {a[s] - b[s]:+.3f} |")
    print(
        f"| mean ± sd | {_spread([a[s] for s in seeds])} | {_spread([b[s] for s in seeds])} "
        f"| {statistics.mean(diffs):+.3f} ± {statistics.stdev(diffs):.3f} |"
    )
    ahead = sum(d > 0 for d in diffs)
    print(f"\n{first} above {second} on {ahead} of {len(seeds)} probe sets")


if __name__ == "__main__":
    main()
