"""Learning curves: every weight snapshot of a run scored as ``evaluate`` scores its final
weights, against frames seen (``stvae curve``).

A run trained with ``--snapshot-every N`` keeps its weights every N steps and at the end
in ``snapshots/`` (:func:`stvae.rundir.snapshot_path`). :func:`curve_run` scores each
snapshot not yet in ``curve.json`` with :func:`stvae.evaluate.evaluate_model` on the
same probe sets as ``evaluate`` (so the point of the final snapshot equals ``eval.json``
of the final weights, and the same snapshot scored twice gives the same numbers), adds
the static label read from the static factor on videos of the *training* images beside
the held-out ones (the gap says whether the training digits are being memorised), and
writes ``curve.json``, ``curve.png`` and TensorBoard scalars (``curve/<key>``) in the run
directory.
"""

from __future__ import annotations

import json
import sys
from itertools import groupby, takewhile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from stvae.checkpoint import atomic_write, load_weights, make_folder, read_json, write_json
from stvae.config import RUN_FILES, TrainConfig
from stvae.data import generate, released, sprites
from stvae.errors import StvaeError, check_seed
from stvae.evaluate import (
    EVAL_VERSION,
    PROBE_CHOICES,
    PROBE_SEED,
    PROBES,
    SUFFIX,
    _probe_inputs,
    evaluate_model,
    probe_sets,
    static_accuracy,
)
from stvae.hostmem import keeps_freed_memory
from stvae.model import make_model
from stvae.result import FALLBACK, EvalResult, draw_cell
from stvae.rundir import SNAPSHOTS
from stvae.runlog import cpu_name, read_segments

__all__ = [
    "CURVE_FILES",
    "CURVE_VERSION",
    "snapshots",
    "curve_run",
    "curve_report",
    "grid_rows",
    "read_grid",
    "read_curve_report",
    "against_curve",
    "plot_against",
    "AGAINST_COLUMNS",
    "run_config",
    "eval_scores",
    "table_cells",
    "REPORT_COLUMNS",
    "LEAK_COLUMNS",
    "probe_spread",
    "training_image_gap",
]

CURVE_FILES = {"json": "curve.json", "png": "curve.png"}
CURVE_VERSION = 1
TRAIN_SET = 4  # the stream of the extra set of training-image videos (probe_sets uses 1-3)


def snapshots(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every weight snapshot of a run, in step order."""
    folder = Path(run_dir) / SNAPSHOTS
    found = []
    for path in folder.glob("step-*.safetensors") if folder.is_dir() else []:
        try:
            found.append((int(path.stem.split("-", 1)[1]), path))
        except ValueError:
            continue  # not a name stvae writes
    return sorted(found)


def _checksum(path: Path) -> str:
    """The sha256 that :mod:`stvae.checkpoint` keeps in a weights file's metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("sha256", "")
    except (SafetensorError, OSError) as e:
        raise StvaeError(f"{path}: corrupt or truncated safetensors file ({e})") from None


def training_image_gap(
    model, config: TrainConfig, sets: dict, train_videos: dict, seed: int, cache: dict
) -> dict:
    """The static label from the static factor (all features for a baseline) with a probe
    fitted on the videos of training images that the ``rbf`` protocol fits on, scored on
    other videos of the same training images (``static_train``) and on the held-out score
    set (``static_held_out``; for ``rbf`` it is eval.json's ``static_accuracy_rbf``).
    Keys carry the probe's suffix (``_rbf`` for RBF, none for linear). ``cache``: posterior
    means by ``id`` of a video set (as :func:`stvae.evaluate.evaluate_model` fills it)."""
    fit = sets["fit"]["rbf"]
    k = config.model.n_static
    out = {}
    for name, scored in (("static_train", train_videos), ("static_held_out", sets["score"])):
        mu, labels, split = _probe_inputs(model, fit, scored, cache, seed)
        for p in PROBES:
            found = static_accuracy(mu, labels["static_labels"], k, seed, p, split)
            out[f"{name}{SUFFIX[p]}"] = found["static_accuracy"]
    return out


def eval_scores(ev: EvalResult) -> dict:
    """The curve's scalars from one evaluate result, under the curve report's keys
    (:data:`REPORT_COLUMNS`, :data:`LEAK_COLUMNS`), the held-out static accuracy (RBF)
    also under its report name ``static_held_out_rbf``: each point's numbers, and what a
    script that scores runs outside a curve tabulates with :func:`table_cells`."""
    out = {}
    for p in PROBES:
        sfx = SUFFIX[p]
        for key, value in (
            (f"d_score{sfx}", ev.d_score(p)),
            (f"static_accuracy{sfx}", ev.static_accuracy(p)),
        ):
            if value is not None:
                out[key] = value
        first = ev.first(p)
        d = first.disentanglement if first is not None else None
        if d and (ev.attributes is None or d.division == "model"):
            # with attributes (sprites), the temporal task under the model's own division
            # is the same for each; a baseline's division differs by attribute
            out[f"temporal_from_temporal{sfx}"] = d.temporal_acc_from_temporal
            out[f"temporal_from_static{sfx}"] = d.temporal_acc_from_static
        if d and ev.attributes is not None and d.division == "model":
            out.update(_attributes_in_temporal(ev, p))
        if d and ev.attributes is None:
            out[f"static_from_temporal{sfx}"] = d.static_acc_from_temporal
        if first is not None and ev.attributes is None and first.static_in_temporal:
            for part, value in first.static_in_temporal.items():
                out[f"static_in_temporal_{part}"] = value
    if "static_accuracy_rbf" in out:  # under its report name too (training_image_gap's)
        out["static_held_out_rbf"] = out["static_accuracy_rbf"]
    for key, value in ev.elbo.items():
        out[f"elbo_{key}"] = value
    out.update(_field_headline(ev))
    return out


def _attributes_in_temporal(ev: EvalResult, probe: str) -> dict:
    """Sprites under the model's own division: its attributes read from the temporal
    factor (``static_from_temporal[_rbf]``) and, linear, from the factor's per-video means
    and from it centred per video (``static_in_temporal_*``), each the mean over the
    attributes as ``static_accuracy`` is (the chairs' columns of the same names)."""
    scores = list(ev.targets[probe].values())
    found = [s.disentanglement.static_acc_from_temporal for s in scores if s.disentanglement]
    out = {f"static_from_temporal{SUFFIX[probe]}": float(np.mean(found))}
    leaks = [s.static_in_temporal for s in scores if s.static_in_temporal]
    for part in leaks[0] if leaks else ():
        out[f"static_in_temporal_{part}"] = float(np.mean([leak[part] for leak in leaks]))
    return out


def _field_headline(ev: EvalResult) -> dict:
    """A judged result's curve scalars (``curve --judge``; {} without): the field's
    protocol (``field_action``, ``field_IS``, ``field_<attribute>`` and their mean
    ``field_attributes``, each the mean over its prior draws) and the judge on the
    reconstructions (``recon_action``, ``recon_attributes``: the mean over attributes)."""
    out: dict = {}
    field = ev.field or {}
    if "static_from_prior" in field:
        first, second = field["static_from_prior"], field["dynamics_from_prior"]
        out["field_action"] = first["action_accuracy"]["mean"]
        out["field_IS"] = first["IS"]["mean"]
        out.update({f"field_{name}": v["mean"] for name, v in second.items()})
        out["field_attributes"] = float(np.mean([v["mean"] for v in second.values()]))
    if ev.swaps is not None:
        names = [k[len("reconstruction_") :] for k in ev.swaps if k.startswith("reconstruction_")]
        attrs = [ev.swaps[f"reconstruction_{n}"] for n in names if n != "action"]
        out["recon_action"] = ev.swaps["reconstruction_action"]
        out["swap_action"] = ev.swaps["action"]  # the temporal source's action
        out["swap_action_leak"] = ev.swaps["leak_action"]  # the static source's
        out["recon_attributes"] = float(np.mean(attrs))
    return out


def _fresh(config: TrainConfig, seed: int, probe: str, judge: bool = False) -> dict:
    """An empty curve of these settings (``judge`` named only when asked: a curve scored
    before it existed stays the same curve)."""
    return {
        "curve_version": CURVE_VERSION,
        "eval_version": EVAL_VERSION,
        "seed": seed,
        "probe": probe,
        "frames_per_step": config.frames_per_batch,
        **({"judge": True} if judge else {}),
        "points": [],
    }


def _existing(path: Path, want: dict) -> dict:
    """curve.json as far as it was scored under the same settings, else a fresh one."""
    if not path.exists():
        return want
    have = read_json(path)
    same = isinstance(have, dict) and all(
        have.get(k) == v for k, v in want.items() if k != "points"
    )
    if not same:
        print(
            f"stvae: {path} was scored with other settings; scoring every snapshot again",
            file=sys.stderr,
        )
        return want
    return have


def run_config(run_dir: Path, probe: str) -> TrainConfig:
    """The run's config, once ``probe`` and the run directory are checked."""
    if probe not in PROBE_CHOICES:
        raise StvaeError(f"probe must be one of {', '.join(PROBE_CHOICES)}; got {probe!r}")
    if not run_dir.is_dir():
        raise StvaeError(f"{run_dir}: no such run directory")
    cfg_path = run_dir / RUN_FILES["config"]
    return TrainConfig.from_dict(read_json(cfg_path), str(cfg_path))


def _snapshot_model(config: TrainConfig, path: Path):
    """The run's model with a snapshot's weights, in eval mode."""
    model = make_model(config.model)
    load_weights(path, model)
    return model.eval()


@keeps_freed_memory
def curve_run(
    run_dir: str | Path,
    seed: int = 0,
    probe: str = "both",
    quiet: bool = False,
    judge: bool = False,
) -> dict:
    """Scores every snapshot of ``run_dir`` not yet in its ``curve.json`` and writes
    ``curve.json`` (after each point, so an interrupted call keeps what it scored),
    ``curve.png`` and TensorBoard scalars. Returns the curve: ``points`` in step order,
    each with ``step``, ``frames`` seen, ``lr``, the headline numbers (``d_score``,
    ``d_score_rbf``, ``static_accuracy[_rbf]``, ``temporal_from_temporal[_rbf]``, ...,
    ``elbo_<term>``), the training-image gap (:func:`training_image_gap`, generated data
    with training images only) and the whole evaluate result under ``eval``. ``judge``:
    on data with a judge (sprites), also judged swaps and the field's protocol at each
    snapshot (:func:`_field_headline`; minutes a snapshot on a CPU)."""
    check_seed(seed)
    run_dir = Path(run_dir)
    config = run_config(run_dir, probe)
    found = snapshots(run_dir)
    if not found:
        raise StvaeError(
            f"{run_dir}: no snapshots to score (train with --snapshot-every N to keep them)"
        )
    path = run_dir / CURVE_FILES["json"]
    curve = _existing(path, _fresh(config, seed, probe, judge))
    done = {(p["step"], p["sha256"]) for p in curve["points"]}
    todo = [(step, snap, _checksum(snap)) for step, snap in found]
    todo = [t for t in todo if (t[0], t[2]) not in done]
    sets, train_videos = _probe_videos(config, seed) if todo else (None, None)
    new = []
    for step, snap, sha in todo:
        model = _snapshot_model(config, snap)
        cache: dict = {}  # this snapshot's encodings of each set
        ev = evaluate_model(model, config, None, seed, probe, sets=sets, judge=judge, cache=cache)
        point = {"step": step, "frames": step * config.frames_per_batch, "sha256": sha}
        point["lr"] = config.lr_at(max(step - 1, 0))
        point.update(eval_scores(ev))
        if train_videos is not None and "static_labels" in train_videos:
            point.update(training_image_gap(model, config, sets, train_videos, seed, cache))
        point["eval"] = ev.to_dict()
        curve["points"] = sorted(
            [p for p in curve["points"] if p["step"] != step] + [point], key=lambda p: p["step"]
        )
        write_json(path, curve)
        new.append(point)
        if not quiet:
            print(describe_point(point), flush=True)
    _tensorboard(run_dir, new)
    plot_curve(curve, run_dir / CURVE_FILES["png"], config)
    return curve


@keeps_freed_memory
def probe_spread(
    run_dir: str | Path,
    steps: list[int],
    seeds: int = 5,
    probe: str = "both",
    videos: int | None = None,
    score_videos: int | None = None,
) -> dict[int, list[dict]]:
    """How much curve points move when only the probe sets change: each snapshot of
    ``steps`` scored as :func:`curve_run` scores it (its headline numbers, without the
    training-image gap) on the probe sets of seeds 0 .. ``seeds`` - 1 (new videos of the
    same fitting and scoring images, a new fitting split, new ELBO samples), the weights
    fixed. Seed 0 gives the curve's own point. ``videos``: the size of each probe set
    (default, and the curve's, :data:`stvae.evaluate.PROBE_VIDEOS`), ``score_videos``
    that of the scoring set where it differs. A model with a static factor gains Table
    2's Acc 4 (:func:`all_feature_accuracy`). Returns {step: [headline dict per seed]}."""
    run_dir = Path(run_dir)
    config = run_config(run_dir, probe)
    if seeds < 1:
        raise StvaeError(f"seeds must be at least 1; got {seeds}")
    found = dict(snapshots(run_dir))
    missing = [s for s in steps if s not in found]
    if missing:
        have = ", ".join(map(str, found)) or "none"
        raise StvaeError(f"{run_dir}: no snapshot at step {missing[0]} (snapshots: {have})")
    models = {step: _snapshot_model(config, found[step]) for step in steps}
    out: dict[int, list[dict]] = {step: [] for step in steps}
    for seed in range(seeds):  # one seed's sets in memory at a time
        sets = probe_sets(config.data, videos, seed, score_videos)
        for step, model in models.items():
            cache: dict = {}  # this snapshot's encodings of this seed's sets
            ev = evaluate_model(
                model, config, None, seed, probe, sets=sets, judge=False, cache=cache
            )
            point = eval_scores(ev)
            if config.model.n_static:
                point.update(all_feature_accuracy(model, sets, seed, cache, probe))
            out[step].append(point)
    return out


def all_feature_accuracy(model, sets: dict, seed: int, cache: dict, probe: str = "both") -> dict:
    """Table 2's Acc 4 beside its Acc 2: the static label read from *all* features of a
    model with a static factor (static and temporal, [V, N, F] posterior means), fitted
    and scored on the probe sets that eval.json's static accuracy (Acc 2, the static
    features only) uses: ``sets`` are :func:`stvae.evaluate.probe_sets` of generated data.
    Keys ``static_all_features`` (linear) and ``static_all_features_rbf``. ``cache``:
    encodings by ``id`` of a video set, as :func:`evaluate_model` fills it."""
    out = {}
    for p in PROBES if probe == "both" else [probe]:
        mu, labels, split = _probe_inputs(model, sets["fit"][p], sets["score"], cache, seed)
        found = static_accuracy(mu, labels["static_labels"], 0, seed, p, split)
        out[f"static_all_features{SUFFIX[p]}"] = found["static_accuracy"]
    return out


def _probe_videos(config: TrainConfig, seed: int) -> tuple[dict | None, dict | None]:
    """Generated data: evaluate's probe sets and, where it has training images, videos of
    them as many as the scoring set (for :func:`training_image_gap`); else (None, None)."""
    if not config.data.generated:
        return None, None
    sets = probe_sets(config.data, seed=seed)
    if sets["fit"]["rbf"] is sets["fit"]["linear"]:  # no training images
        return sets, None
    train_videos = generate(
        config.data.source,
        len(sets["score"]["videos"]),
        config.data.frames,
        [PROBE_SEED, seed, TRAIN_SET],
        "train",
        **config.data.settings(),
    )
    return sets, train_videos


def describe_point(point: dict) -> str:
    """One line of a curve point, as ``stvae curve`` prints it."""
    parts = [f"step {point['step']:>6}  {point['frames'] / 1e6:6.2f} M frames"]
    for key, label in (
        ("d_score_rbf", "eq19 rbf"),
        ("d_score", "linear"),
        ("static_train_rbf", "static train"),
        ("static_held_out_rbf", "held-out"),
        ("temporal_from_temporal_rbf", "temporal"),
        ("elbo_negative_elbo", "-elbo"),
        ("field_action", "field action"),
        ("field_attributes", "attributes"),
    ):
        if key in point:
            parts.append(f"{label} {point[key]:.3f}")
    return "  ".join(parts)


def _tensorboard(run_dir: Path, points: list[dict]) -> None:
    """The new points' scalars as ``curve/<key>`` at their training step, in ``tb/``."""
    if not points:
        return
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return
    writer = SummaryWriter(str(run_dir / "tb"))
    try:
        for point in points:
            for key, value in point.items():
                if key not in ("step", "sha256", "eval") and isinstance(value, (int, float)):
                    writer.add_scalar(f"curve/{key}", value, point["step"])
    finally:
        writer.close()


PANELS = (
    ("eq 19 score", (("d_score_rbf", "RBF (authors')"), ("d_score", "linear (text)"))),
    (
        "static label from the static factor",
        (
            ("static_train_rbf", "training images, RBF"),
            ("static_held_out_rbf", "held-out images, RBF"),
            ("static_train", "training images, linear"),
            ("static_held_out", "held-out images, linear"),
            ("static_from_temporal_rbf", "from the temporal factor instead, held-out, RBF"),
        ),
    ),
    (
        "temporal label",
        (
            ("temporal_from_temporal_rbf", "from temporal, RBF"),
            ("temporal_from_temporal", "from temporal, linear"),
            ("temporal_from_static_rbf", "from static, RBF"),
        ),
    ),
    (
        "-ELBO terms (nats/frame)",
        (
            ("elbo_reconstruction", "reconstruction"),
            ("elbo_kl", "KL"),
        ),
    ),
)


FIELD_SUMMARY = ("field_action", "field_IS", "field_attributes")  # beside the heads
FIELD_PANEL = (
    "the field's protocol (judged)",
    (
        ("field_action", "action, static from the prior"),
        ("field_attributes", "attributes (mean), dynamics from the prior"),
        ("recon_action", "action, reconstructions"),
        ("recon_attributes", "attributes (mean), reconstructions"),
        ("swap_action_leak", "action of the static code's clip, swaps"),
    ),
)


def plot_curve(curve: dict, path: Path, config: TrainConfig) -> None:
    """curve.png: one panel per group of :data:`PANELS` (and :data:`FIELD_PANEL` for a
    judged curve) against millions of frames seen, the learning-rate decays as dotted
    lines."""
    from matplotlib.figure import Figure

    points = [_reported(p) for p in curve["points"]]  # scalars added since, from each eval
    frames = np.array([p["frames"] for p in points]) / 1e6
    panels = PANELS + ((FIELD_PANEL,) if any("field_action" in p for p in points) else ())
    fig = Figure(figsize=(13 * len(panels) / len(PANELS), 3.2))
    axes = fig.subplots(1, len(panels))
    last = points[-1]["step"] if points else 0
    decays = range(config.lr_decay_every, last + 1, config.lr_decay_every)
    for ax, (title, series) in zip(axes, panels, strict=True):
        for key, label in series:
            have = [(f, p[key]) for f, p in zip(frames, points, strict=True) if key in p]
            if have:
                xs, ys = zip(*have, strict=True)
                ax.plot(xs, ys, "-o", ms=3, lw=1, label=label)
        for step in decays:
            ax.axvline(step * config.frames_per_batch / 1e6, ls=":", lw=0.8, color="grey")
        if not config.model.n_static:  # a baseline reads it from all its features
            title = title.replace("from the static factor", "from all features")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frames seen (millions)", fontsize=8)
        if title.startswith("-ELBO"):
            ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(
        f"{config.model.kind}, {config.model.features} features, beta {config.model.beta:g}: "
        f"{len(points)} snapshots (dotted: learning-rate decays)",
        fontsize=9,
    )
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))


def _paper_numbers(config: TrainConfig) -> dict:
    """The paper's eq 19 score (Table 1) and static accuracy (Table 2 or 3) of this run's
    cell, where the paper has one."""
    from stvae.grids import GRIDS

    spec = GRIDS.get(config.data.source)
    if spec is None:
        return {}
    cell = (config.model.kind, config.model.beta)
    out = {}
    if config.model.features == spec.table1_features and cell in spec.paper_table1:
        out["d_score"] = spec.paper_table1[cell]
    for i, (heading, sizes) in enumerate(spec.static_columns):
        if sizes.get(config.model.kind) == config.model.features and cell in spec.paper_static:
            out["static_accuracy"] = spec.paper_static[cell][i]
            out["static_column"] = f"{spec.static_table} {heading}"
    return out


REPORT_COLUMNS = (
    ("d_score_rbf", "eq 19, RBF"),
    ("d_score", "eq 19, linear"),
    ("static_train_rbf", "static from static, training images (RBF)"),
    ("static_held_out_rbf", "static from static, held-out (RBF)"),
    ("static_accuracy", "static from static, held-out (linear)"),
    ("temporal_from_temporal_rbf", "temporal from temporal (RBF)"),
    ("temporal_from_static_rbf", "temporal from static (RBF)"),
    ("static_from_temporal_rbf", "static from temporal (RBF)"),
    ("elbo_negative_elbo", "-ELBO (nats/frame)"),
)
# Where the temporal factor's knowledge of the static label lives (linear probes,
# :func:`stvae.probes.static_in_temporal`): a third table where the points have it.
LEAK_COLUMNS = (
    ("static_from_temporal", "static from temporal"),
    ("static_in_temporal_video_mean", "from its per-video means"),
    ("static_in_temporal_centred", "from it centred per video"),
)
# A grid report's row (stvae reproduce) -> the report's keys, for ``curve --beside``.
GRID_KEYS = {
    "d_score_rbf": ("d_score_rbf",),
    "d_score": ("d_score",),
    "static_held_out_rbf": ("static_accuracy_rbf",),
    "static_accuracy": ("static_accuracy",),
    "temporal_from_temporal_rbf": ("accuracies_rbf", "temporal_acc_from_temporal"),
    "temporal_from_static_rbf": ("accuracies_rbf", "temporal_acc_from_static"),
    "static_from_temporal_rbf": ("accuracies_rbf", "static_acc_from_temporal"),
    "elbo_negative_elbo": ("negative_elbo",),
    "static_from_temporal": ("accuracies", "static_acc_from_temporal"),
    "static_in_temporal_video_mean": ("static_in_temporal", "video_mean"),
    "static_in_temporal_centred": ("static_in_temporal", "centred"),
}


def _baseline_words(cfg: TrainConfig) -> str:
    """What the report adds for a model without a static factor (else nothing)."""
    if cfg.model.n_static:
        return ""
    return (
        f" The {cfg.model.kind} model has no static factor: its static label is read from "
        "all its features (Table 2 Acc 4), and eq 19 and the temporal columns take the "
        "division of its features that scores best (Table 1's rule for baselines)."
    )


def _labels(cfg: TrainConfig) -> list[str]:
    """The report's column labels: a model without a static factor reads the static label
    from all its features."""
    if cfg.model.n_static:
        return [label for _, label in REPORT_COLUMNS]
    return [
        label.replace("static from static", "static from all features")
        for _, label in REPORT_COLUMNS
    ]


def read_grid(path: str | Path) -> list[dict]:
    """A grid report's rows (a JSON list of runs, each with its ``name``), else one line."""
    rows = read_json(Path(path))
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r for r in rows):
        raise StvaeError(f"{path}: not a grid report (a JSON list of runs, as reproduce writes)")
    return rows


def grid_rows(path: str | Path, config: TrainConfig) -> list[dict]:
    """The runs of a grid report (``stvae reproduce``'s ``<dataset>-<preset>.json``) at
    ``config``'s beta and number of features, each as ``name``, ``model``, ``frames`` (seen
    in training) and the curve report's keys it has (:data:`GRID_KEYS`): what ``stvae
    curve --beside`` sets beside a curve. The grid must be of the run's dataset; its rows
    do not name one."""
    out = []
    for row in read_grid(path):
        if row.get("beta") != config.model.beta or row.get("features") != config.model.features:
            continue
        found = {"name": row["name"], "model": row.get("model"), "frames": row.get("frames_seen")}
        for key, where in GRID_KEYS.items():
            value = row
            for part in where:
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, (int, float)):
                found[key] = value
        out.append(found)
    return out


# What ``curve --against`` compares with another run's curve, where both runs' points have it.
AGAINST_COLUMNS = (
    ("d_score_rbf", "eq 19, RBF"),
    ("static_held_out_rbf", "static, held-out (RBF)"),
    ("static_from_temporal_rbf", "static from temporal (RBF)"),
    ("temporal_from_temporal_rbf", "temporal from temporal (RBF)"),
    ("field_action", "action, static from the prior (judged)"),
    ("field_attributes", "attributes, dynamics from the prior (judged)"),
)


def read_curve_report(path: str | Path) -> dict:
    """A curve report's JSON (``stvae curve --report STEM`` writes ``STEM.json``), else one
    line."""
    report = read_json(Path(path))
    if not (
        isinstance(report, dict)
        and isinstance(report.get("points"), list)
        and isinstance(report.get("config"), dict)
    ):
        raise StvaeError(f"{path}: not a curve report (the STEM.json of stvae curve --report)")
    return report


def against_curve(path: str | Path, config: TrainConfig) -> dict:
    """Another run's curve report as ``stvae curve --against`` sets it beside this run's
    (``config``): its run, model kind, size and beta, and each of its points' frames seen,
    step and :data:`AGAINST_COLUMNS` values. The two runs must be on the same data."""
    other = read_curve_report(path)
    theirs = TrainConfig.from_dict(other["config"], f"{path}: config")
    if theirs.data.source != config.data.source:
        raise StvaeError(
            f"{path}: a curve of a run on {theirs.data.source}, not on {config.data.source}"
        )
    keys = ("frames", "step", *(k for k, _ in AGAINST_COLUMNS))
    return {
        "report": Path(path).name,
        "run": other.get("run"),
        "model": theirs.model.kind,
        "features": theirs.model.features,
        "beta": theirs.model.beta,
        "points": [{k: p[k] for k in keys if k in p} for p in other["points"]],
    }


def _reported(point: dict) -> dict:
    """A curve point as its report keeps it: without the whole evaluate result, and with
    any headline key added to :func:`eval_scores` after the point was scored read from that
    result (the point's own values stand)."""
    filled = eval_scores(EvalResult.from_dict(point["eval"])) if "eval" in point else {}
    return {**filled, **{k: v for k, v in point.items() if k != "eval"}}


def curve_report(
    run_dir: str | Path,
    stem: str | Path,
    commit: str | None = None,
    beside: str | None = None,
    against: str | None = None,
) -> dict:
    """Writes ``stem.json``, ``stem.md`` and ``stem.png``: a run's learning curve (its
    ``curve.json`` as :func:`curve_run` scored it, without the whole evaluate results),
    where the run stands (steps done, finished or not, hours in the loop), the CPU it was
    scored on, the commit it was trained at (``commit``, as given), the paper's numbers
    for its cell and, given a grid report ``beside``, that grid's runs of the same beta
    and size (:func:`grid_rows`). Given another run's curve report ``against``
    (:func:`against_curve`), a table of both runs at the frames both were scored at and
    ``stem-against.png``, both curves in one plot. Returns the JSON written."""
    import shutil

    run_dir, stem = Path(run_dir), Path(stem)
    config = TrainConfig.from_dict(read_json(run_dir / RUN_FILES["config"]))
    curve = read_json(run_dir / CURVE_FILES["json"])
    rows = None if beside is None else grid_rows(beside, config)
    other = None if against is None else against_curve(against, config)
    last = {}
    metrics = run_dir / RUN_FILES["metrics"]
    if metrics.exists():
        lines = [ln for ln in metrics.read_text().splitlines() if ln.strip()]
        last = json.loads(lines[-1]) if lines else {}
    report = {
        "run": run_dir.name,
        "trained_at_commit": commit,
        "cpu": cpu_name(),
        "config": config.to_dict(),
        "steps": config.steps,
        "steps_done": last.get("step", 0),
        "finished": (run_dir / RUN_FILES["weights"]).exists(),
        "loop_hours": last.get("wall_s", 0.0) / 3600,
        "paper": _paper_numbers(config),
        "segments": _segments(run_dir),
        "points": [_reported(p) for p in curve["points"]],
    }
    final = _final_field(curve["points"])
    if final:
        report["field"] = final
    if rows is not None:
        report["beside"] = {"report": Path(beside).name, "runs": rows}
    if other is not None:
        report["against"] = other
    make_folder(stem.parent)
    write_json(stem.with_suffix(".json"), report)
    atomic_write(stem.with_suffix(".md"), lambda p: p.write_text(_report_markdown(report, stem)))
    png = run_dir / CURVE_FILES["png"]
    if png.exists():
        atomic_write(stem.with_suffix(".png"), lambda p: shutil.copyfile(png, p))
    if other is not None:
        plot_against(report, stem.with_name(f"{stem.name}-against.png"))
    return report


_SEGMENT_KEYS = {"start_step", "machine", "precision", "threads"}  # what a report names


def _segments(run_dir: Path) -> list[dict]:
    """segments.jsonl's records (what trained which steps; none for runs from before it),
    up to one that does not parse or lacks what the report names (the report is not the
    place to refuse a run)."""
    records = read_segments(run_dir / RUN_FILES["segments"])
    return list(takewhile(lambda r: _SEGMENT_KEYS <= r.keys(), records))


def _trained_on(segments: list[dict]) -> str:
    """' Trained from step 0 on X (bf16, 2 threads), from step 7,848 on Y (...).' or '';
    processes in a row on the same machine, precision and threads are one stretch, with
    the steps its later processes resumed at."""
    if not segments:
        return ""
    parts = []
    for (machine, precision, threads), run in groupby(
        segments, key=lambda r: (r["machine"], r["precision"], r["threads"])
    ):
        starts = [r["start_step"] for r in run]
        resumed = ", ".join(f"{s:,}" for s in starts[1:])
        parts.append(
            f"from step {starts[0]:,} on {machine} ({precision}, "
            f"{threads} thread{'s' * (threads != 1)}"
            + (f"; resumed at step{'s' * (len(starts) > 2)} {resumed}" if resumed else "")
            + ")"
        )
    return " Trained " + ", ".join(parts) + " (segments.jsonl)."


def _report_markdown(report: dict, stem: Path) -> str:
    cfg = TrainConfig.from_dict(report["config"])
    state = (
        "finished"
        if report["finished"]
        else f"in progress: step {report['steps_done']:,} of {report['steps']:,}"
    )
    lines = [
        f"# Learning curve: {report['run']}",
        "",
        f"Made by `stvae curve RUN --report {stem}`"
        + (
            f" (trained at commit {report['trained_at_commit']})"
            if report["trained_at_commit"]
            else ""
        )
        + f", scored on {report['cpu']}.",
        "",
        f"{cfg.model.kind} model, {cfg.model.features} features, beta {cfg.model.beta:g}, seed "
        f"{cfg.seed}, on {cfg.data.source}: {cfg.steps:,} steps of {cfg.batch_videos} videos x "
        f"{cfg.data.frames} frames, Adam {cfg.lr:g} x {cfg.lr_decay:g} every "
        f"{cfg.lr_decay_every:,} steps, precision {cfg.precision}. The run is {state}, "
        f"{report['loop_hours']:.2f} h in the training loop"
        + ("" if report["finished"] else " so far")
        + " (on a machine shared with other work; not a speed measurement)."
        + _trained_on(report.get("segments", [])),
        "",
        "Each row scores one weight snapshot as `stvae evaluate` scores final weights (same "
        "probe sets); *training images* fits and scores the static probe on videos made "
        "from the images the model trained on (the training digits, characters or chairs), "
        "*held-out* scores it on held-out ones; a dash is a column that this data's "
        "evaluation does not score." + _baseline_words(cfg),
        "",
        "| step | frames (M) | lr | " + " | ".join(_labels(cfg)) + " |",
        "|" + "---|" * (3 + len(REPORT_COLUMNS)),
    ]
    for p in report["points"]:
        cells = table_cells(p)
        lines.append(f"| {p['step']:,} | {p['frames'] / 1e6:.2f} | {p['lr']:g} | {cells} |")
    grid = report.get("beside")
    for row in grid["runs"] if grid else []:
        lines.append(f"| {row['name']} | {_millions(row['frames'])} | | {table_cells(row)} |")
    lines += _paper_lines(report["paper"])
    if grid:
        lines += [
            "",
            f"Rows named by a run: the runs of `{grid['report']}` at this beta and size "
            "(`stvae curve --beside`), each scored once, at the end of its own schedule "
            "(frames seen beside it).",
        ]
    lines += _leak_table(report["points"], grid["runs"] if grid else [])
    lines += _field_table(report["points"])
    lines += _final_field_lines(report.get("field"))
    lines += ["", f"![learning curve]({stem.name}.png)", ""]
    lines += _against_lines(report, stem)
    return "\n".join(lines)


def _against_names(report: dict) -> tuple[str, str]:
    """How the table and plot of ``curve --against`` name the two runs: by model kind,
    or by run where both are of one kind."""
    mine, other = report["config"]["model"]["kind"], report["against"]["model"]
    return (mine, other) if mine != other else (report["run"], report["against"]["run"])


def _against_pairs(report: dict) -> tuple[list[tuple[dict, dict]], list[tuple[str, str]]]:
    """The two runs' points at the frames both were scored at, and the columns of
    :data:`AGAINST_COLUMNS` that both runs' points have."""
    theirs = {p["frames"]: p for p in report["against"]["points"] if "frames" in p}
    pairs = [(p, theirs[p["frames"]]) for p in report["points"] if p["frames"] in theirs]
    columns = [
        (k, label) for k, label in AGAINST_COLUMNS if any(k in a and k in b for a, b in pairs)
    ]
    return pairs, columns


def _against_lines(report: dict, stem: Path) -> list[str]:
    """The markdown of ``curve --against``: both runs at the frames both were scored at."""
    other = report.get("against")
    if not other:
        return []
    mine, theirs = _against_names(report)
    pairs, columns = _against_pairs(report)
    lines = [
        f"## Beside {other['run']} ({other['model']}, {other['features']} features, beta "
        f"{other['beta']:g})",
        "",
        f"From its curve report `{other['report']}` (`stvae curve --against`), at the frames "
        "both runs were scored at. A model without a static factor reads the static label "
        "from all its features.",
        "",
    ]
    if not pairs:
        return [*lines, "The two runs have no point at the same frames seen.", ""]
    head = [f"{label}: {name}" for _, label in columns for name in (mine, theirs)]
    lines += ["| step | frames (M) | " + " | ".join(head) + " |", "|" + "---|" * (2 + len(head))]
    for a, b in pairs:
        cells = [table_cells(p, [(k, "")]) for k, _ in columns for p in (a, b)]
        lines.append(f"| {a['step']:,} | {a['frames'] / 1e6:.2f} | " + " | ".join(cells) + " |")
    return [*lines, "", f"![both curves]({stem.name}-against.png)", ""]


def plot_against(report: dict, path: Path) -> None:
    """``stem-against.png``: one panel per column both runs have (:data:`AGAINST_COLUMNS`),
    each run's points against millions of frames seen."""
    from matplotlib.figure import Figure

    names = _against_names(report)
    columns = [
        (k, label)
        for k, label in AGAINST_COLUMNS
        if any(k in p for p in report["points"])
        and any(k in p for p in report["against"]["points"])
    ]
    fig = Figure(figsize=(3.4 * max(1, len(columns)), 3.0))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(columns))))
    for ax, (key, label) in zip(axes, columns, strict=False):
        for name, points in zip(
            names, (report["points"], report["against"]["points"]), strict=True
        ):
            have = [(p["frames"] / 1e6, p[key]) for p in points if key in p and "frames" in p]
            if have:
                xs, ys = zip(*have, strict=True)
                ax.plot(xs, ys, "-o", ms=3, lw=1, label=name)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("frames seen (millions)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"{names[0]} beside {names[1]}", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))


def _paper_lines(paper: dict) -> list[str]:
    """The main table's row of the paper's numbers for the run's cell and the note under
    the table that says where they come from ([] when the paper has none)."""
    if not paper:
        return []
    from stvae.config import PRESETS

    cells = {
        "d_score_rbf": paper.get("d_score"),
        "static_held_out_rbf": paper.get("static_accuracy"),
    }
    row = [f"{cells[k]:.2f}" if cells.get(k) is not None else "" for k, _ in REPORT_COLUMNS]
    frames = PRESETS["paper"].steps * PRESETS["paper"].frames_per_batch / 1e6
    return [
        f"| paper | {frames:.2f} | | " + " | ".join(row) + " |",
        "",
        f"Paper: eq 19 from Table 1, static accuracy from {paper.get('static_column', '—')} "
        "(the authors' code scored both with the RBF protocol).",
    ]


def _millions(frames) -> str:
    return "—" if frames is None else f"{frames / 1e6:.2f}"


def table_cells(values: dict, columns=REPORT_COLUMNS) -> str:
    """One table row's cells for ``columns`` ((key, label) pairs): each value to 3
    decimals, an ``elbo_`` key's to 1, a missing one '—'."""

    def cell(key: str) -> str:
        if key not in values:
            return "—"
        return f"{values[key]:.1f}" if key.startswith("elbo") else f"{values[key]:.3f}"

    return " | ".join(cell(k) for k, _ in columns)


def _leak_table(points: list[dict], rows: list[dict]) -> list[str]:
    """Where the temporal factor's knowledge of the static label lives, at each snapshot
    (and in the grid's runs beside it): [] when no point has it."""
    if not any(LEAK_COLUMNS[1][0] in p for p in points):
        return []
    lines = [
        "",
        "The static label read from the temporal factor by the linear probe of eq 19: from "
        "the whole factor, from its per-video means alone (a constant offset in each "
        "video) and from it with those means taken out (only what changes within a video; "
        "`static_in_temporal` in eval.json). A baseline's temporal factor is the division "
        "eq 19 chose. Where the data has several static attributes (sprites), each column "
        "is the mean over them, under the model's own division (a baseline, whose division "
        "differs by attribute, has none).",
        "",
        "| step | frames (M) | " + " | ".join(label for _, label in LEAK_COLUMNS) + " |",
        "|" + "---|" * (2 + len(LEAK_COLUMNS)),
    ]
    for p in points:
        cells = table_cells(p, LEAK_COLUMNS)
        lines.append(f"| {p['step']:,} | {p['frames'] / 1e6:.2f} | {cells} |")
    for row in rows:
        frames = _millions(row["frames"])
        lines.append(f"| {row['name']} | {frames} | {table_cells(row, LEAK_COLUMNS)} |")
    return lines


def _data_order(names: list[str]) -> list[str]:
    """Attribute ``names`` in their data's own order (JSON sorts them), after the others
    (the action)."""
    for order in (sprites.ATTRIBUTES, released.ATTRIBUTES):
        if set(order) <= set(names):
            return [*(n for n in names if n not in order), *order]
    return names


def _field_table(points: list[dict]) -> list[str]:
    """The report's table of a judged curve (``curve --judge``): the field's protocol at
    each snapshot (each head's accuracy, the mean of its prior draws) and the judge on the
    reconstructions; [] for a curve without."""
    judged = [p for p in points if "field_action" in p]
    if not judged:
        return []
    names = [k[len("field_") :] for k in judged[-1] if k.startswith("field_")]
    heads = [f"field_{n}" for n in _data_order(names) if f"field_{n}" not in FIELD_SUMMARY]
    keys = ["field_action", "field_IS", *heads, "recon_action", "recon_attributes"]
    keys += ["swap_action", "swap_action_leak"]
    labels = ["action", "IS", *(h[len("field_") :] for h in heads)]
    labels += ["reconstructions: action", "reconstructions: attributes"]
    labels += ["swaps: action of the dynamics' clip", "swaps: action of the static code's clip"]
    lines = [
        "",
        "The field's protocol at each snapshot (`stvae curve --judge`; `stvae.field`): the "
        "action judged with the static code drawn from the prior (accuracy, IS), each "
        "attribute judged with the dynamics drawn from the prior, the judge on the "
        "plain reconstructions, and on swaps (one clip's static code decoded with another's "
        "dynamics): how often it names the action of the clip the dynamics came from, and "
        "how often that of the clip the static code came from (the action held in the "
        "static code); eval.json of each point has the chance and fallback shares.",
        "",
        "| step | frames (M) | " + " | ".join(labels) + " |",
        "|" + "---|" * (2 + len(keys)),
    ]
    for p in judged:
        cells = [f"{p[k]:.3f}" if k in p else "—" for k in keys]
        lines.append(f"| {p['step']:,} | {p['frames'] / 1e6:.2f} | " + " | ".join(cells) + " |")
    return lines


def _final_field(points: list[dict]) -> dict | None:
    """The whole field protocol (:func:`stvae.field.field_protocol`, without its feature
    sets) of the last judged point, with its step and frames; None for a curve without."""
    judged = [p for p in points if (p.get("eval") or {}).get("field")]
    if not judged:
        return None
    last = judged[-1]
    field = {k: v for k, v in last["eval"]["field"].items() if not k.endswith("_set")}
    return {"step": last["step"], "frames": last["frames"], **field}


def _final_field_lines(final: dict | None) -> list[str]:
    """The field's table of the last judged point: both directions, each head's accuracy
    (mean ± sd over the prior draws), chance (the scored set's commonest class), the
    judge's fallback (the share of clips given its commonest verdict; over
    :data:`stvae.result.FALLBACK` the head has fallen back) and the judge on real clips;
    [] without."""
    if not final or "fallback" not in final:
        return []

    cell = draw_cell

    def fell(mean: float, text: str) -> str:
        return text + (" (fell back)" if mean > FALLBACK else "")

    fb, chance, judge = final["fallback"], final["chance"], final["judge_accuracy"]
    first, second = final["static_from_prior"], final["dynamics_from_prior"]
    kept = final.get("reconstruction", {})  # evaluations before it: none
    rows = [
        (
            "static code from the prior",
            "action",
            first["action_accuracy"],
            fb["static_from_prior"]["action"],
        )
    ]
    rows += [
        ("dynamics from the prior", n, second[n], fb["dynamics_from_prior"][n])
        for n in _data_order(list(second))
    ]
    rows = [(d, n, cell(a), fell(f["mean"], cell(f))) for d, n, a, f in rows]
    recon = fb["reconstruction"]
    rows += [
        ("reconstructions", n, f"{kept[n]:.3f}" if n in kept else "—", fell(v, f"{v:.3f}"))
        for n, v in ((n, recon[n]) for n in _data_order(list(recon)))
    ]
    decoded = {"means": "the prior's conditional means", "draws": "the prior's draws"}
    lines = [
        "",
        f"The field's table at step {final['step']:,} ({final['frames'] / 1e6:.2f} M frames; "
        "the last point, at a finished run's end the final weights), on "
        f"{final['clips']} held-out clips, each action equally often (`stvae.judge.field_set`), "
        f"{final['draws']} prior draws a direction (mean ± sd), "
        f"the dynamics decoded as {decoded[final['dynamics']]}. With the static code drawn "
        f"from the prior: IS {cell(first['IS'])} (at most 9), H(y|x) {cell(first['H(y|x)'])}, "
        f"H(y) {cell(first['H(y)'])} (at most ln 9 = 2.197). *Fallback*: the share of clips "
        f"the judge gives its commonest verdict (over {FALLBACK:g}: fell back, the accuracy "
        "is that class's share); *chance*: the scored clips' commonest class.",
        "",
        "| clips judged | head | accuracy | chance | fallback | judge on real clips |",
        "|---|---|---|---|---|---|",
    ]
    for direction, head, acc, fallback in rows:
        lines.append(
            f"| {direction} | {head} | {acc} | {chance[head]:.3f} | {fallback} "
            f"| {judge[head]:.3f} |"
        )
    return lines
