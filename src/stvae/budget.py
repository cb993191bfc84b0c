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

import torch

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


def measured_on_every_rank(planned: TrainConfig, timed: int, seconds: float, ranks, device) -> bool:
    """Whether the rate is measured; under DDP as soon as one rank says so, so that every
    rank chooses at the same step (the ranks' clocks differ)."""
    ready = measured(planned.time_budget, timed, seconds)
    return distributed.min_over_ranks(0 if ready else 1, ranks, device) == 0


def fit(planned: TrainConfig, done: int, steps_per_s: float, t_call: float, ranks, device):
    """The steps that fit ``planned.time_budget`` (the same on every rank: the least)."""
    choice = choose_steps(
        planned.time_budget,
        time.perf_counter() - t_call,
        done,
        steps_per_s,
        planned.steps,
        planned.lr_decay_every,
    )
    steps = distributed.min_over_ranks(choice.steps, ranks, device)
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


class Budget:
    """A run's time budget and its state through the loop: what was asked (``planned``),
    the step after which the rate is timed, when timing began, and the choice once made.

    Without a budget (``time_budget`` None) it does nothing. With one, the run trains on
    :meth:`provisional` (no learning-rate decay, an open end) until :meth:`after_step`
    has measured the rate and returns the config with the steps chosen.
    """

    def __init__(self, config: TrainConfig, step: int, spent_s: float, resume: bool, t_call):
        self.planned = config  # what the caller asked for; the choice rescales its schedule
        self.t_call = t_call  # the budget counts from the call to train()
        self.timing_from = None  # the step after which the rate is timed
        self.t_timing = None  # when the timed steps began
        self.choice = None
        if config.time_budget is not None:  # not chosen yet (on resume: stopped before it was)
            if resume:  # what is left of the budget after the loop time already spent
                left = max(config.time_budget - spent_s, 1e-3)
                self.planned = config.replace(time_budget=left)
            self.timing_from = step + WARMUP_STEPS

    def provisional(self, config: TrainConfig) -> TrainConfig:
        """The config to train on until the steps are chosen: no decay, so the chosen
        schedule takes none before the step it is chosen at and config.json replays it."""
        if self.timing_from is None:
            return config
        return config.replace(steps=UNTIL_CHOSEN, lr_decay_every=UNTIL_CHOSEN)

    def after_step(self, step: int, ranks, device) -> TrainConfig | None:
        """Times the loop after ``step`` steps; the config chosen, once measured, else None."""
        if self.choice is not None or self.timing_from is None:
            return None
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # a time budget times steps done, not launched
        now = time.perf_counter()
        if step == self.timing_from:
            self.t_timing = now
        if self.t_timing is None:
            return None
        timed = step - self.timing_from
        if not measured_on_every_rank(self.planned, timed, now - self.t_timing, ranks, device):
            return None
        rate = timed / (now - self.t_timing)
        self.choice = fit(self.planned, step, rate, self.t_call, ranks, device)
        return self.planned.replace(
            steps=self.choice.steps, lr_decay_every=self.choice.lr_decay_every, time_budget=None
        )
