"""The grids of Tables 1-3: train, evaluate, report.

Bouncing MNIST: Table 1 compares the three model kinds at 4 latent features in total;
Table 2 the static accuracy of the hierarchical model with 2 and 4 features per factor
against baselines with 2 and 4 features in total. Rotating chairs: Table 1 at 8 features
in total; Table 3 the static accuracy of the hierarchical model with 4 features per
factor against baselines with 4. All at beta 1, 2 and 4 (section 4.4). A run whose result
is already in the report's JSON, or whose run directory holds an ``eval.json``, is not
trained again, so a grid can be stopped and restarted.
"""

from __future__ import annotations

import fnmatch
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stvae import __version__
from stvae.checkpoint import read_json, write_json
from stvae.errors import StvaeError
from stvae.evaluate import evaluate_run
from stvae.train import PRESETS, RUN_FILES, train

__all__ = ["GridRun", "GridSpec", "GRIDS", "grid", "reproduce", "report_markdown", "result_row"]

BETAS = (1.0, 2.0, 4.0)
KINDS = ("hierarchical", "slow", "vae")


@dataclass(frozen=True)
class GridSpec:
    """What the paper reports for one dataset, and the runs that reproduce it."""

    table1_features: int  # features in total of the Table 1 runs
    paper_table1: dict[tuple[str, float], float]  # (model, beta) -> d-score
    static_table: str  # "Table 2" or "Table 3"
    # static-accuracy columns: (heading, {model: features in total of the run probed})
    static_columns: tuple[tuple[str, dict[str, int]], ...]
    paper_static: dict[tuple[str, float], tuple[float, ...]]  # one value per column


def _paper(values: list) -> dict[tuple[str, float], float]:
    """Paper values listed model by model (hierarchical, slow, vae), beta 1, 2, 4 in each."""
    cells = [(m, b) for m in KINDS for b in BETAS]
    return dict(zip(cells, values, strict=True))


GRIDS: dict[str, GridSpec] = {
    "bouncing-mnist": GridSpec(
        table1_features=4,
        paper_table1=_paper([6.71, 6.74, 6.82, 4.70, 5.78, 6.38, 1.08, 1.70, 1.71]),
        static_table="Table 2",
        static_columns=(
            ("Acc 4", {"hierarchical": 8, "slow": 4, "vae": 4}),
            ("Acc 2", {"hierarchical": 4, "slow": 2, "vae": 2}),
        ),
        paper_static=_paper(
            [
                (0.83, 0.71),
                (0.88, 0.64),
                (0.82, 0.69),
                (0.58, 0.11),
                (0.65, 0.12),
                (0.66, 0.13),
                (0.80, 0.13),
                (0.52, 0.12),
                (0.51, 0.13),
            ]
        ),
    ),
    "chairs": GridSpec(
        table1_features=8,
        paper_table1=_paper([1.79, 1.73, 1.81, 1.19, 1.57, 1.39, 1.27, 1.24, 1.35]),
        static_table="Table 3",
        static_columns=(("Accuracy", {"hierarchical": 8, "slow": 4, "vae": 4}),),
        paper_static=_paper(
            [(0.33,), (0.48,), (0.59,), (0.24,), (0.34,), (0.37,), (0.52,), (0.51,), (0.54,)]
        ),
    ),
}
DATASETS = tuple(GRIDS)


@dataclass(frozen=True)
class GridRun:
    model: str
    beta: float
    features: int  # in total; the hierarchical model gives half to each factor
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}-f{self.features}-beta{self.beta:g}-seed{self.seed}"


def grid(dataset: str = "bouncing-mnist", seeds: int = 1) -> list[GridRun]:
    """Table 1 runs first, then the other sizes the static-accuracy table needs."""
    spec = GRIDS[dataset]
    sizes = [(m, spec.table1_features) for m in KINDS]
    for _, column in spec.static_columns:
        sizes += [(m, f) for m, f in column.items() if (m, f) not in sizes]
    return [
        GridRun(model, beta, features, seed)
        for seed in range(seeds)
        for model, features in sizes
        for beta in BETAS
    ]


HOW = ("device", "precision", "compiled")  # how a run trained, from train()'s summary


def result_row(run: GridRun, ev: dict, wall_s: float, how: dict | None = None) -> dict:
    """One report row: the grid cell ``run``, the scores of its ``eval.json``, its wall
    time and, where known, how it trained (``how``: the :data:`HOW` keys)."""
    d = ev["disentanglement"]
    return {
        "name": run.name,
        "model": run.model,
        "beta": run.beta,
        "features": run.features,
        "seed": run.seed,
        "d_score": d["d_score"],
        "static_set": d["static_set"],
        "temporal_set": d["temporal_set"],
        "division": d["division"],
        "accuracies": {k: d[k] for k in d if "_acc_from_" in k},
        "static_accuracy": ev["static_accuracy"],
        "static_chance": ev["static_chance"],
        "temporal_chance": d["temporal_chance"],
        "ceiling": d["ceiling"],
        "ceiling_this_balance": d["ceiling_this_balance"],
        "negative_elbo": ev["elbo"]["negative_elbo"],
        "wall_s": wall_s,
        **{k: v for k, v in (how or {}).items() if k in HOW},
        **(
            {"d_score_order_between": ev["disentanglement_order_between"]["d_score"]}
            if "disentanglement_order_between" in ev
            else {}
        ),
    }


def reproduce(
    dataset: str = "bouncing-mnist",
    preset: str = "cpu",
    out: str | Path = "runs/reproduce",
    report_dir: str | Path = "docs/results",
    seeds: int = 1,
    limit: int | None = None,
    log=print,
    only: list[str] | None = None,
) -> list[dict]:
    """Trains and evaluates the grid, rewriting the report after every finished run.

    ``limit`` stops after that many newly trained runs (the rest stay for a restart).
    ``only`` keeps the runs whose names (``<model>-f<features>-beta<beta>-seed<seed>``)
    match one of these shell patterns, e.g. ``["slow-f8-beta1-*"]``; runs already in the
    report stay in it. Returns the report's rows.
    """
    if dataset not in GRIDS:
        raise StvaeError(f"unknown dataset {dataset!r}; choose from {', '.join(GRIDS)}")
    if preset not in PRESETS:
        raise StvaeError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if seeds < 1:
        raise StvaeError(f"seeds must be at least 1; got {seeds}")
    runs = grid(dataset, seeds)
    if only:
        for pattern in only:
            if not any(fnmatch.fnmatchcase(r.name, pattern) for r in runs):
                raise StvaeError(
                    f"--only {pattern!r} matches no run of the {dataset} grid "
                    f"(names look like {runs[0].name})"
                )
        runs = [r for r in runs if any(fnmatch.fnmatchcase(r.name, p) for p in only)]
    out, report_dir = Path(out), Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = report_dir / f"{dataset}-{preset}"
    done = read_json(stem.with_suffix(".json")) if stem.with_suffix(".json").exists() else []
    rows = {r["name"]: r for r in done}
    trained = 0
    for run in runs:
        if run.name in rows:
            continue
        run_dir = out / run.name
        config = PRESETS[preset].replace(
            seed=run.seed,
            **{
                "model.kind": run.model,
                "model.beta": run.beta,
                "model.features": run.features,
                "data.source": dataset,
            },
        )
        if (run_dir / "eval.json").exists() and (run_dir / RUN_FILES["weights"]).exists():
            ev = read_json(run_dir / "eval.json")
            how = read_json(run_dir / "wall.json")
            wall = how["wall_s"]
        else:
            if limit is not None and trained >= limit:
                break
            log(f"[{run.name}] training ({preset} preset)")
            resume = (run_dir / RUN_FILES["checkpoint"]).exists()
            t0 = time.perf_counter()
            summary = train(config, run_dir, resume=resume)
            if summary["stopped"]:  # SIGTERM: the run is resumable, the grid stops here
                log(f"[{run.name}] stopped at step {summary['step']}; the same command resumes")
                break
            wall = time.perf_counter() - t0 + summary["earlier_wall_s"]  # all processes
            how = {"wall_s": wall, "resumed": resume, **{k: summary[k] for k in HOW}}
            write_json(run_dir / "wall.json", how)
            ev = evaluate_run(run_dir)
            trained += 1
        rows[run.name] = result_row(run, ev, wall, how)
        log(
            f"[{run.name}] d-score {rows[run.name]['d_score']:.2f}  "
            f"static accuracy {rows[run.name]['static_accuracy']:.3f}  ({wall:.0f} s)"
        )
        ordered = [rows[r.name] for r in grid(dataset, seeds) if r.name in rows]
        _write_report(stem, ordered, dataset, preset, seeds)
    ordered = [rows[r.name] for r in grid(dataset, seeds) if r.name in rows]
    if ordered:  # also when nothing new ran: the report is rendered again from its rows
        _write_report(stem, ordered, dataset, preset, seeds)
    return ordered


def _write_report(stem: Path, rows: list[dict], dataset: str, preset: str, seeds: int) -> None:
    write_json(stem.with_suffix(".json"), rows)
    stem.with_suffix(".md").write_text(report_markdown(rows, dataset, preset, seeds))


def _how(row: dict) -> str:
    """How a row's run trained, e.g. cpu bf16 compiled; empty for older rows."""
    if "device" not in row:
        return ""
    return f"{row['device']} {row['precision']} {'compiled' if row['compiled'] else 'eager'}"


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report_markdown(rows: list[dict], dataset: str, preset: str, seeds: int) -> str:
    """Table 1 and the static-accuracy table as measured, with the paper's numbers beside."""
    spec, cfg = GRIDS[dataset], PRESETS[preset]
    by: dict[tuple[str, float, int], list[dict]] = {}
    for r in rows:
        by.setdefault((r["model"], r["beta"], r["features"]), []).append(r)
    total = len(grid(dataset, seeds))
    lines = [
        f"# {dataset}: Table 1 and {spec.static_table}, `{preset}` preset",
        "",
        f"Made by `stvae reproduce --dataset {dataset} --preset {preset} --seeds {seeds}`; "
        f"stvae {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()} "
        f"({torch.get_num_threads()} threads).",
        "",
        f"Schedule: {cfg.steps} steps of {cfg.batch_videos} videos x {cfg.data.frames} frames, "
        f"Adam {cfg.lr:g} x {cfg.lr_decay:g} every {cfg.lr_decay_every} steps, "
        f"beta warm-up {cfg.beta_warmup} steps, precision {cfg.precision}, "
        f"sigma2 {cfg.model.sigma2:g}. Scores are on 256 fresh held-out videos; probes "
        "train on half of the videos and are scored on the other half.",
        "",
        f"Runs done: {len(rows)} of {total}. Cells show mean ± standard deviation over seeds "
        "where there is more than one.",
        "",
        f"## Table 1: disentanglement score (eq 19), {spec.table1_features} features in total",
        "",
        "| model | beta | d-score | paper | division | wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for (model, beta), paper in spec.paper_table1.items():
        cell = by.get((model, beta, spec.table1_features), [])
        won = cell[0]["division"] if cell else ""
        if cell and model != "hierarchical":
            won = f"static {cell[0]['static_set']} ({won})"
        walls = f"{statistics.mean(r['wall_s'] for r in cell):.0f}" if cell else ""
        lines.append(
            f"| {model} | {beta:g} | {_mean_spread([r['d_score'] for r in cell])} | {paper:.2f} "
            f"| {won} | {walls} |"
        )
    if rows:
        lines += [
            "",
            f"The score's ceiling with balanced classes is {rows[0]['ceiling']:.2f}. A blind "
            f"probe scores {statistics.mean(r['temporal_chance'] for r in rows):.3f} on the "
            f"temporal target and {statistics.mean(r['static_chance'] for r in rows):.3f} on "
            "the static one, so a perfect model reaches at most about "
            f"{statistics.mean(r['ceiling_this_balance'] for r in rows):.2f} on this data.",
        ]
    heads = [h for h, _ in spec.static_columns]
    lines += [
        "",
        f"## {spec.static_table}: static classification accuracy (linear SVM)",
        "",
        "The hierarchical model is probed on its static factor only (half of its "
        "features); baselines on all of their features. Features the probe sees: "
        + "; ".join(
            f"{head}: "
            + ", ".join(f"{m} {n // 2 if m == 'hierarchical' else n}" for m, n in sizes.items())
            for head, sizes in spec.static_columns
        )
        + ".",
        "",
        "| model | beta | " + " | ".join(f"{h} | paper {h}" for h in heads) + " |",
        "|---|---|" + "---|---|" * len(heads),
    ]
    for (model, beta), paper in spec.paper_static.items():
        cells = []
        for (_, column), p in zip(spec.static_columns, paper, strict=True):
            got = by.get((model, beta, column[model]), [])
            cells.append(f"{_mean_spread([r['static_accuracy'] for r in got])} | {p:.2f}")
        lines.append(f"| {model} | {beta:g} | " + " | ".join(cells) + " |")
    between = any("d_score_order_between" in r for r in rows)
    lines += ["", "## Every run", ""]
    if between:
        lines += [
            "The order task's paper probe is linear in the three frames' features side by "
            "side, which cannot express order ((z2 - z1)(z3 - z2) > 0 is a product); the "
            "last column scores the same runs with a linear probe on per-feature "
            'differences that can (`order_task(probe="between")` in `stvae.evaluate`).',
            "",
        ]
    extra = " d-score, order-aware probe |" if between else ""
    lines += [
        "| run | d-score | static acc | -ELBO (nats/frame) | wall (s) |" + extra + " trained |",
        "|---|---|---|---|---|" + ("---|" if between else "") + "---|",
    ]
    for r in rows:
        cell = f" {r.get('d_score_order_between', float('nan')):.2f} |" if between else ""
        lines.append(
            f"| {r['name']} | {r['d_score']:.2f} | {r['static_accuracy']:.3f} "
            f"| {r['negative_elbo']:.1f} | {r['wall_s']:.0f} |" + cell + f" {_how(r)} |"
        )
    total_wall = sum(r["wall_s"] for r in rows)
    lines += [
        "",
        "Trained: the device, precision and whether the step was compiled, as the run "
        "recorded them (blank for runs from before stvae recorded them). Wall time is the "
        "training call's (setup, loop, saving; not the evaluation), plus for a resumed run "
        "its earlier processes' time in the loop; a resumed run with a blank 'trained' cell "
        "counts only its last process.",
        "",
        f"Total training time of these runs: {total_wall / 3600:.2f} h.",
        "",
    ]
    return "\n".join(lines)
