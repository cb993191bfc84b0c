"""How much each direction of the field's protocol changes what a run decodes: on held-out
clips, one prior draw, the mean absolute change of the decoded frames (pixel intensity,
0-1) from the plain reconstruction when the static set is drawn from the prior (the
first direction), when the temporal set is (the second), and when every feature is. A
direction whose change is near 0 redraws features the decoder does not use, so its
scores are the reconstruction's, not a draw's (docs/results.md, the field's protocol).
The sets are the ones the run's eval.json records for the protocol; the prior draw is
the protocol's first (seed 0).

    python bench/field_change.py RUN [RUN ...] [--videos 128]

Prints a markdown table, a row per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from stvae.data import generate
from stvae.field import redraw_change
from stvae.model import encode_videos
from stvae.result import read_result
from stvae.rundir import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--videos", type=int, default=128)
    args = p.parse_args()
    print("| run | static set | static redrawn | temporal redrawn | all redrawn |")
    print("|---|---|---|---|---|")
    for run in map(Path, args.runs):
        model, config = load_run(run)
        field = read_result(run / "eval.json").field
        if field is None:
            raise SystemExit(f"{run}: its eval.json has no field protocol (sprites runs have)")
        data = generate(config.data.source, args.videos, config.data.frames, 0, "test")
        mu, _ = encode_videos(model, data["videos"])  # [V, N, F]
        v, n, f = mu.shape
        prior = model.prior_sample(v, n, torch.Generator().manual_seed(0)).float().numpy()
        s_idx, t_idx = field["static_set"], field["temporal_set"]
        found = redraw_change(model, mu, prior, (s_idx, t_idx)).values()  # static, temporal, all
        static = f"{len(s_idx)} of {f}" if len(s_idx) > 4 else str(s_idx)
        print(f"| {run.name} | {static} | " + " | ".join(f"{c:.4f}" for c in found) + " |")


if __name__ == "__main__":
    main()
