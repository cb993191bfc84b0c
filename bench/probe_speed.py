"""Eq 19's probe fits for a baseline in one process against several, in one run.

    python bench/probe_speed.py RUN [--features 6] [--probe rbf] [--workers 2]

Encodes the run's probe sets (:func:`stvae.evaluate.probe_sets`; a generated dataset
with static and temporal labels), keeps its first ``--features`` features (6: 62
divisions, 248 fits; 8 gives the full 254 divisions) and times
:func:`stvae.probes.disentanglement` for the first static target against the temporal
one with ``workers=1`` and ``workers=--workers``, printing both times, their ratio and the
two scores (which must be equal).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stvae.evaluate import encode_run, probe_sets, static_targets
from stvae.probes import disentanglement, probe_workers
from stvae.train import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a run directory of a baseline on generated data")
    p.add_argument("--features", type=int, default=6)
    p.add_argument("--probe", choices=("linear", "rbf"), default="rbf")
    p.add_argument("--workers", type=int, default=probe_workers())
    args = p.parse_args()
    _, config = load_run(args.run)
    sets = probe_sets(config.data)
    fit, score = sets["fit"][args.probe], sets["score"]
    mu = np.concatenate([encode_run(args.run, d)["mu"] for d in (fit, score)])
    mu = mu[..., : args.features]
    name, target = next(iter(static_targets(fit).items()))
    static = np.concatenate([target, static_targets(score)[name]])
    temporal = np.concatenate([fit["temporal_labels"], score["temporal_labels"]])
    split = (np.arange(len(fit["videos"])), np.arange(len(fit["videos"]), len(mu)))
    seconds = {}
    for workers in (1, args.workers):
        t = time.perf_counter()
        r = disentanglement(mu, static, temporal, 0, probe=args.probe, split=split, workers=workers)
        seconds[workers] = time.perf_counter() - t
        print(
            f"{args.probe} probe, static target {name}, {r.division} divisions: "
            f"{workers} process(es) {seconds[workers]:.1f} s, d-score {r.d_score:.4f}"
        )
    print(f"speed-up {seconds[1] / seconds[args.workers]:.2f}x with {args.workers} processes")


if __name__ == "__main__":
    main()
