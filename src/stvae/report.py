"""The report of a grid: Tables 1-3 under both probes, as markdown (section 4.4).

Rows are what :func:`stvae.reproduce.result_row` makes of a run's eval.json; keys without
a suffix are the linear probe's (the paper's text), ``_rbf`` the authors' protocol.
"""

from __future__ import annotations

import platform
import statistics

import numpy as np
import torch

from stvae import __version__
from stvae.config import PRESETS
from stvae.data import registry
from stvae.data.sprites import ATTRIBUTES
from stvae.grids import BETAS, GRIDS, grid, table1_cells
from stvae.kinds import KINDS

__all__ = [
    "report_tables",
    "report_markdown",
    "attribute_tables",
    "quoted_tables",
]


def _how(row: dict) -> str:
    """How a row's run trained, e.g. cpu bf16 compiled (stvae 0.2.0); empty for older rows."""
    if "device" not in row:
        return ""
    device = row.get("device_name", row["device"])  # the GPU's model, where recorded
    how = f"{device} {row['precision']} {'compiled' if row['compiled'] else 'eager'}"
    return how + (f" (stvae {row['version']})" if row.get("version") else "")


def _paper(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _mean_spread(values: list[float], digits: int = 2) -> str:
    """One seed: the value; several: mean ± sample standard deviation; none: not run."""
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _threads() -> str:
    n = torch.get_num_threads()
    return f"{n} thread" if n == 1 else f"{n} threads"


def _kinds(rows: list[dict]) -> list[str]:
    """The kinds of the report's rows: a grid's own, and any run beside them (``--kind``)."""
    return list(dict.fromkeys(r["model"] for r in rows))


def _by_cell(rows: list[dict]) -> dict[tuple[str, float, int], list[dict]]:
    """The rows of the tables' cells, by (model, beta, features in total); runs of a size
    of their own (a ``variant``: :func:`_by_variant`) are not among them."""
    by: dict[tuple[str, float, int], list[dict]] = {}
    for r in rows:
        if not r.get("variant"):
            by.setdefault((r["model"], r["beta"], r["features"]), []).append(r)
    return by


def _by_variant(rows: list[dict], dataset: str) -> dict[str, list[dict]]:
    """The rows of the grid's runs at sizes of their own (GridSpec.sized), by variant
    (e.g. ``dsvae-full-s256-t32``), in the grid's order, each seed in one list."""
    by: dict[str, list[dict]] = {r.variant: [] for r in grid(dataset) if r.variant}
    for r in rows:
        if r.get("variant") in by:
            by[r["variant"]].append(r)
    return by


def _head(*cells: str) -> list[str]:
    """A markdown table's header and rule."""
    return ["| " + " | ".join(cells) + " |", "|---" * len(cells) + "|"]


def attribute_tables(
    rows: list[dict], dataset: str = "sprites"
) -> dict[str, list[str]]:  # long: the sprites tables' columns, one block per table
    """The sprites report's tables (:func:`report_tables` for data with several static
    attributes): Table 1 as the mean of the attributes' d-scores, each attribute's
    d-score, and the accuracies behind them, each cell a mean ± sd over seeds."""
    spec = GRIDS[dataset]
    f1, by = spec.table1_features, _by_cell(rows)
    found = next((r["attributes"] for r in rows if "attributes" in r), {})
    names = [n for n in ATTRIBUTES if n in found or not found]  # the generator's order
    names += [n for n in found if n not in names]

    def cell(model, beta, key, digits=2, name=None, sub="d_score"):
        got = [r for r in by.get((model, beta, f1), []) if key in r]
        return _mean_spread([r[key][name][sub] if name else r[key] for r in got], digits)

    table1 = _head(
        "model",
        "beta",
        "d-score, mean of the attributes, RBF (authors' protocol)",
        "d-score, mean, linear",
        "seeds",
    )
    each = _head("model", "beta", "probe", *names)
    accuracies = _head(
        "model",
        "beta",
        "probe",
        *(f"{n} from static" for n in names),
        "action from static",
        "action from temporal",
    )
    for model, beta, _ in table1_cells(dataset, _kinds(rows)):
        table1.append(
            f"| {model} | {beta:g} | {cell(model, beta, 'd_score_rbf')} "
            f"| {cell(model, beta, 'd_score')} | {len(by.get((model, beta, f1), []))} |"
        )
        for sfx in ("_rbf", ""):
            key, probe = f"attributes{sfx}", "RBF" if sfx else "linear"
            each.append(
                f"| {model} | {beta:g} | {probe} | "
                + " | ".join(cell(model, beta, key, 2, n) for n in names)
                + " |"
            )
            action = [
                cell(model, beta, key, 3, names[0], sub)
                for sub in ("temporal_acc_from_static", "temporal_acc_from_temporal")
            ]
            accuracies.append(
                f"| {model} | {beta:g} | {probe} | "
                + " | ".join(cell(model, beta, key, 3, n, "static_acc_from_static") for n in names)
                + f" | {' | '.join(action)} |"
            )
    swaps = _head(
        "model",
        "beta",
        "action kept",
        *(f"{n} taken" for n in names),
        "reconstructions: action",
        "reconstructions: attributes (mean)",
        "judge: action",
        "judge: attributes (mean)",
    )
    for model, beta, _ in table1_cells(dataset, _kinds(rows)):
        if not KINDS[model].split:  # swaps need a division of the model's own
            continue
        got = [r["swaps"] for r in by.get((model, beta, f1), []) if "swaps" in r]
        judge = [statistics.mean(g["judge_accuracy"][n] for n in names) for g in got]
        recon = [statistics.mean(g[f"reconstruction_{n}"] for n in names) for g in got]
        swaps.append(
            f"| {model} | {beta:g} | {_mean_spread([g['action'] for g in got], 3)} | "
            + " | ".join(_mean_spread([g[n] for g in got], 3) for n in names)
            + f" | {_mean_spread([g['reconstruction_action'] for g in got], 3)} "
            f"| {_mean_spread(recon, 3)} "
            f"| {_mean_spread([g['judge_accuracy']['action'] for g in got], 3)} "
            f"| {_mean_spread(judge, 3)} |"
        )
    return {
        "table1": table1,
        "attributes": each,
        "accuracies": accuracies,
        "swaps": swaps,
        "field": field_table(rows, names, dataset),
        "sized": sized_table(rows, names, dataset),
    }


def sized_table(rows: list[dict], names: list[str], dataset: str = "sprites") -> list[str]:
    """The runs at sizes of their own (GridSpec.sized; sprites: DSVAE's published f of
    256 and z of 32, both posteriors, the hierarchical model beside), RBF probe (the
    authors' protocol): eq 19 as the mean of the attributes, each attribute from the
    static factor, the action from each factor, the -ELBO; mean ± sd over seeds."""
    table = _head(
        "model",
        "beta",
        "static + temporal",
        "d-score, mean of the attributes, RBF",
        "d-score, mean, linear",
        *(f"{n} from static" for n in names),
        "action from static",
        "action from temporal",
        "-ELBO (nats/frame)",
        "seeds",
    )
    for variant, runs in _by_variant(rows, dataset).items():
        run = next(r for r in grid(dataset) if r.variant == variant)
        got = [r for r in runs if "attributes_rbf" in r]

        def of(name, key, got=got):
            return _mean_spread([r["attributes_rbf"][name][key] for r in got], 3)

        table.append(
            f"| {variant} | {run.beta:g} | {run.features - run.temporal} + {run.temporal} "
            f"| {_mean_spread([r['d_score_rbf'] for r in got])} "
            f"| {_mean_spread([r['d_score'] for r in got])} | "
            + " | ".join(of(n, "static_acc_from_static") for n in names)
            + f" | {of(names[0], 'temporal_acc_from_static')} "
            f"| {of(names[0], 'temporal_acc_from_temporal')} "
            f"| {_mean_spread([r['negative_elbo'] for r in got], 1)} | {len(got)} |"
        )
    return table


def field_table(rows: list[dict], names: list[str], dataset: str = "sprites") -> list[str]:
    """The field's Sprites protocol (:mod:`stvae.field`) per cell of the sprites grid:
    the action judged with the static code drawn from the prior (accuracy, IS, H(y|x),
    H(y)), each attribute judged with the dynamics drawn from the prior, and the judge's
    own accuracy; each run's value is its mean over the prior draws, each cell the mean ±
    sd of the runs (seeds)."""
    table = _head(
        "model",
        "beta",
        "features",
        "action acc",
        "IS",
        "H(y\\|x)",
        "H(y)",
        *(f"{n} acc" for n in names),
        "judge: action",
        "judge: attributes (lowest)",
        "runs",
    )
    by, f1 = _by_cell(rows), GRIDS[dataset].table1_features
    cells = [
        (model, beta, f1, by.get((model, beta, f1), []))
        for model, beta, _ in table1_cells(dataset, _kinds(rows))
    ]
    for variant, runs in _by_variant(rows, dataset).items():  # the published sizes
        run = next(r for r in grid(dataset) if r.variant == variant)
        cells.append((variant, run.beta, run.features, runs))
    for model, beta, features, runs in cells:
        got = [r["field"] for r in runs if "field" in r and "not_applicable" not in r["field"]]
        refused = [r["field"] for r in runs if "not_applicable" in r.get("field", {})]
        first = [
            [g["static_from_prior"][k]["mean"] for g in got]
            for k in ("action_accuracy", "IS", "H(y|x)", "H(y)")
        ]
        second = [[g["dynamics_from_prior"][n]["mean"] for g in got] for n in names]
        scores = [_mean_spread(v, 3) for v in first + second]
        if refused and not got:  # every run of the cell: the protocol does not apply
            scores = ["not applicable"] * len(scores)
        judge = [g["judge_accuracy"] for g in got or refused]
        table.append(
            f"| {model} | {beta:g} | {features} | "
            + " | ".join(scores)
            + f" | {_mean_spread([j['action'] for j in judge], 3)} "
            f"| {_mean_spread([min(j[n] for n in names) for j in judge], 3)} "
            f"| {len(got or refused)} |"
        )
    return table


def report_tables(  # long: Table 1-3's rows, one block per table, in the report's order
    rows: list[dict], dataset: str
) -> dict[str, list[str]]:
    """The report's tables, by name, each as markdown lines (header, rule, body); cells
    are means ± standard deviations over the seeds run. The README and docs/results.md
    copy some of them verbatim (tests/test_docs.py checks it)."""
    spec = GRIDS[dataset]
    if spec.attributes:
        return attribute_tables(rows, dataset)
    by = _by_cell(rows)

    def cell(model, beta, features, key, digits=2, sub=None):
        got = [
            r
            for r in by.get((model, beta, features), [])
            if key in r and (not sub or sub in r[key])
        ]
        return _mean_spread([r[key][sub] if sub else r[key] for r in got], digits)

    f1, (st, tt) = spec.table1_features, spec.targets
    order_aware = any("d_score_order_between" in r for r in rows)
    head = (
        "| model | beta | d-score, authors' protocol (RBF) | paper | d-score, paper's text "
        "(linear) | RBF, division chosen on fitting videos | seeds |"
        + (" d-score, order-aware linear probe |" if order_aware else "")
    )
    table1 = [head, "|---" * (head.count("|") - 1) + "|"]
    for model, beta, paper in table1_cells(dataset, _kinds(rows)):
        cell_rows = by.get((model, beta, f1), [])
        chosen = [r["chosen_on_fit_rbf"]["d_score"] for r in cell_rows if "chosen_on_fit_rbf" in r]
        table1.append(
            f"| {model} | {beta:g} | {cell(model, beta, f1, 'd_score_rbf')} | {_paper(paper)} "
            f"| {cell(model, beta, f1, 'd_score')} "
            f"| {'own division' if KINDS[model].split else _mean_spread(chosen)} "
            f"| {len(cell_rows)} |"
            + (f" {cell(model, beta, f1, 'd_score_order_between')} |" if order_aware else "")
        )
    acc_head = (
        f"| model | beta | probe | {st} from static | {st} from temporal | {tt} from static "
        f"| {tt} from temporal |"
    )
    accuracies = [acc_head, "|---" * 7 + "|"]
    for model, beta, _ in table1_cells(dataset, _kinds(rows)):
        for sfx in ("_rbf", ""):
            key = f"accuracies{sfx}"
            accuracies.append(
                f"| {model} | {beta:g} | {'RBF' if sfx else 'linear'} | "
                + " | ".join(
                    cell(model, beta, f1, key, 3, sub)
                    for sub in (
                        "static_acc_from_static",
                        "static_acc_from_temporal",
                        "temporal_acc_from_static",
                        "temporal_acc_from_temporal",
                    )
                )
                + " |"
            )
    heads = [h for h, _ in spec.static_columns]
    static_head = (
        "| model | beta | "
        + " | ".join(f"{h}, RBF | paper {h} | {h}, linear" for h in heads)
        + " |"
    )
    static = [static_head, "|---|---|" + "---|---|---|" * len(heads)]
    for (model, beta), paper in spec.paper_static.items():
        cells = []
        for (_, column), p in zip(spec.static_columns, paper, strict=True):
            n = column[model]
            cells.append(
                f"{cell(model, beta, n, 'static_accuracy_rbf', 3)} | {p:.2f} "
                f"| {cell(model, beta, n, 'static_accuracy', 3)}"
            )
        static.append(f"| {model} | {beta:g} | " + " | ".join(cells) + " |")
    leak_head = (
        f"| model | beta | {st} from temporal (linear) | from its per-video means "
        "| from it centred per video |"
    )
    leak = [leak_head, "|---" * 5 + "|"]
    for beta in BETAS:
        leak.append(
            f"| hierarchical | {beta:g} "
            f"| {cell('hierarchical', beta, f1, 'accuracies', 3, 'static_acc_from_temporal')} "
            f"| {cell('hierarchical', beta, f1, 'static_in_temporal', 3, 'video_mean')} "
            f"| {cell('hierarchical', beta, f1, 'static_in_temporal', 3, 'centred')} |"
        )
    tables = {"table1": table1, "accuracies": accuracies, "static": static, "leak": leak}
    return tables


def _header(dataset: str, preset: str, seeds: int) -> list[str]:
    """A report's title, the command and software that made it, and the schedule."""
    spec, cfg = GRIDS[dataset], PRESETS[preset]
    return [
        f"# {dataset}: Table 1 and {spec.static_table}, `{preset}` preset",
        "",
        f"Made by `stvae reproduce --dataset {dataset} --preset {preset} --seeds {seeds}`; "
        f"rendered by stvae {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()} "
        f"({_threads()}). What each run was trained with is in the "
        "last table.",
        "",
        f"Schedule: {cfg.steps} steps of {cfg.batch_videos} videos x {cfg.data.frames} frames, "
        f"Adam {cfg.lr:g} x {cfg.lr_decay:g} every {cfg.lr_decay_every} steps, "
        f"beta warm-up {cfg.beta_warmup} steps, precision {cfg.precision}, "
        f"sigma2 {cfg.model.sigma2:g}.",
        "",
    ]


def _every_run(rows: list[dict]) -> list[str]:
    """The table of every run with how it trained, and the total training time."""
    lines: list[str] = []
    lines += [
        "## Every run",
        "",
    ]
    between = any("d_score_order_between" in r for r in rows)
    extra = " d-score, order-aware linear probe |" if between else ""
    lines += [
        "| run | d-score RBF | d-score linear | static acc RBF | static acc linear "
        "| -ELBO (nats/frame) | frames seen (M) | clip (frames) | wall (s) |"
        + extra
        + " trained |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if between else "") + "---|",
    ]
    for r in rows:
        cell = f" {r.get('d_score_order_between', float('nan')):.2f} |" if between else ""
        seen = f"{r['frames_seen'] / 1e6:.2f}" if "frames_seen" in r else "not recorded"
        lines.append(
            f"| {r['name']} | {r.get('d_score_rbf', float('nan')):.2f} | {r['d_score']:.2f} "
            f"| {r.get('static_accuracy_rbf', float('nan')):.3f} | {r['static_accuracy']:.3f} "
            f"| {r['negative_elbo']:.1f} | {seen} | {r.get('clip_frames', 'not recorded')} "
            f"| {r['wall_s']:.0f} |" + cell + f" {_how(r)} |"
        )
    total_wall = sum(r["wall_s"] for r in rows)
    lines += [
        "",
        "Trained: the device, precision, whether the step was compiled and the stvae "
        "version, as the run recorded them. Frames seen: steps x videos a batch x the clip's "
        "frames (rows scored before rows recorded it: the grid's schedule, which every "
        "cell shares). Wall time is the training call's (setup, loop, "
        "saving; not the evaluation), for a resumed run summed over its processes.",
        "",
        f"Total training time of these runs: {total_wall / 3600:.2f} h.",
        "",
    ]
    return lines


def _attribute_markdown(rows: list[dict], dataset: str, preset: str, seeds: int) -> str:
    """The report of data with several static attributes (sprites): :func:`attribute_tables`
    with what they measure, every run."""
    tables = attribute_tables(rows, dataset)
    spec = GRIDS[dataset]
    f1 = spec.table1_features
    lines = _header(dataset, preset, seeds)
    lines += [
        spec.about,
        "",
        "Two probes score every run (`stvae evaluate`): the **authors' protocol** "
        "(scikit-learn's `SVC()` with its defaults, an RBF kernel), and the **paper's text** "
        f"(linear SVMs), fitted on {spec.fit_sets}. "
        "Eq 19 is computed for each attribute (the static target) against the action (the "
        "temporal target: 3 actions x 3 directions, 9 classes); the headline is the mean "
        "over the four attributes. A baseline's division is the best for each attribute on "
        "its own (the paper's rule, applied per attribute).",
        "",
        f"Runs done: {len(rows)} of {len(grid(dataset, seeds, _kinds(rows)))}. Cells show mean ± "
        "standard deviation over seeds where there is more than one.",
        "",
        f"## Table 1: disentanglement score (eq 19), {f1} features in total",
        "",
        *tables["table1"],
        "",
        "Each attribute's d-score:",
        "",
        *tables["attributes"],
        "",
        "## Attribute accuracy",
        "",
        "Each attribute from the static factor (the hierarchical model and dsvae: their own "
        "static features; a baseline: the static set of its division for that attribute) "
        "and the action from each factor (a baseline: the division found for the first "
        "attribute). Six options per attribute, nine action classes.",
        "",
        *tables["accuracies"],
        "",
        "## Swaps, judged",
        "",
        "For the models with a static/temporal split of their own: each held-out video's "
        "temporal codes decoded with another video's static code, then classified by a "
        "judge CNN that stvae trains on the ground truth (`stvae.judge`): the share of "
        "swaps in which it names the first video's action ('action kept') and the other "
        "video's option of each attribute ('taken'). Beside them the same judge on the "
        "plain reconstructions (no swap: what the decoder keeps at all, the most a swap "
        "can show) and the judge's own accuracy on real clips of held-out characters; "
        "chance is 1/9 for the action and 1/6 for an attribute.",
        "",
        *tables["swaps"],
        "",
        *_field_section(tables["field"], rows),
        *_sized_section(tables["sized"], spec),
    ]
    lines += _every_run(rows)
    return "\n".join(lines)


def _sized_section(table: list[str], spec) -> list[str]:
    """The section of the runs at sizes of their own (:func:`sized_table`), if any."""
    if not spec.sized:
        return []
    return [
        "## At DSVAE's published size",
        "",
        "f of 256 and z of 32 dimensions (Li & Mandt; C-DSVAE's defaults) for dsvae with "
        "each of its dynamic posteriors (factorized: z_t from frame t alone; full: from "
        "the whole video and f), and the hierarchical model with 256 static and 32 "
        "temporal features, at beta 1 and the grid's schedule; the field's protocol for "
        "these runs is in the table above. The RBF probe reads each factor whole (256 "
        "features against 32: a wider factor is easier to read from, which eq 19 does "
        "not correct for).",
        "",
        *table,
        "",
    ]


def _field_section(table: list[str], rows: list[dict]) -> list[str]:
    """The sprites report's section on the field's protocol (:func:`field_table`) of
    ``rows`` (which say what their dynamics direction decoded; none said before it was
    an option: draws)."""
    decoded = sorted({r["field"].get("dynamics", "draws") for r in rows if "field" in r})
    how = {"means": "the prior's mean at each frame decoded", "draws": "the draws decoded"}
    return [
        "## The field's protocol",
        "",
        "As the sequential-disentanglement papers after DSVAE score Sprites (C-DSVAE's "
        "evaluation): each held-out video's temporal code kept and its static code drawn "
        "from the model's prior, decoded, and the action judged (accuracy against the "
        "video's own; Inception Score, at most 9; H(y|x), lower is surer; H(y), at most "
        "ln 9 = 2.197); then the static code kept and the dynamics drawn from the prior "
        f"({' or '.join(how[d] for d in decoded) or 'none scored'}), and each attribute judged "
        "(chance 1/6). The judge (`stvae.judge`: a CNN per frame "
        "and a bidirectional LSTM over the frames, trained on clips of the judged length) "
        "names real clips of held-out characters at the accuracy beside. Each run is the "
        "mean of 3 prior draws (their spread is in the JSON); a baseline uses the division "
        "`evaluate` chose for the first attribute. The published values on the original "
        "Sprites are saturated (action accuracy 99.5-100%, IS 8.6-9.0), context only: "
        "these are not those characters.",
        "",
        *table,
        "",
    ]


def quoted_tables(text: str, prefix: str = "| model | beta |") -> dict[str, list[str]]:
    """Header line -> body rows (below the ``|---|`` line) of each table of ``text`` whose
    header starts ``prefix``; by default the tables of a report's markdown, matched by
    header where the README and docs pages copy them (tests/test_docs.py checks the copies,
    bench/sync_tables.py writes them)."""
    tables: dict[str, list[str]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                body.append(row)
            tables[line] = body
    return tables


def report_markdown(  # long: the report's sections in reading order, one block each
    rows: list[dict], dataset: str, preset: str, seeds: int
) -> str:
    """Table 1 and the static-accuracy table as measured under both probes, with the
    paper's numbers beside the authors' protocol, and every run."""
    spec = GRIDS[dataset]
    if spec.attributes:
        return _attribute_markdown(rows, dataset, preset, seeds)
    tables = report_tables(rows, dataset)
    total = len(grid(dataset, seeds, _kinds(rows)))
    order = registry.DATASETS[dataset].temporal_task == "order"
    sets = spec.fit_sets
    lines = _header(dataset, preset, seeds)
    lines += [
        "Two probes score every run (`stvae evaluate`): the **authors' protocol**, which made "
        "the paper's numbers (scikit-learn's `SVC()` with its defaults, an RBF kernel"
        + (", and the authors' order triplets: frames s, s + 2, s + 4" if order else "")
        + "), and the **paper's text** (linear SVMs). Probes are fitted on "
        + sets
        + "; no image is both fitted and scored (`image_overlap` 0 in the JSON). The paper's "
        "numbers stand beside the authors' protocol.",
        "",
        f"Runs done: {len(rows)} of {total}. Cells show mean ± standard deviation over seeds "
        "where there is more than one.",
        "",
        f"## Table 1: disentanglement score (eq 19), {spec.table1_features} features in total",
        "",
        *tables["table1"],
        "",
        "Baselines: the paper's rule takes the best of every division of their features on "
        "the scored accuracies; 'division chosen on fitting videos' picks it on two halves "
        "of the fitting videos alone and then scores it as the headline is, with no "
        "selection on scored data.",
    ]
    if rows:
        rbf = [r for r in rows if "temporal_chance_rbf" in r]
        lines += [
            "",
            f"The score's ceiling with balanced classes is {rows[0]['ceiling']:.2f}. A blind "
            "probe (the most frequent fitting label) scores "
            + (
                f"{statistics.mean(r['temporal_chance_rbf'] for r in rbf):.3f} on the temporal "
                f"target and {statistics.mean(r['static_chance_rbf'] for r in rbf):.3f} on the "
                "static one (authors' protocol, mean over runs)."
                if rbf
                else "(no run scored yet)."
            ),
        ]
    lines += [
        "",
        "Accuracies behind Table 1 (the hierarchical model's own division; the baselines' "
        "best division under each probe):",
        "",
        *tables["accuracies"],
        "",
        f"## {spec.static_table}: static classification accuracy",
        "",
        "The hierarchical model is probed on its static factor only (half of its "
        "features); baselines on all of their features. Features the probe sees: "
        + "; ".join(
            f"{head}: "
            + ", ".join(f"{m} {n // 2 if KINDS[m].split else n}" for m, n in sizes.items())
            for head, sizes in spec.static_columns
        )
        + ".",
        "",
        *tables["static"],
        "",
        "## Static information in the hierarchical temporal factor",
        "",
        f"The linear {spec.targets[0]} probe refitted on the temporal features' per-video means "
        "(a constant offset per video) and on the features with those means taken out "
        "(`static_in_temporal` in eval.json).",
        "",
        *tables["leak"],
        "",
    ]
    lines += _every_run(rows)
    return "\n".join(lines)
