"""The grid of Tables 1 and 2 on Bouncing MNIST: train, evaluate, report.

Table 1 compares the three model kinds at 4 latent features in total; Table 2 the
static accuracy of the hierarchical model with 2 and 4 features per factor against
baselines with 2 and 4 features in total; all at beta 1, 2 and 4 (section 4.4). A run
whose result is already in the report's JSON, or whose run directory holds an
``eval.json``, is not trained again, so the grid can be stopped and restarted.
"""

from __future__ import annotations

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

__all__ = ["GridRun", "grid", "reproduce", "PAPER_TABLE1", "PAPER_TABLE2", "DATASETS"]

DATASETS = ("bouncing-mnist",)
BETAS = (1.0, 2.0, 4.0)
# Paper, Table 1 (d-score, Bouncing MNIST, 4 features) and Table 2 (static accuracy).
PAPER_TABLE1 = {
    ("hierarchical", 1.0): 6.71, ("hierarchical", 2.0): 6.74, ("hierarchical", 4.0): 6.82,
    ("slow", 1.0): 4.70, ("slow", 2.0): 5.78, ("slow", 4.0): 6.38,
    ("vae", 1.0): 1.08, ("vae", 2.0): 1.70, ("vae", 4.0): 1.71,
}  # fmt: skip
PAPER_TABLE2 = {  # (model, beta) -> (Acc 4, Acc 2); "Acc x": x features used by the probe
    ("hierarchical", 1.0): (0.83, 0.71), ("hierarchical", 2.0): (0.88, 0.64),
    ("hierarchical", 4.0): (0.82, 0.69),
    ("slow", 1.0): (0.58, 0.11), ("slow", 2.0): (0.65, 0.12), ("slow", 4.0): (0.66, 0.13),
    ("vae", 1.0): (0.80, 0.13), ("vae", 2.0): (0.52, 0.12), ("vae", 4.0): (0.51, 0.13),
}  # fmt: skip


@dataclass(frozen=True)
class GridRun:
    model: str
    beta: float
    features: int  # in total; the hierarchical model gives half to each factor
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}-f{self.features}-beta{self.beta:g}-seed{self.seed}"

    @property
    def probe_features(self) -> int:
        """Features the Table 2 probe sees: the static half, or all of a baseline's."""
        return self.features // 2 if self.model == "hierarchical" else self.features


def grid(seeds: int = 1) -> list[GridRun]:
    """Table 1 runs first (4 features in total), then Table 2's other sizes."""
    sizes = [("hierarchical", 4), ("slow", 4), ("vae", 4)]
    sizes += [("hierarchical", 8), ("slow", 2), ("vae", 2)]
    return [
        GridRun(model, beta, features, seed)
        for seed in range(seeds)
        for model, features in sizes
        for beta in BETAS
    ]


def _result_row(run: GridRun, ev: dict, wall_s: float) -> dict:
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
    }


def reproduce(
    dataset: str = "bouncing-mnist",
    preset: str = "cpu",
    out: str | Path = "runs/reproduce",
    report_dir: str | Path = "docs/results",
    seeds: int = 1,
    limit: int | None = None,
    log=print,
) -> list[dict]:
    """Trains and evaluates the grid, rewriting the report after every finished run.

    ``limit`` stops after that many newly trained runs (the rest stay for a restart).
    Returns the report's rows.
    """
    if dataset not in DATASETS:
        raise StvaeError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    if preset not in PRESETS:
        raise StvaeError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if seeds < 1:
        raise StvaeError(f"seeds must be at least 1; got {seeds}")
    out, report_dir = Path(out), Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = report_dir / f"{dataset}-{preset}"
    done = read_json(stem.with_suffix(".json")) if stem.with_suffix(".json").exists() else []
    rows = {r["name"]: r for r in done}
    trained = 0
    for run in grid(seeds):
        if run.name in rows:
            continue
        run_dir = out / run.name
        config = PRESETS[preset].replace(
            seed=run.seed,
            **{"model.kind": run.model, "model.beta": run.beta, "model.features": run.features},
        )
        if (run_dir / "eval.json").exists() and (run_dir / RUN_FILES["weights"]).exists():
            ev = read_json(run_dir / "eval.json")
            wall = read_json(run_dir / "wall.json")["wall_s"]
        else:
            if limit is not None and trained >= limit:
                break
            log(f"[{run.name}] training ({preset} preset)")
            resume = (run_dir / RUN_FILES["checkpoint"]).exists()
            t0 = time.perf_counter()
            train(config, run_dir, resume=resume)
            wall = time.perf_counter() - t0
            write_json(run_dir / "wall.json", {"wall_s": wall, "resumed": resume})
            ev = evaluate_run(run_dir)
            trained += 1
        rows[run.name] = _result_row(run, ev, wall)
        log(
            f"[{run.name}] d-score {rows[run.name]['d_score']:.2f}  "
            f"static accuracy {rows[run.name]['static_accuracy']:.3f}  ({wall:.0f} s)"
        )
        ordered = [rows[r.name] for r in grid(seeds) if r.name in rows]
        write_json(stem.with_suffix(".json"), ordered)
        stem.with_suffix(".md").write_text(report_markdown(ordered, dataset, preset, seeds))
    return [rows[r.name] for r in grid(seeds) if r.name in rows]


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report_markdown(rows: list[dict], dataset: str, preset: str, seeds: int) -> str:
    """Tables 1 and 2 as measured, with the paper's numbers beside them."""
    cfg = PRESETS[preset]
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["beta"], r["features"]), []).append(r)
    chance_t = [r["temporal_chance"] for r in rows]
    chance_s = [r["static_chance"] for r in rows]
    ceil = [r["ceiling_this_balance"] for r in rows]
    lines = [
        f"# {dataset}: Tables 1 and 2, `{preset}` preset",
        "",
        f"Made by `stvae reproduce --dataset {dataset} --preset {preset} --seeds {seeds}`; "
        f"stvae {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()} "
        f"({torch.get_num_threads()} threads).",
        "",
        f"Schedule: {cfg.steps} steps of {cfg.batch_videos} videos x {cfg.data.frames} frames, "
        f"Adam {cfg.lr:g} x {cfg.lr_decay:g} every {cfg.lr_decay_every} steps, "
        f"beta warm-up {cfg.beta_warmup} steps, precision {cfg.precision}, "
        f"sigma2 {cfg.model.sigma2:g}. "
        "Scores are on 256 fresh videos of held-out digit images; probes train on half of "
        "the videos and are scored on the other half.",
        "",
        f"Runs done: {len(rows)} of {len(grid(seeds))}. Cells show mean ± standard deviation "
        "over seeds where there is more than one.",
        "",
        "## Table 1: disentanglement score (eq 19), 4 features in total",
        "",
        "| model | beta | d-score | paper | static set won | wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for (model, beta), paper in PAPER_TABLE1.items():
        cell = by.get((model, beta, 4), [])
        won = cell[0]["division"] if cell else ""
        if cell and model != "hierarchical":
            won = f"{cell[0]['static_set']} ({won})"
        walls = _mean_spread([r["wall_s"] for r in cell]).replace("not run", "")
        lines.append(
            f"| {model} | {beta:g} | {_mean_spread([r['d_score'] for r in cell])} | {paper:.2f} "
            f"| {won} | {walls} |"
        )
    if rows:
        lines += [
            "",
            "The score's ceiling with balanced classes is "
            f"sqrt(9 x 10) = {rows[0]['ceiling']:.2f}. "
            f"A blind probe scores {statistics.mean(chance_t):.3f} on location (the centre cell "
            f"holds most frames) and {statistics.mean(chance_s):.3f} on the digit, so a perfect "
            f"model reaches at most about {statistics.mean(ceil):.2f} on this data.",
        ]
    lines += [
        "",
        "## Table 2: static classification accuracy (linear SVM on the digit)",
        "",
        "The hierarchical model is probed on its static factor only (2 or 4 features, of 4 "
        "or 8 in total); baselines on all of their 2 or 4 features.",
        "",
        "| model | beta | Acc 4 | paper Acc 4 | Acc 2 | paper Acc 2 |",
        "|---|---|---|---|---|---|",
    ]
    for (model, beta), (p4, p2) in PAPER_TABLE2.items():
        total = {4: 8 if model == "hierarchical" else 4, 2: 4 if model == "hierarchical" else 2}
        a4 = _mean_spread([r["static_accuracy"] for r in by.get((model, beta, total[4]), [])])
        a2 = _mean_spread([r["static_accuracy"] for r in by.get((model, beta, total[2]), [])])
        lines.append(f"| {model} | {beta:g} | {a4} | {p4:.2f} | {a2} | {p2:.2f} |")
    lines += ["", "## Every run", ""]
    lines += [
        "| run | d-score | static acc | -ELBO (nats/frame) | wall (s) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['d_score']:.2f} | {r['static_accuracy']:.3f} "
            f"| {r['negative_elbo']:.1f} | {r['wall_s']:.0f} |"
        )
    total_wall = sum(r["wall_s"] for r in rows)
    lines += ["", f"Total training time of these runs: {total_wall / 3600:.2f} h.", ""]
    return "\n".join(lines)
