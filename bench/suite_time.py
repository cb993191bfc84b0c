"""Where the test suite's time goes (docs/testing.md): on a clean clone of HEAD, each tier
as the Makefile runs it (one worker a core, one thread each) and, with --configs, in one
process with OMP_NUM_THREADS at its default or at 1, timed by pytest, and the slowest tests.

    python bench/suite_time.py --out /tmp/suite-time [--configs workers,default,1]

It clones this repository into OUT/clone, sets it up there (`make setup`), runs the quick
tier (`-m "not slow"`, what `make test` runs) and the full suite (`make test-all`) in each
configuration, keeps pytest's own output of each in OUT, and prints the tables in
Markdown. Run it on an idle machine: another process on the cores (a long run: pause it
with kill -STOP) slows every test.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIERS = {"quick": ["-m", "not slow"], "full": []}
# configuration -> (pytest's flags, OMP_NUM_THREADS or None for torch's default, its name)
CONFIGS = {
    "workers": (["-n", "auto", "--dist", "loadgroup"], "1", "a worker a core, 1 thread each"),
    "default": ([], None, "one process, torch's default threads"),
    "1": ([], "1", "one process, OMP_NUM_THREADS=1"),
}
DURATION = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+(.+?)\s*$")
SUMMARY = re.compile(r"^=*\s*(\d+ passed.*) in ([\d.]+)s")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def run_tier(clone: Path, tier: str, config: str, log: Path) -> None:
    flags, threads, _ = CONFIGS[config]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if threads:
        env["OMP_NUM_THREADS"] = threads
    cmd = [str(clone / ".venv/bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += [*flags, *TIERS[tier], "--durations=40"]
    with log.open("w") as f:
        subprocess.run(cmd, cwd=clone, env=env, stdout=f, stderr=subprocess.STDOUT, check=False)


def parse(log: Path) -> tuple[str, float, dict[str, float]]:
    """pytest's summary line, its seconds, and the seconds of each test (call + setup)."""
    text = log.read_text()
    summary = [SUMMARY.search(line) for line in text.splitlines()]
    last = [m for m in summary if m][-1]
    per: dict[str, float] = {}
    for line in text.splitlines():
        m = DURATION.match(line)
        if m:
            per[m.group(3)] = per.get(m.group(3), 0.0) + float(m.group(1))
    return last.group(1), float(last.group(2)), per


def markdown(out: Path, commit: str, configs: list[str]) -> str:
    runs = {(t, c): parse(out / f"{t}-{c}.txt") for t in TIERS for c in configs}
    lines = [
        f"Measured by `python bench/suite_time.py` at commit {commit} on {cpu_name()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; seconds as pytest "
        "counts them (collection included, set-up of the clone not).",
        "",
        "| tier | command | how | tests | seconds |",
        "|---|---|---|---|---:|",
    ]
    for (tier, config), (summary, seconds, _) in runs.items():
        command = "make test" if tier == "quick" else "make test-all"
        lines.append(f"| {tier} | `{command}` | {CONFIGS[config][2]} | {summary} | {seconds:.0f} |")
    per = [runs[("full", c)][2] for c in configs]
    slowest = sorted(set().union(*per), key=lambda k: -max(d.get(k, 0) for d in per))
    lines += [
        "",
        "The full suite's 40 slowest tests (call and set-up; a blank is under pytest's "
        "40th on that run), and whether `make test` runs them:",
        "",
        "| test | " + " | ".join(f"{CONFIGS[c][2]} (s)" for c in configs) + " | in `make test` |",
        "|---|" + "---:|" * len(configs) + "---|",
    ]
    quick = set((out / "quick-ids.txt").read_text().splitlines())
    for name in slowest[:40]:
        cells = [f"{d[name]:.1f}" if name in d else "" for d in per]
        tier = "yes" if name in quick else "no (slow)"
        lines.append(f"| `{name.removeprefix('tests/')}` | {' | '.join(cells)} | {tier} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a new folder for the clone and logs")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the repository to clone (this one)")
    ap.add_argument("--table-only", action="store_true", help="print the tables of logs in OUT")
    ap.add_argument(
        "--configs", default="workers", help=f"comma-separated, of {', '.join(CONFIGS)}"
    )
    args = ap.parse_args()
    configs = args.configs.split(",")
    if not set(configs) <= set(CONFIGS):
        sys.exit(f"suite_time: --configs takes {', '.join(CONFIGS)}, not {args.configs}")
    clone = args.out / "clone"
    if not args.table_only:
        if args.out.exists():
            sys.exit(f"suite_time: {args.out} exists; give a new folder")
        args.out.mkdir(parents=True)
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        subprocess.run(["make", "setup"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
        ids = subprocess.run(  # the quick tier's tests, by their markers
            [str(clone / ".venv/bin/python"), "-m", "pytest", "-q", "--collect-only"]
            + ["-p", "no:cacheprovider", *TIERS["quick"]],
            cwd=clone, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (args.out / "quick-ids.txt").write_text(
            "\n".join(line for line in ids.splitlines() if "::" in line) + "\n"
        )
        for tier in TIERS:
            for config in configs:
                print(f"suite_time: {tier} tier, {CONFIGS[config][2]}", file=sys.stderr)
                run_tier(clone, tier, config, args.out / f"{tier}-{config}.txt")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
    ).stdout.strip()
    print(markdown(args.out, commit, configs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
