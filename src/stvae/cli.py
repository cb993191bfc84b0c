"""The ``stvae`` command: a thin layer of flags over the library.

Every subcommand maps its flags onto a library call; errors a user can cause arrive as
:class:`StvaeError` and leave as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stvae import __version__
from stvae.errors import StvaeError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from stvae.config import TrainConfig

PROG = "stvae"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


def _whole(text: str) -> int:
    """A whole number, parsed; its range is the config's to check (one place)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    """A number, parsed; its range is the config's to check."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _speed(text: str) -> tuple[float, float]:
    """``0.1`` (constant) or ``0.05,0.14`` (uniform per video) -> (low, high), parsed; the
    range is checked by Bouncing MNIST's options (:func:`stvae.data.check_speed`)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or LOW,HIGH, got {text!r}") from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a number or LOW,HIGH, got {text!r}")
    return (values[0], values[-1])


def _duration(text: str) -> float:
    from stvae.budget import parse_duration

    try:
        return parse_duration(text)
    except StvaeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str, least: int = 1) -> int:
    """A count of a command's own (not a config field's): parsed and at least ``least``."""
    value = _whole(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _count(text: str) -> int:
    """A count of a command's own that may be 0."""
    return _positive_int(text, 0)


_PARSE = {"nonneg": _whole, "duration": _duration, "speed": _speed, "int": _whole}


def _field_flag(p, name: str, f) -> None:
    """The ``stvae train`` flag of config field ``name`` (dotted), from its metadata (see
    :func:`stvae.config.train_fields`); a model kind's own hyperparameter's help names the
    kinds that take it."""
    from stvae.model import option_takers

    meta = f.metadata
    dest = meta.get("flag", name.split(".")[-1])
    flag = f"--{dest.replace('_', '-')}"
    text = meta["help"]() if callable(meta["help"]) else meta["help"]
    takers = option_takers(f.name) if name.startswith("model.") else []
    if takers:
        text = f"{', '.join(takers)}: {text}"
    kwargs: dict = {"dest": dest, "help": text}
    base = str(f.type).split()[0].split("[")[0]
    if "choices" in meta:
        choices = meta["choices"]
        kwargs["choices"] = choices() if callable(choices) else choices
        if "parse" in meta:
            kwargs["type"] = _PARSE[meta["parse"]]
    elif base == "bool":
        kwargs.update(action=argparse.BooleanOptionalAction, default=None)
    elif "parse" in meta:
        kwargs["type"] = _PARSE[meta["parse"]]
    elif base in ("int", "float"):
        kwargs["type"] = _whole if base == "int" else _number
    group = p.add_mutually_exclusive_group() if "alias" in meta else p
    group.add_argument(flag, **kwargs)
    if "alias" in meta:  # another spelling of one value, exclusive with the flag
        alias, const, alias_help = meta["alias"]
        group.add_argument(
            f"--{alias}", dest=dest, action="store_const", const=const, help=alias_help
        )


def _add_train(p) -> None:
    from stvae.config import PRESETS, train_fields

    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="paper: section 4.2's schedule; cpu: minutes on a laptop CPU (default); with "
        "--resume it must agree with the run's config",
    )
    for name, f in train_fields().items():  # one flag per field, from its metadata
        _field_flag(p, name, f)
    p.add_argument("--out", help="run directory (default: runs/<model>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip the linear-probe check of the factors after training",
    )
    p.set_defaults(func=_cmd_train)


def _check_resumed_preset(run: TrainConfig, preset: TrainConfig, name: str, given: dict) -> None:
    """``--resume --preset NAME``: the killed command retried is accepted; a preset that
    would train another model than the run's is refused in one line, naming what differs.
    The fields ``--resume`` may change (steps, how the run trains) are the run's unless a
    flag gives them, and what the preset leaves to the run to resolve (None: the data's
    channels; "auto") matches what the run resolved."""
    from stvae.config import RESUMABLE, train_fields

    differ = [
        f"{field} (run: {run.get(field)!r}, preset: {preset.get(field)!r})"
        for field in train_fields()
        if field not in RESUMABLE
        and field not in given  # a flag's value: resume_config has checked it
        and preset.get(field) not in (None, "auto")  # resolved when the run began
        and run.get(field) != preset.get(field)
    ]
    if differ:
        raise StvaeError(
            f"--resume keeps the run's config; preset {name!r} differs from it in "
            f"{', '.join(differ)} (leave --preset out to continue the run as it is)"
        )


def _cmd_train(args) -> int | None:
    from stvae.config import preset_config, train_flags
    from stvae.evaluate import probe_run
    from stvae.train import resume_config, train

    given = {
        field: getattr(args, flag)
        for flag, field in train_flags().items()
        if getattr(args, flag) is not None
    }
    if args.resume:
        if args.out is None:
            raise StvaeError("--resume needs --out, the run directory to continue")
        config, changed = resume_config(args.out, given)
        if changed:
            raise StvaeError(f"--resume keeps the run's config; cannot change {', '.join(changed)}")
        if args.preset is not None:
            preset = preset_config(args.preset, given)
            _check_resumed_preset(config, preset, args.preset, given)
    else:
        config = preset_config(args.preset or "cpu", given)
    out = args.out or f"runs/{config.model.kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = train(config, out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return None  # under torchrun, rank 0 reports
    print(_describe_run(summary))
    if summary["stopped"]:
        return 128 + signal.SIGTERM  # the shell's code for a SIGTERM: the run is not finished
    if not args.no_check:
        probe = probe_run(summary["run_dir"])
        print(_describe_probe(probe))
    print(f"figures: stvae figures {summary['run_dir']}")


def _describe_run(summary: dict) -> str:
    run = Path(summary["run_dir"])
    final = summary["final"] or {}
    terms = "  ".join(
        f"{k} {final[k]:.3f}"
        for k in sorted(final)
        if k in ("loss", "reconstruction", "kl") or k.startswith("kl_")
    )
    files = "  ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in run.iterdir()))
    resumed = f"resumed at step {summary['start_step']}, " if summary.get("start_step") else ""
    if not terms:  # a resume of a run whose checkpoint already held its last step
        terms = "no step taken in this call (metrics.jsonl has the run's last records)"
    else:
        terms = f"final (nats/frame): {terms}"
    return (
        f"run {run}: {resumed}{summary['step']} steps in {summary['wall_s']:.0f} s\n"
        f"  {terms}\n  files: {files}"
    )


def _describe_probe(probe: dict) -> str:
    from stvae.result import PROBE_NAMES

    if not probe.get("accuracies"):
        return f"factor check skipped: {probe.get('skipped', 'no labels')}"
    lines = [f"factor check: accuracy on {probe['videos']} videos of {probe['data']}"]
    for name, acc in probe["accuracies"].items():
        lines.append(f"  {PROBE_NAMES[name]}")
        targets = [k[: -len("_chance")] for k in acc if k.endswith("_chance")]
        for target in targets:
            parts = [
                f"from {k.split('_from_')[1]} {v:.3f}"
                for k, v in acc.items()
                if k.startswith(f"{target}_from_")
            ]
            label = {"static_labels": "static label", "temporal_labels": "temporal label"}
            lines.append(
                f"    {label.get(target, target):<14}: "
                + "  ".join(parts)
                + f"  (chance {acc[f'{target}_chance']:.3f})"
            )
    return "\n".join(lines)


def _add_dataset(p) -> None:
    from stvae.data import DATASETS, OPTION_FIELDS, SPLITS

    p.add_argument("name", choices=tuple(DATASETS), help="which dataset")
    p.add_argument("--videos", type=_positive_int, default=1000, help="number of videos")
    p.add_argument(
        "--frames",
        type=_positive_int,
        help="frames per video (default: the dataset's clip length, 16 where it names none)",
    )
    p.add_argument("--seed", type=_count, default=0, help="seed of the generator")
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="train",
        help="train, or the held-out digit images (bouncing-mnist), 10 held-out chairs or 162 "
        "held-out characters (sprites) (test), or one of two parts of those that share no "
        "image (test-fit, test-score)",
    )
    for name, f in OPTION_FIELDS.items():  # each dataset's own settings, flags as train's
        _field_flag(p, f"data.{name}", f)
    p.add_argument("--out", required=True, help="output .npz file")
    p.set_defaults(func=_cmd_dataset)


def _cmd_dataset(args) -> None:
    from stvae.data import OPTION_FIELDS, default_frames, generate, save_dataset

    if not args.out.endswith(".npz"):
        raise StvaeError(f"{args.out}: dataset files end in .npz")
    given = {n: getattr(args, n) for n in OPTION_FIELDS if getattr(args, n) is not None}
    frames = args.frames or default_frames(args.name)
    data = generate(args.name, args.videos, frames, args.seed, args.split, **given)
    path = save_dataset(data, args.out)
    print(
        f"wrote {path}: videos {list(data['videos'].shape)} {data['videos'].dtype}, "
        f"labels {', '.join(k for k in data if k != 'videos')}"
    )


def _add_evaluate(p) -> None:
    from stvae.evaluate import PROBE_CHOICES
    from stvae.result import DYNAMICS

    p.add_argument("run", help="run directory")
    p.add_argument("--data", help="a .npz/.npy file or video folder instead (labels optional)")
    p.add_argument(
        "--seed", type=_count, default=0, help="seed of the probe split and held-out set"
    )
    p.add_argument(
        "--probe",
        choices=PROBE_CHOICES,
        default="both",
        help="linear: the paper's text (linear SVMs); rbf: the authors' code, which made the "
        "paper's numbers (RBF SVC fitted on training-digit videos); both (default)",
    )
    p.add_argument(
        "--videos",
        type=_positive_int,
        help="videos in each generated probe set, fitting and scoring (default 256)",
    )
    p.add_argument(
        "--field-dynamics",
        choices=DYNAMICS,
        default="means",
        help="sprites, the field's protocol: decode the dynamics drawn from the prior as the "
        "prior's mean at each frame (means, C-DSVAE's; default) or as the draw itself",
    )
    p.add_argument("--out", help="where to write eval.json (default: RUN/eval.json)")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args) -> None:
    from stvae.evaluate import evaluate_run

    out = Path(args.out) if args.out else Path(args.run) / "eval.json"
    result = evaluate_run(
        args.run, args.data, args.seed, args.probe, args.videos, out, args.field_dynamics
    )
    print(result.describe())
    print(f"wrote {out}")


def _add_encode(p) -> None:
    p.add_argument("run", help="run directory")
    p.add_argument("--data", required=True, help=".npz/.npy videos or a folder of videos")
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(func=_cmd_encode)


def _cmd_encode(args) -> None:
    from stvae.checkpoint import atomic_write
    from stvae.evaluate import encode_run

    out = Path(args.out)
    if out.suffix != ".npz":
        raise StvaeError(f"{out}: feature files end in .npz")
    if not out.parent.is_dir():
        raise StvaeError(f"{out.parent}: output folder does not exist")
    feats = encode_run(args.run, args.data)

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **feats)

    atomic_write(out, write)
    print(
        f"wrote {out}: mu, logvar {list(feats['mu'].shape)}, "
        f"static_features {int(feats['static_features'])}"
    )


def _add_reproduce(p) -> None:
    from stvae.config import PRESETS
    from stvae.reproduce import GRIDS

    p.add_argument("--dataset", choices=sorted(GRIDS), default="bouncing-mnist")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--out", default="runs/reproduce", help="folder for the run directories")
    p.add_argument("--report-dir", default="docs/results", help="folder for the report")
    p.add_argument("--seeds", type=_positive_int, default=1, help="seeds per cell")
    p.add_argument(
        "--limit",
        type=_count,
        help="train at most this many new runs (0: none; finished runs are still scored and "
        "the report is written again from its rows)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="only the runs whose names match this shell pattern, e.g. 'slow-f8-beta1-*' "
        "(repeatable; names are <model>-f<features>-beta<beta>-seed<seed>, and for a run "
        "of a size of its own <model>[-<option>]-s<static>-t<temporal>-beta<beta>-seed<seed>, "
        "e.g. 'dsvae-full-s256-t32-*')",
    )
    p.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        metavar="KIND",
        help="a registered model kind to run beside the kinds the grid names, in Table 1's "
        "rows (repeatable)",
    )
    p.add_argument(
        "--parallel",
        type=_positive_int,
        default=1,
        help="train this many runs at once, each in its own process (a GPU that one run "
        "leaves mostly idle); each run's output goes to OUT/<dataset>-<preset>/<run>.log",
    )
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int | None:
    from stvae.reproduce import reproduce

    rows = reproduce(
        args.dataset,
        args.preset,
        args.out,
        args.report_dir,
        args.seeds,
        args.limit,
        only=args.only,
        parallel=args.parallel,
        kinds=args.kinds,
    )
    print(f"{len(rows)} runs in {Path(args.report_dir) / f'{args.dataset}-{args.preset}.md'}")
    if rows.stopped:
        return 128 + signal.SIGTERM  # as train: stopped by SIGTERM, the grid is not finished
    return None


def _add_curve(p) -> None:
    from stvae.evaluate import PROBE_CHOICES

    p.add_argument("run", help="run directory")
    p.add_argument("--seed", type=_count, default=0, help="seed of the probe sets (as evaluate)")
    p.add_argument(
        "--probe", choices=PROBE_CHOICES, default="both", help="which probes (as evaluate)"
    )
    p.add_argument(
        "--report",
        metavar="STEM",
        help="also write the curve as a report: STEM.json, STEM.md and STEM.png",
    )
    p.add_argument("--commit", help="with --report: the commit the run was trained at")
    p.add_argument(
        "--beside",
        metavar="GRID_JSON",
        help="with --report: a grid report of the same dataset (stvae reproduce's "
        "<dataset>-<preset>.json) whose runs at this beta and size join the report's tables",
    )
    p.add_argument(
        "--against",
        metavar="CURVE_JSON",
        help="with --report: another run's curve report on the same data (the STEM.json "
        "of its stvae curve --report), set beside this one at the frames both were scored "
        "at: a table and STEM-against.png",
    )
    p.add_argument(
        "--judge",
        action="store_true",
        help="sprites: also the judged swaps and the field's protocol at each snapshot "
        "(minutes a snapshot on a CPU)",
    )
    p.set_defaults(func=_cmd_curve)


def _cmd_curve(args) -> None:
    from stvae.curve import CURVE_FILES, curve_run

    for flag in ("commit", "beside", "against"):
        if getattr(args, flag) and not args.report:
            raise StvaeError(f"--{flag} goes with --report")
    if args.beside:  # refused before minutes of scoring, not after
        from stvae.curve import read_grid

        read_grid(args.beside)
    if args.against:
        from stvae.curve import against_curve, run_config

        against_curve(args.against, run_config(Path(args.run), args.probe))
    curve = curve_run(args.run, args.seed, args.probe, judge=args.judge)
    run = Path(args.run)
    print(
        f"{len(curve['points'])} points in {run / CURVE_FILES['json']} and "
        f"{run / CURVE_FILES['png']}"
    )
    if args.report:
        from stvae.curve import curve_report

        curve_report(run, args.report, args.commit, args.beside, args.against)
        both = f" and {args.report}-against.png" if args.against else ""
        print(f"report: {args.report}.md, .json and .png{both}")


def _add_figures(p) -> None:
    p.add_argument("run", help="run directory")
    p.add_argument("--data", help="videos to draw from (default: the run's held-out data)")
    p.add_argument("--out", help="output folder (default: RUN/figures)")
    p.add_argument("--seed", type=_count, default=0, help="which videos are picked")
    p.set_defaults(func=_cmd_figures)


def _cmd_figures(args) -> None:
    from stvae.figures import make_figures

    out = Path(args.out) if args.out else Path(args.run) / "figures"
    made = make_figures(args.run, args.data, out, args.seed)
    print(f"wrote {len(made)} files to {out}: open {out / 'index.html'}")


_COMMANDS = {  # name -> (its flags, what `stvae --help` and `stvae NAME --help` say)
    "train": (
        _add_train,
        dict(
            help="train a model into a run directory",
            description="Train the hierarchical model or a baseline. A preset sets every "
            "field; explicit flags override it. --resume continues a run directory from its "
            "last checkpoint.",
        ),
    ),
    "dataset": (
        _add_dataset,
        dict(
            help="write a generated dataset to an .npz file",
            description="Generate a labelled dataset in stvae's .npz format.",
        ),
    ),
    "evaluate": (
        _add_evaluate,
        dict(
            help="score a run: disentanglement (eq 19), static accuracy, ELBO",
            description="Score a run on held-out data and write eval.json into the run directory. "
            "Default data: fresh Bouncing MNIST videos of held-out digit images.",
        ),
    ),
    "encode": (
        _add_encode,
        dict(
            help="write posterior means and log-variances of every frame",
            description="Encode every frame of a dataset file with a run's encoder into an .npz: "
            "mu and logvar [V, T, F], static_features, and the file's labels.",
        ),
    ),
    "figures": (
        _add_figures,
        dict(
            help="draw the paper's figures (2-8), reconstructions, curves and GIFs for a run",
            description="Write the paper's Figures 2-8 for a run, with reconstructions, training "
            "curves, GIFs and an index.html, into --out (default: RUN/figures).",
        ),
    ),
    "curve": (
        _add_curve,
        dict(
            help="score a run's weight snapshots into a learning curve",
            description="Score every snapshot of a run (kept with --snapshot-every) not yet in "
            "RUN/curve.json as evaluate scores the final weights, on the same probe sets, and "
            "write curve.json, curve.png and TensorBoard scalars into the run directory.",
        ),
    ),
    "reproduce": (
        _add_reproduce,
        dict(
            help="train and evaluate the grid of Tables 1-3 and write the report",
            description="Train and evaluate the grid of the paper's Table 1 and Table 2 (Bouncing "
            "MNIST) or 3 (chairs), skipping runs already done, and write "
            "docs/results/<dataset>-<preset>.md and .json.",
        ),
    ),
}


def build_parser(only: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``stvae`` parser: every subcommand, each with its flags, or, given ``only``,
    flags for those named alone (the rest listed by name and help: most flags read the
    registries of models and data, which import torch, seconds that ``stvae --help`` and a
    mistyped command need not pay)."""
    parser = _Parser(
        prog=PROG, description="Disentangle space and time in video (Grathwohl & Wilson)."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (add_flags, texts) in _COMMANDS.items():
        p = sub.add_parser(name, **texts)
        if only is None or name in only:
            add_flags(p)
    return parser


def _named(argv: list[str]) -> list[str]:
    """The subcommand ``argv`` names: its first word that is not an option (``stvae``'s own
    options take no value), or none."""
    return [word for word in argv if not word.startswith("-")][:1]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, unknown = build_parser(_named(argv)).parse_known_args(argv)
    if unknown:  # named with its subcommand, as every other error of a subcommand's flags
        print(
            f"{PROG} {args.command}: error: unrecognized arguments: {' '.join(unknown)}",
            file=sys.stderr,
        )
        return 2
    try:
        code = args.func(args)
    except StvaeError as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
