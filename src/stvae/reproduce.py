"""Running the grids of Tables 1-3 (:mod:`stvae.grids`): train, evaluate, report.

Every run is scored with both probes of :mod:`stvae.evaluate`: the authors' protocol (RBF
SVC, fitted on training-digit videos), which made the paper's numbers and is the column
set beside them, and the paper's text (linear SVMs). A run whose row in the report's JSON
was scored by the current evaluation is kept; a finished run directory whose
``config.json`` matches its grid cell is scored again when its row is older, not trained
again; a run directory of another configuration is refused. So a grid can be stopped,
restarted and re-scored.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import threading
import time
from functools import cache
from pathlib import Path

import torch

from stvae import __version__
from stvae.checkpoint import (
    FileLock,
    RunLock,
    atomic_write,
    make_folder,
    read_json,
    write_json,
)
from stvae.config import (
    HOW_FIELDS,
    PRESETS,
    RUN_FILES,
    TrainConfig,
    preset_config,
    train_fields,
)
from stvae.data import registry
from stvae.errors import StvaeError
from stvae.evaluate import evaluate_run
from stvae.grids import BETAS, GRIDS, GridRun, GridSpec, cell_config, grid
from stvae.kinds import KINDS
from stvae.report import report_markdown, report_tables
from stvae.result import EVAL_VERSION, SUFFIX, EvalResult, Scores, read_result
from stvae.train import resume_config, train

__all__ = [
    "BETAS",
    "RunLock",
    "GridRun",
    "GridSpec",
    "GRIDS",
    "grid",
    "cell_config",
    "reproduce",
    "GridRows",
    "report_markdown",
    "report_tables",
    "result_row",
    "trained_frames",
    "code_version",
]


HOW = ("device", "device_name", "precision", "compiled", "version")  # how a run trained


@cache
def code_version() -> str:
    """stvae's version, with the git commit when it runs from a checkout (``.dirty`` when
    the package's source has uncommitted changes), e.g. ``0.2.0+g1a2b3c4``."""
    root = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")


def result_row(
    run: GridRun,
    ev: EvalResult,
    wall_s: float,
    how: dict | None = None,
    config: TrainConfig | None = None,
) -> dict:  # long: a row flattens every probe's scores, the judge's and how it trained
    """One report row: the grid cell ``run``, the scores of its evaluation under each
    probe (keys without a suffix: linear; ``_rbf``: the authors' protocol), its wall time
    and, where known, how it trained (``how``: the :data:`HOW` keys) and what it saw
    (``config``: :func:`trained_frames`)."""
    row = {
        "name": run.name,
        "model": run.model,
        "beta": run.beta,
        "features": run.features,
        "seed": run.seed,
        "eval_version": ev.eval_version,
        **_sizes(run),
        "options": ev.options,
        "temporal_definition": ev.temporal_definition,
        **(trained_frames(config) if config is not None else {}),
    }
    for probe, sfx in SUFFIX.items():
        first = ev.first(probe)
        if first is None or first.disentanglement is None:
            continue
        row[f"d_score{sfx}"] = ev.d_score(probe)
        row[f"static_accuracy{sfx}"] = ev.static_accuracy(probe)
        row[f"temporal_chance{sfx}"] = first.disentanglement.temporal_chance
        if probe in ev.probe_sets:
            row[f"image_overlap{sfx}"] = ev.probe_sets[probe]["image_overlap"]
        if ev.attributes is not None:  # sprites: one score per static attribute
            row[f"attributes{sfx}"] = {
                name: {
                    "d_score": s.d_score,
                    "static_accuracy": s.static_accuracy,
                    "static_chance": s.static_chance,
                    **s.disentanglement.accuracies,
                }
                for name, s in ev.targets[probe].items()
            }
        else:
            row.update(_single_target(first, sfx))
    first = ev.first("linear")
    d = first.disentanglement
    row.update(
        {
            "division": d.division,
            "ceiling": d.ceiling,
            "ceiling_this_balance": d.ceiling_this_balance,
            "negative_elbo": ev.elbo["negative_elbo"],
            "wall_s": wall_s,
            **{k: v for k, v in (how or {}).items() if k in HOW},
        }
    )
    if ev.attributes is None and first.static_in_temporal is not None:
        row["static_in_temporal"] = first.static_in_temporal
    if ev.swaps is not None:
        row["swaps"] = ev.swaps
    if ev.field is not None:
        row["field"] = ev.field
    between = first.order_between if ev.attributes is None else None
    if between:
        row["d_score_order_between"] = between.d_score
        row["accuracies_order_between"] = between.accuracies
    return row


def trained_frames(config: TrainConfig) -> dict:
    """What a run of ``config`` saw: ``clip_frames`` (its clips' length) and
    ``frames_seen`` (steps x videos a batch x clip length)."""
    return {
        "clip_frames": config.data.frames,
        "frames_seen": config.steps * config.frames_per_batch,
    }


def _sizes(run: GridRun) -> dict:
    """A row's sizes of its kind's own factors (none for a baseline, whose division the
    evaluation chooses) and, for a run of a size of its own, its variant."""
    out = {"variant": run.variant} if run.variant else {}
    if KINDS[run.model].split:
        out.update(static_features=run.features - run.temporal, temporal_features=run.temporal)
    return out


def _single_target(scores: Scores, sfx: str) -> dict:
    """A row's columns for data with one static label: the division and its accuracies."""
    d = scores.disentanglement
    out = {
        f"static_set{sfx}": d.static_set,
        f"temporal_set{sfx}": d.temporal_set,
        f"accuracies{sfx}": d.accuracies,
        f"static_chance{sfx}": scores.static_chance,
    }
    if d.chosen_on_fit is not None:
        chosen = d.chosen_on_fit
        out[f"chosen_on_fit{sfx}"] = {"d_score": chosen.d_score, "static_set": chosen.static_set}
    return out


def _current(version: int | None, field: dict | None, baseline: bool, dataset: str) -> bool:
    """Whether a row or an evaluation holds what the current evaluation gives for
    ``dataset``: its version and, for data with a judge, the field's protocol (added
    after version 2 was written, and only for those data, so rows of other data stay),
    for a baseline with the change its redraws make (which decides whether the protocol
    applies to its division; added later, for baselines only, whose rows alone it can
    change)."""
    if version != EVAL_VERSION:
        return False
    if not registry.DATASETS[dataset].judge:
        return True
    if field is None:
        return False
    return not baseline or "change" in field or "static_set" not in field


def _row_current(row: dict, dataset: str) -> bool:
    """:func:`_current` of a report row (:func:`result_row`'s keys)."""
    baseline = not row.get("static_features")
    return _current(row.get("eval_version"), row.get("field"), baseline, dataset)


def _scored(run_dir: Path, dataset: str) -> EvalResult | None:
    """The run's eval.json when the current evaluation wrote it, else None (also when it
    cannot be read as a result: scored again)."""
    path = run_dir / "eval.json"
    if not path.exists():
        return None
    try:
        ev = read_result(path)
    except StvaeError:
        return None
    return ev if _current(ev.eval_version, ev.field, not ev.static_features, dataset) else None


def reproduce(
    dataset: str = "bouncing-mnist",
    preset: str = "cpu",
    out: str | Path = "runs/reproduce",
    report_dir: str | Path = "docs/results",
    seeds: int = 1,
    limit: int | None = None,
    log=print,
    only: list[str] | None = None,
    parallel: int = 1,
    kinds: list[str] | None = None,
) -> list[dict]:
    """Trains and evaluates the grid, rewriting the report after every finished run.

    Run directories go to ``out/<dataset>-<preset>/<run name>``; the report to
    ``report_dir/<dataset>-<preset>.{json,md}``. ``limit`` stops after that many newly
    trained runs (the rest stay for a restart; scoring a finished run again does not
    count). ``only`` keeps the runs whose names (``<model>-f<features>-beta<beta>-seed<seed>``)
    match one of these shell patterns, e.g. ``["slow-f8-beta1-*"]``; runs already in the
    report stay in it. ``parallel`` > 1 trains and scores that many runs at once, each in
    its own process (spawned; its output in ``out/<dataset>-<preset>/<run name>.log``,
    its share of the CPU threads), for a device that one run leaves mostly idle; the
    report is still written by this process alone, after each run. ``kinds`` adds Table 1
    rows of registered kinds the dataset's grid does not name (:attr:`GridSpec.kinds`).
    Returns the report's rows (a :class:`GridRows`, whose ``stopped`` says whether
    SIGTERM stopped the grid).
    """
    if dataset not in GRIDS:
        raise StvaeError(f"unknown dataset {dataset!r}; choose from {', '.join(GRIDS)}")
    if preset not in PRESETS:
        raise StvaeError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if seeds < 1:
        raise StvaeError(f"seeds must be at least 1; got {seeds}")
    if parallel < 1:
        raise StvaeError(f"parallel must be at least 1; got {parallel}")
    runs = grid(dataset, seeds, kinds or ())
    if only:
        for pattern in only:
            if not any(fnmatch.fnmatchcase(r.name, pattern) for r in runs):
                raise StvaeError(
                    f"--only {pattern!r} matches no run of the {dataset} grid "
                    f"(names look like {runs[0].name})"
                )
        runs = [r for r in runs if any(fnmatch.fnmatchcase(r.name, p) for p in only)]
    out, report_dir = Path(out) / f"{dataset}-{preset}", Path(report_dir)
    make_folder(report_dir)
    stem = report_dir / f"{dataset}-{preset}"
    done = read_json(stem.with_suffix(".json")) if stem.with_suffix(".json").exists() else []
    rows = {r["name"]: r for r in done}
    make_folder(out)
    with RunLock(out):  # one grid process per folder: a second one is refused
        _fill_frames(rows, stem, dataset, preset, seeds)
        args = (runs, rows, out, stem, dataset, preset, seeds, limit, log)
        if parallel > 1:
            return _run_parallel(*args, parallel)
        return _run_grid(*args)


def _fill_frames(rows: dict, stem: Path, dataset: str, preset: str, seeds: int) -> None:
    """Rows from before rows recorded what their run saw (:func:`trained_frames`) get it
    from the grid's schedule, which every cell shares; the report is written again."""
    seen = trained_frames(preset_config(preset, {"data.source": dataset}))
    older = {n: {**r, **seen} for n, r in rows.items() if "frames_seen" not in r}
    if older:
        rows.update(_write_report(stem, older, dataset, preset, seeds))


def _train_and_score(config: TrainConfig, run_dir: Path, resume: bool, version: str) -> dict:
    """Trains one grid run and scores it: {"stopped", "step"} and, when it finished,
    {"wall", "how", "ev"}. Module-level, so that a spawned process can run it too."""
    t0 = time.perf_counter()
    summary = train(config, run_dir, resume=resume)
    if summary["stopped"]:  # SIGTERM: the run is resumable, the grid stops here
        return {"stopped": True, "step": summary["step"]}
    wall = time.perf_counter() - t0 + summary["earlier_wall_s"]  # all processes
    how = {
        "wall_s": wall,
        "resumed": resume,
        "version": version,
        **{k: summary[k] for k in HOW if k in summary},
    }
    write_json(run_dir / "wall.json", how)
    return {
        "stopped": False,
        "step": summary["step"],
        "wall": wall,
        "how": how,
        "ev": evaluate_run(run_dir),
    }


def _plan(run: GridRun, rows, out, dataset, preset) -> tuple[str, TrainConfig, dict | None]:
    """What the grid does with ``run``: "skip" (scored by this evaluation), "score" (its
    finished run again) or "train" (from the start, or continued from its checkpoint),
    with its cell's config and the run directory's saved one. A run directory of another
    configuration is refused."""
    run_dir = out / run.name
    config = cell_config(dataset, preset, run)
    if _row_current(rows.get(run.name, {}), dataset):
        return "skip", config, None
    config_path = run_dir / RUN_FILES["config"]
    saved = read_json(config_path) if config_path.exists() else None
    if saved is not None:
        # the cell's config, but what the run resolved "auto" to (data_on: its stream of
        # videos); only how it trains may differ (HOW_FIELDS: the cell's then apply)
        cell = {n: config.get(n) for n in train_fields()}
        config, differ = resume_config(run_dir, cell, HOW_FIELDS)
        if differ:
            raise StvaeError(
                f"{run_dir}: holds a run of another configuration than grid cell "
                f"{run.name}: {', '.join(differ)}; move it away or use another --out"
            )
    if (run_dir / RUN_FILES["weights"]).exists() and (run_dir / "wall.json").exists():
        return "score", config, saved
    return "train", config, saved


def _rescore(
    run: GridRun, run_dir: Path, saved: dict, dataset: str, log
) -> tuple[dict, float, dict]:
    how = read_json(run_dir / "wall.json")
    how.setdefault("version", saved.get("version"))
    ev = _scored(run_dir, dataset)
    if ev is None:
        log(f"[{run.name}] scoring again (evaluation version {EVAL_VERSION})")
        ev = evaluate_run(run_dir)
    return ev, how["wall_s"], how


def _add_row(rows, run, ev, wall, how, config, stem, dataset, preset, seeds, log) -> None:
    row = result_row(run, ev, wall, how, config)
    rows.update(_write_report(stem, {run.name: row}, dataset, preset, seeds))
    log(
        f"[{run.name}] d-score {row['d_score_rbf']:.2f} (RBF, the authors' protocol), "
        f"{row['d_score']:.2f} (linear)  static accuracy {row['static_accuracy_rbf']:.3f} / "
        f"{row['static_accuracy']:.3f}  ({wall:.0f} s)"
    )


def _run_grid(runs, rows, out, stem, dataset, preset, seeds, limit, log) -> list[dict]:
    version = code_version()  # of the code this process loaded
    trained = 0
    for run in runs:
        action, config, saved = _plan(run, rows, out, dataset, preset)
        if action == "skip":
            continue
        run_dir = out / run.name
        if action == "score":
            ev, wall, how = _rescore(run, run_dir, saved, dataset, log)
        else:
            if limit is not None and trained >= limit:
                break
            if run.name in rows:
                log(f"[{run.name}] its row predates this evaluation and its run is gone")
            log(f"[{run.name}] training ({preset} preset)")
            # a run directory of this cell with no final weights is continued, from its
            # checkpoint or the one before (a kill between the two renames leaves only
            # that), or from the start when it was killed before its first checkpoint
            done = _train_and_score(config, run_dir, saved is not None, version)
            if done["stopped"]:
                log(f"[{run.name}] stopped at step {done['step']}; the same command resumes")
                return _final_report(rows, stem, dataset, preset, seeds, stopped=True)
            ev, wall, how = done["ev"], done["wall"], done["how"]
            trained += 1
        _add_row(rows, run, ev, wall, how, config, stem, dataset, preset, seeds, log)
    return _final_report(rows, stem, dataset, preset, seeds)


class GridRows(list):
    """The report's rows in grid order (a list), and whether SIGTERM stopped the grid
    (``stopped``: a run is left at a checkpoint; the same command resumes it)."""

    stopped: bool = False


def _final_report(rows, stem, dataset, preset, seeds, stopped: bool = False) -> GridRows:
    """The report's rows in grid order, rendered once more (also when nothing new ran)."""
    rows.update(_write_report(stem, {}, dataset, preset, seeds))
    ordered = GridRows(_ordered(rows, dataset, seeds))
    ordered.stopped = stopped
    return ordered


def _worker(conn, threads: int, log_path: Path, config, run_dir: Path, resume: bool, version):
    """A spawned process's grid run: :func:`_train_and_score` with its output (file
    descriptors 1 and 2, so compilers' messages too) in ``log_path``; sends ("ok", result),
    ("error", a user error's line) or ("crash", what) back over ``conn``."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    torch.set_num_threads(threads)
    try:
        conn.send(("ok", _train_and_score(config, run_dir, resume, version)))
    except StvaeError as e:
        conn.send(("error", str(e)))
    except BaseException as e:
        conn.send(("crash", f"{type(e).__name__}: {e}"))
        raise  # the traceback goes to the run's log


def _run_parallel(
    runs, rows, out, stem, dataset, preset, seeds, limit, log, parallel
):  # long: the pool's start, wait, stop and collect steps must share one try/finally
    """:func:`_run_grid` with up to ``parallel`` runs training at once, each in a spawned
    process. SIGTERM (to this process or its group) stops every run at a checkpoint, as it
    stops one; the same command resumes them."""
    version = code_version()
    todo = []
    for run in runs:
        action, config, saved = _plan(run, rows, out, dataset, preset)
        if action == "score":
            ev, wall, how = _rescore(run, out / run.name, saved, dataset, log)
            _add_row(rows, run, ev, wall, how, config, stem, dataset, preset, seeds, log)
        elif action == "train" and (limit is None or len(todo) < limit):
            todo.append((run, config, saved is not None))
    threads = max(1, torch.get_num_threads() // min(parallel, max(1, len(todo))))
    context = multiprocessing.get_context("spawn")
    running: dict = {}  # receiving end -> (run, process, config)
    stopping = False

    def on_sigterm(signum, frame):
        nonlocal stopping
        stopping = True
        for _, process, _ in running.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # each stops at its next step

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    failure = None
    try:
        while (todo and not stopping and failure is None) or running:
            while todo and len(running) < parallel and not stopping and failure is None:
                run, config, resume = todo.pop(0)
                log_path = out / f"{run.name}.log"
                mine, theirs = context.Pipe(duplex=False)
                args = (theirs, threads, log_path, config, out / run.name, resume, version)
                process = context.Process(target=_worker, args=args, daemon=False)
                process.start()
                theirs.close()
                running[mine] = (run, process, config)
                log(
                    f"[{run.name}] training ({preset} preset) in process {process.pid}; "
                    f"its output: {log_path}"
                )
            for conn in multiprocessing.connection.wait(list(running), timeout=1.0):
                run, process, config = running.pop(conn)
                try:
                    kind, result = conn.recv()  # before join: a large answer fills the pipe
                except EOFError:  # it died before it could answer
                    kind, result = None, None
                process.join()
                if kind is None:
                    killed = process.exitcode == -signal.SIGTERM  # before train() took over
                    code = f"exit code {process.exitcode}"
                    kind, result = ("stopped", None) if killed else ("crash", code)
                if kind == "error":
                    failure = failure or StvaeError(f"[{run.name}] {result}")
                elif kind == "crash":
                    log_path = out / f"{run.name}.log"
                    see = f"; see {log_path}" if log_path.exists() else ""
                    failure = failure or StvaeError(f"[{run.name}] failed ({result}){see}")
                elif kind == "stopped" or result["stopped"]:
                    step = (
                        "before training or while scoring"
                        if result is None
                        else f"at step {result['step']}"
                    )
                    log(f"[{run.name}] stopped {step}; the same command resumes")
                    stopping = True
                else:
                    ev, wall, how = result["ev"], result["wall"], result["how"]
                    _add_row(rows, run, ev, wall, how, config, stem, dataset, preset, seeds, log)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if failure is not None:
        raise failure
    return _final_report(rows, stem, dataset, preset, seeds, stopped=stopping)


def _ordered(rows: dict[str, dict], dataset: str, seeds: int) -> list[dict]:
    """The report's rows in grid order; rows of seeds beyond ``seeds`` stay, at the end."""
    kinds = [r["model"] for r in rows.values() if "model" in r]
    most = max([seeds, *(r["seed"] + 1 for r in rows.values())])
    names = [r.name for r in grid(dataset, most, kinds)]
    return [rows[n] for n in names if n in rows]


def _write_report(stem: Path, new: dict[str, dict], dataset: str, preset: str, seeds: int):
    """Merges the rows ``new`` (by name) into the report on disk and writes it again, under
    the report's lock: two grids (other ``--out`` folders, one report) keep each other's
    rows. Returns every row of the report by name; writes nothing while it has none."""
    path = stem.with_suffix(".json")
    with FileLock(stem.with_name(f".{stem.name}.lock"), blocking=True):
        rows = {r["name"]: r for r in (read_json(path) if path.exists() else [])}
        rows.update(new)
        if not rows:
            return rows
        ordered = _ordered(rows, dataset, seeds)
        write_json(path, ordered)
        md = report_markdown(ordered, dataset, preset, seeds)
        atomic_write(stem.with_suffix(".md"), lambda p: p.write_text(md))
    return rows
