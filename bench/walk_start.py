"""Issue 49's levers on chairs: the chairs grid's hierarchical beta-4 cell (4 + 4
features, the `cpu` preset) trained again with the random walk's first frame drawn from
N(0, s I) for each s given (`--walk-start`; eq 8 is s = 1), and with the walk decaying,
h_i = lambda h_{i-1} + N(0, sigma2 I), for each lambda given (`--walk-decay`; eq 8 is
lambda = 1; docs/design.md, "Where a per-video constant goes"), each scored by `stvae
evaluate` and by bench/offset_cost.py, beside the grid's own run at s = 1, lambda = 1
(its row in docs/results/chairs-cpu.json).

    python bench/walk_start.py [--starts 0.1 0.01] [--decays LAMBDA ...]
                               [--out runs/walk-start]
                               [--report docs/results/chairs-walk-start] [--preset cpu]
                               [--frames N]

A run already finished is scored again, not retrained; an interrupted one resumes from
its checkpoint. Writes REPORT.md and REPORT.json (a row per s). About an hour a run on
one core of the project's 2-core CPU in fp32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commit import short_commit
from encoded import held_out_posterior
from offset_cost import offset_cost, offset_gain
from stvae.checkpoint import write_json
from stvae.config import preset_config
from stvae.curve import eval_scores, grid_rows, table_cells
from stvae.evaluate import evaluate_run
from stvae.rundir import load_run
from stvae.train import train

GRID = Path(__file__).resolve().parents[1] / "docs" / "results" / "chairs-cpu.json"
CELL = "hierarchical-f8-beta4-seed0"
# The columns, under the curve report's keys (stvae.curve), and the offsets' cost.
COLUMNS = (
    ("d_score_rbf", "eq 19, RBF"),
    ("d_score", "eq 19, linear"),
    ("static_held_out_rbf", "chair from static (RBF)"),
    ("static_from_temporal_rbf", "chair from temporal (RBF)"),
    ("static_in_temporal_video_mean", "from its per-video means (linear)"),
    ("static_in_temporal_centred", "from it centred per video (linear)"),
    ("temporal_from_temporal_rbf", "order from temporal (RBF)"),
    ("offsets_cost", "temporal offsets' cost (nats a video)"),
    ("offsets_buy", "reconstruction their chair part buys (nats a video)"),
    ("elbo_negative_elbo", "-ELBO (nats/frame)"),
)


def cell_config(preset: str, start: float, frames: int | None = None, decay: float = 1.0):
    """The grid's hierarchical beta-4 chairs cell, with the walk's start variance and
    decay (and ``frames`` a clip where given: the order task needs 5 or more)."""
    given = {
        "data.source": "chairs",
        "model.kind": "hierarchical",
        "model.features": 8,
        "model.beta": 4.0,
        "model.walk_start": start,
        "model.walk_decay": decay,
    }
    return preset_config(preset, given | ({"data.frames": frames} if frames else {}))


def scored_row(run: Path, start: float, decay: float = 1.0) -> dict:
    """One s and lambda: eval.json's numbers (stvae.curve.eval_scores), the temporal block's
    offsets' cost and the reconstruction their chair part buys (bench/offset_cost.py)."""
    ev = evaluate_run(run)
    model, config = load_run(run)
    clips, mu, logvar = held_out_posterior(config, model, 256, 0)
    temporal = next(b for b in offset_cost(model, mu, logvar) if b["prior"] == "temporal")
    bought = offset_gain(model, clips["videos"], mu, clips["static_labels"])["temporal"]
    return {
        "walk_start": start,
        "walk_decay": decay,
        "run": str(run),
        **eval_scores(ev),
        "offsets_cost": temporal["kl"] - temporal["kl_centred"],
        "offsets_buy": bought["label"],
    }


def grid_row() -> dict | None:
    """The grid's own run of the cell (s = 1, the `cpu` preset), as its report has it (no
    offsets' cost: its weights are not kept; docs/results/chairs-offset-cost.md measured
    them)."""
    if not GRID.exists():
        return None
    rows = [r for r in grid_rows(GRID, cell_config("cpu", 1.0)) if r["name"] == CELL]
    row = {"walk_start": 1.0, "walk_decay": 1.0, "run": f"{GRID.name}: {CELL}"}
    return {**row, **rows[0]} if rows else None


def markdown(rows: list[dict], args, commit: str) -> str:
    command = f"python bench/walk_start.py --starts {' '.join(f'{x:g}' for x in args.starts)}"
    if args.decays:
        command += f" --decays {' '.join(f'{x:g}' for x in args.decays)}"
    command += f" --preset {args.preset}" + (f" --frames {args.frames}" if args.frames else "")
    grid = any(r["walk_start"] == 1.0 and r["run"].startswith(GRID.name) for r in rows)
    lines = [
        "# chairs: the hierarchical model with its random walk's start tightened or its "
        "steps decaying",
        "",
        f"Made by `{command}` at commit {commit}: the chairs grid's hierarchical beta-4 cell "
        "(4 + 4 features) trained with p(h_1^t) = N(0, s I) (`--walk-start s`; eq 8 has "
        "s = 1) or with h_i^t = lambda h_{i-1}^t + N(0, sigma2 I) (`--walk-decay lambda`; "
        "eq 8 has lambda = 1), scored by `stvae evaluate` (probe sets as the grid's) and "
        "bench/offset_cost.py (256 held-out videos, seed 0: what the temporal factor's "
        "per-video offsets cost under the run's walk prior, and how much worse the clips "
        "are reconstructed without their part that names the chair)."
        + (
            " The s = 1, lambda = 1 row is the grid's own run, from "
            "docs/results/chairs-cpu.json (its offsets are measured in chairs-offset-cost.md)."
            if grid
            else ""
        ),
        "",
        "| s | lambda | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|" + "---|" * (2 + len(COLUMNS)),
    ]
    for row in rows:
        walk = f"{row['walk_start']:g} | {row['walk_decay']:g}"
        lines.append(f"| {walk} | {table_cells(row, COLUMNS)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=float, nargs="*", default=[0.1, 0.01])
    p.add_argument("--decays", type=float, nargs="*", default=[])
    p.add_argument("--out", default="runs/walk-start")
    p.add_argument("--report", default="docs/results/chairs-walk-start")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--frames", type=int, help="frames a clip (default: the preset's)")
    args = p.parse_args()
    commit = short_commit()
    first = grid_row() if args.preset == "cpu" else None
    rows = [first] if first else []
    cells = [(f"s{s:g}", s, 1.0) for s in args.starts]
    cells += [(f"d{d:g}", 1.0, d) for d in args.decays]
    for name, start, decay in cells:
        run = Path(args.out) / name
        if not (run / "model.safetensors").exists():
            resume = (run / "config.json").exists()
            print(f"training {run} (walk start {start:g}, decay {decay:g})", file=sys.stderr)
            train(cell_config(args.preset, start, args.frames, decay), run, resume=resume)
        rows.append(scored_row(run, start, decay))
        report = Path(args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        write_json(report.with_suffix(".json"), {"commit": commit, "rows": rows})
        report.with_suffix(".md").write_text(markdown(rows, args, commit))
        print(markdown(rows, args, commit))


if __name__ == "__main__":
    main()
