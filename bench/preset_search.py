"""The search behind the `cpu` preset: train candidate schedules and score each (eq 19).

    python bench/preset_search.py --list
    python bench/preset_search.py p0-b1 p0-b4 [--out runs/preset-search]

Each candidate is a set of changes to BASE (the paper's networks and priors, Bouncing
MNIST, 16 videos x 16 frames a step). A finished candidate appends one JSON line to
docs/results/cpu-preset-search.jsonl: the changes, the wall time, the final loss terms
and the disentanglement result of :func:`stvae.evaluate.disentanglement` on 256 fresh
videos of held-out digits, with the git commit it ran at.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from commit import short_commit
from stvae.data import held_out
from stvae.evaluate import disentanglement
from stvae.model import encode_videos
from stvae.train import TrainConfig, load_run, train

BASE = TrainConfig(steps=2400, batch_videos=16, lr=1e-3, lr_decay_every=800, precision="bf16")
CANDIDATES: dict[str, dict] = {
    # the paper's recipe compressed to 2,400 steps (decay at 1/3 and 2/3), bf16
    "p0-b1": {},
    "p0-b4": {"model.beta": 4.0},
    # twice the learning rate, decayed later
    "p1-b1": {"lr": 2e-3, "lr_decay_every": 1000},
    # half the batch, twice the steps, twice the learning rate
    "p2-b1": {"steps": 4800, "batch_videos": 8, "lr": 2e-3, "lr_decay_every": 2000},
    # twice the learning rate with beta warmed up from 0 over 500 steps
    "p3-b1": {"lr": 2e-3, "lr_decay_every": 1000, "beta_warmup": 500},
    # a tighter prior: sigma2 = 0.001 for both factors
    "p4-b1": {"model.sigma2": 0.001},
    # twice the frames: 4,800 steps, decays at 1/3 and 2/3 (compiled, for the time)
    "p5-b1": {"steps": 4800, "lr_decay_every": 1600, "compile": True},
    # bf16 autocast against fp32, two seeds each, on a quarter of the schedule
    **{
        f"eq-{precision}-s{seed}": {
            "steps": 600,
            "lr_decay_every": 200,
            "precision": precision,
            "seed": seed,
        }
        for seed in (0, 1)
        for precision in ("bf16", "fp32")
    },
}
REPORT = Path(__file__).resolve().parents[1] / "docs" / "results" / "cpu-preset-search.jsonl"


def run(name: str, out: Path) -> dict:
    config = BASE.replace(**{"log_every": 20, **CANDIDATES[name]})
    t0 = time.perf_counter()
    summary = train(config, out / name)
    wall = time.perf_counter() - t0
    model, _ = load_run(out / name)
    data = held_out(config.data, 256, 0)
    mu, _ = encode_videos(model, data["videos"])
    score = disentanglement(
        mu, data["static_labels"], data["temporal_labels"], config.model.n_static
    )
    commit = short_commit()
    return {
        "name": name,
        "changes": CANDIDATES[name],
        "commit": commit,
        "wall_s": wall,
        "final": summary["final"],
        **score.to_dict(),  # its eval.json layout: d_score, the sets, the accuracies
    }


def _gap(a: dict, b: dict) -> float:
    """Mean relative difference of two loss curves over their common logged steps."""
    ca, cb = dict(map(tuple, a["curve"])), dict(map(tuple, b["curve"]))
    steps = sorted(set(ca) & set(cb))
    return sum(abs(ca[s] - cb[s]) / abs(cb[s]) for s in steps) / len(steps)


def precision_section(b0: dict, f0: dict, b1: dict, f1: dict) -> list[str]:
    """bf16 against fp32 beside seed against seed: is the precision inside the noise?"""
    return [
        "## bf16 autocast against fp32",
        "",
        "Same seed, other precision, against same precision, other seed; loss curves compared "
        "at every logged step (mean relative difference).",
        "",
        "| comparison | mean relative loss difference | d-scores |",
        "|---|---|---|",
        *(
            f"| {label} | {_gap(x, y):.4f} | {x['d_score']:.2f} vs {y['d_score']:.2f} |"
            for label, x, y in (
                ("bf16 vs fp32, seed 0", b0, f0),
                ("bf16 vs fp32, seed 1", b1, f1),
                ("seed 0 vs seed 1, bf16", b0, b1),
                ("seed 0 vs seed 1, fp32", f0, f1),
            )
        ),
        "",
        f"Wall time: bf16 {b0['wall_s']:.0f} s and {b1['wall_s']:.0f} s, fp32 {f0['wall_s']:.0f} s "
        f"and {f1['wall_s']:.0f} s for the same 600 steps.",
    ]


def report() -> str:
    rows = [json.loads(line) for line in REPORT.read_text().splitlines() if line.strip()]
    lines = [
        "# The search behind the `cpu` preset",
        "",
        "Each candidate changes the base schedule (2,400 steps of 16 videos x 16 frames, Adam "
        "1e-3 x 0.1 every 800 steps, bf16 autocast, sigma2 0.01, hierarchical model with 2 + 2 "
        "features, beta 1 unless the row says otherwise). Score: eq 19 on 256 fresh videos of "
        "held-out digits; accuracies of L2 linear SVMs trained and scored on disjoint videos. "
        "Rows from `python bench/preset_search.py NAME`; this page from "
        "`python bench/preset_search.py --report`.",
        "",
        "| run | changes | d-score | digit from static | location from static "
        "| location from temporal | digit from temporal | recon (nats/frame) | KL | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | `{json.dumps(r['changes'])}` | {r['d_score']:.2f} "
            f"| {r['static_acc_from_static']:.3f} | {r['temporal_acc_from_static']:.3f} "
            f"| {r['temporal_acc_from_temporal']:.3f} | {r['static_acc_from_temporal']:.3f} "
            f"| {r['final']['reconstruction']:.1f} | {r['final']['kl']:.2f} | {r['wall_s']:.0f} |"
        )
    by_name = {r["name"]: r for r in rows}
    eq = [by_name.get(f"eq-{p}-s{s}") for s in (0, 1) for p in ("bf16", "fp32")]
    if all(r is not None and "curve" in r for r in eq):
        lines += ["", *precision_section(*eq)]
    chance = rows[0]
    lines += [
        "",
        f"Chance: digit {chance['static_chance']:.3f}, location {chance['temporal_chance']:.3f} "
        f"(the centre cell holds most frames); ceiling {chance['ceiling']:.2f} with balanced "
        f"classes, about {chance['ceiling_this_balance']:.2f} with this data's balance.",
        "",
        "Notes on the runs: " + "; ".join(sorted({r.get("note", "") for r in rows} - {""})) + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="candidates to run")
    p.add_argument("--list", action="store_true", help="list the candidates")
    p.add_argument("--report", action="store_true", help="write the .md table from the .jsonl")
    p.add_argument("--out", type=Path, default=Path("runs/preset-search"))
    args = p.parse_args()
    if args.report:
        REPORT.with_suffix(".md").write_text(report())
        return
    if args.list or not args.names:
        for name, changes in CANDIDATES.items():
            print(f"{name:8s} {json.dumps(changes)}")
        return
    for name in args.names:
        row = run(name, args.out)
        with open(REPORT, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name}: d-score {row['d_score']:.2f} in {row['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
