"""Training to a time budget: how many steps fit, measured on this machine.

``stvae train --time-budget 10m`` runs its first steps (compiling included), measures
the loop's rate over the next ones (at least ``MEASURE_STEPS`` steps and 5% of the
budget, at most 30 s of it), and fixes the number of steps so that the whole
run (setup, compiling, loop) ends about when the budget does. The learning-rate schedule
scales with the steps as the preset's does (the ``cpu`` preset decays every third of
its run), never moving a decay before a step already taken, so the chosen config, which
config.json records, reproduces the run exactly on ``--resume`` or a rerun. A run stopped
before it chose (config.json still holds the budget) measures again on ``--resume`` and
fills what is left of its budget after the loop time already spent.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import time
from dataclasses import dataclass

from stvae import distributed
from stvae.config import TrainConfig
from stvae.errors import StvaeError

__all__ = [
    "parse_duration",
    "measured",
    "Choice",
    "choose_steps",
    "measured_on_every_rank",
    "fit",
    "say",
    "UNTIL_CHOSEN",
]

WARMUP_STEPS = 3  # steps not timed: the first compiles, the next few warm caches up
MEASURE_STEPS = 20  # at least this many steps are timed ...
MEASURE_SHARE = 0.05  # ... and at least this share of the budget (at most MEASURE_MAX_S)
MEASURE_MAX_S = 30.0
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``"10m"``, ``"90s"``, ``"1.5h"`` or plain seconds ``"600"`` -> seconds (> 0)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", text)
    if not match:
        raise StvaeError(f"a time budget looks like 10m, 90s, 1.5h or 600; got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise StvaeError(f"a time budget must be positive; got {text!r}")
    return seconds


def measured(budget_s: float, steps_timed: int, seconds: float) -> bool:
    """Whether ``steps_timed`` steps over ``seconds`` are enough to measure the rate."""
    return steps_timed >= MEASURE_STEPS and seconds >= min(MEASURE_MAX_S, MEASURE_SHARE * budget_s)


@dataclass(frozen=True)
class Choice:
    steps: int  # optimiser steps in all
    lr_decay_every: int  # the schedule scaled to them
    steps_per_s: float  # the measured rate of the loop
    fits: bool  # False when the budget was spent before it could be measured


def choose_steps(
    budget_s: float,
    elapsed_s: float,
    done: int,
    steps_per_s: float,
    steps: int,
    lr_decay_every: int,
) -> Choice:
    """Steps that fill ``budget_s`` seconds, ``elapsed_s`` of which are spent with ``done``
    steps taken, at ``steps_per_s``; ``steps`` and ``lr_decay_every`` are the config's,
    whose ratio the chosen schedule keeps (at least one step past ``done``)."""
    more = max(0, math.floor((budget_s - elapsed_s) * steps_per_s))
    total = max(done, done + more, 1)
    every = _decay_every(total, done, steps, lr_decay_every)
    return Choice(total, every, steps_per_s, fits=more > 0)


def _decay_every(total: int, done: int, steps: int, lr_decay_every: int) -> int:
    """The schedule of ``steps`` / ``lr_decay_every`` scaled to ``total`` steps, never
    moving a decay before a step already taken (``done``)."""
    return max(done + 1, round(total * lr_decay_every / steps), 1)


UNTIL_CHOSEN = 10**9  # a time-budget run's length until its rate is measured


def measured_on_every_rank(planned: TrainConfig, timed: int, seconds: float, d, device) -> bool:
    """Whether the rate is measured; under DDP as soon as one rank says so, so that every
    rank chooses at the same step (the ranks' clocks differ)."""
    ready = measured(planned.time_budget, timed, seconds)
    return distributed.min_over_ranks(0 if ready else 1, d, device) == 0


def fit(planned: TrainConfig, done: int, steps_per_s: float, t_call: float, d, device):
    """The steps that fit ``planned.time_budget`` (the same on every rank: the least)."""
    choice = choose_steps(
        planned.time_budget,
        time.perf_counter() - t_call,
        done,
        steps_per_s,
        planned.steps,
        planned.lr_decay_every,
    )
    steps = distributed.min_over_ranks(choice.steps, d, device)
    if steps != choice.steps:
        every = _decay_every(steps, done, planned.steps, planned.lr_decay_every)
        choice = dataclasses.replace(choice, steps=steps, lr_decay_every=every)
    return choice


def say(planned: TrainConfig, choice) -> None:
    minutes = planned.time_budget / 60
    if not choice.fits:
        print(
            f"stvae: the time budget ({minutes:.1f} min) was spent before training could be "
            f"measured; stopping after {choice.steps} steps",
            file=sys.stderr,
        )
        return
    print(
        f"stvae: time budget {minutes:.1f} min: {choice.steps_per_s:.2f} steps/s here, so "
        f"{choice.steps} steps in all (learning rate x{planned.lr_decay:g} every "
        f"{choice.lr_decay_every}); config.json records them",
        flush=True,
    )
