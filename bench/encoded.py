"""What bench/feature_usage.py, bench/offset_cost.py and bench/walk_start.py share: the
command line ``RUN [RUN ...] [--videos 256] [--seed 0] [--step N]`` and a run's posterior
on held-out clips."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stvae.checkpoint import load_weights
from stvae.data import generate
from stvae.model import encode_videos
from stvae.rundir import load_run, snapshot_path


def held_out_clips(config, videos: int, seed: int) -> dict:
    """``videos`` held-out clips of the run's data drawn from ``seed`` (split ``test``):
    stvae.data.generate's dict (``videos`` [V, N, 64, 64(, 3)] and the labels)."""
    return generate(config.data.source, videos, config.data.frames, seed, "test")


def held_out_posterior(
    config, model, videos: int, seed: int
) -> tuple[dict, np.ndarray, np.ndarray]:
    """:func:`held_out_clips` and their posterior (mu, logvar), each [V, N, F]."""
    clips = held_out_clips(config, videos, seed)
    return (clips, *encode_videos(model, clips["videos"]))


def held_out_encodings(description: str) -> Iterator[tuple]:
    """For each run named on the command line: (run directory, model, config, videos,
    seed, mu, logvar, clips), the posterior of ``--videos`` held-out clips drawn from
    ``--seed`` and the clips (:func:`held_out_posterior`), of the run's final weights or,
    with ``--step N``, of its snapshot after N steps."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("runs", nargs="+")
    p.add_argument("--videos", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--step", type=int, help="each run's weight snapshot after this many steps instead"
    )
    args = p.parse_args()
    for run in map(Path, args.runs):
        model, config = load_run(run)
        if args.step is not None:  # a run still training has its snapshots, not its end
            weights = snapshot_path(run, args.step)
            if not weights.is_file():
                p.exit(2, f"{weights}: no such snapshot\n")
            load_weights(weights, model)
        clips, mu, logvar = held_out_posterior(config, model, args.videos, args.seed)
        yield run, model, config, args.videos, args.seed, mu, logvar, clips
