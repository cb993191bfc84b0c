"""Bouncing MNIST (Srivastava et al., the paper's first dataset), generated on the fly.

One 28x28 MNIST digit moves in a straight line inside a 64x64 frame and bounces off the
walls, as in the generator the paper's authors scored with (Srivastava et al.'s): the
digit's top-left corner travels over the ``TRAVEL`` = 36 pixels the frame leaves it, its
position (row, col) in [0, 1] over that range starts uniform, its direction is uniform
over the circle, and it moves a constant ``SPEED`` = 0.1 of the range (3.6 pixels) a
frame, reflecting at the walls. ``speed`` takes another range (fractions of the travel
range a frame, drawn uniformly per video); stvae before 0.2 drew 2-5 pixels
(``LEGACY_SPEED``). Ground truth (section 4.1):

* ``static_labels`` [V]: the digit class;
* ``temporal_labels`` [V, T]: the 3x3 cell of the top-left corner in thirds of the
  travel range, row * 3 + col (the authors' grid: ``int(3 x)`` per axis, the far wall
  kept in the last third); near-balanced, unlike thirds of the 64-pixel frame, which
  put a third of all frames in the centre cell;
* ``positions`` [V, T, 2]: the digit's centre (row, col) in pixels;
* ``image_ids`` [V]: which digit image the video shows (:attr:`Digits.ids`), so probe
  sets can be checked to share no image.

Everything is vectorised over videos and frames (no Python loop per frame), and a batch
is a pure function of the seed it is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from stvae.data.digits import Digits
from stvae.errors import StvaeError

__all__ = [
    "render",
    "paint",
    "location_class",
    "SPEED",
    "LEGACY_SPEED",
    "TEMPORAL_DEFINITION",
]

FRAME = 64
DIGIT = 28
TRAVEL = FRAME - DIGIT  # top-left corner moves in [0, 36] pixels
SPEED = (0.1, 0.1)  # fraction of TRAVEL a frame (low, high): the authors' constant 0.1
LEGACY_SPEED = (2.0 / TRAVEL, 5.0 / TRAVEL)  # stvae < 0.2: 2-5 pixels a frame


def check_speed(speed) -> tuple[float, float]:
    """A speed (low, high), fractions of the travel range a frame, checked: two numbers,
    0 <= low <= high <= 1 -> the tuple."""
    try:
        pair = tuple(float(s) for s in speed)
    except (TypeError, ValueError):
        raise StvaeError(f"speed must be two numbers (low, high); got {speed!r}") from None
    if len(pair) != 2 or not 0 <= pair[0] <= pair[1] <= 1:
        raise StvaeError(
            f"speed must be 0 <= low <= high <= 1 (of the travel range a frame); got {speed!r}"
        )
    return pair


@dataclass(frozen=True)
class Options:
    """Bouncing MNIST's own settings (its spec's ``options``; fields of
    :class:`stvae.data.DataConfig` and flags of ``stvae train`` and ``stvae dataset``)."""

    mnist_dir: str | None = field(
        default=None, metadata={"help": "folder of MNIST IDX files instead of the shipped subset"}
    )
    speed: tuple[float, float] = field(  # the authors' generator moves a constant 0.1
        default=SPEED,
        metadata={
            "parse": "speed",
            "help": "bouncing-mnist: the digit's speed, a fraction of its 36-pixel travel "
            "range a frame: one number (constant; default 0.1, the authors' generator) or "
            "LOW,HIGH (uniform per video)",
        },
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "speed", check_speed(self.speed))  # JSON gives a list
        if self.mnist_dir is not None:  # recorded absolute: the run reads it from anywhere
            object.__setattr__(
                self, "mnist_dir", os.path.abspath(os.path.expanduser(self.mnist_dir))
            )


# What ``temporal_labels`` mean; recorded in dataset files and eval.json so that labels
# of this grid are never mixed silently with the frame-thirds grid of stvae < 0.2.
TEMPORAL_DEFINITION = "travel-thirds"


def _bounce(start: np.ndarray, velocity: np.ndarray, frames: int) -> np.ndarray:
    """Reflecting straight-line motion in [0, 1]: start [V, 2], velocity [V, 2] -> [V, T, 2]."""
    t = np.arange(frames, dtype=np.float64)[None, :, None]
    free = start[:, None, :] + velocity[:, None, :] * t  # unbounded path
    folded = np.mod(free, 2.0)
    return 1.0 - np.abs(folded - 1.0)  # a triangle wave is a ball between two walls


def location_class(top_left):
    """The authors' 3x3 location class of top-left corners in pixels: [..., 2] -> [...].

    Per axis ``int(3 x)`` with x = corner / TRAVEL in [0, 1], x = 1 (the far wall) kept
    in the last third: corners 0-11 -> 0, 12-23 -> 1, 24-36 -> 2. Class = row * 3 + col.
    Integer arrays, or int64 torch tensors on any device (:mod:`stvae.data.on_device`).
    """
    if not isinstance(top_left, torch.Tensor):
        top_left = np.asarray(top_left, dtype=np.int64)
    cell = (top_left * 3 // TRAVEL).clip(max=2)
    return cell[..., 0] * 3 + cell[..., 1]


def render(
    digits: Digits,
    videos: int,
    frames: int,
    rng: np.random.Generator,
    speed: tuple[float, float] = SPEED,
) -> dict[str, np.ndarray]:
    """Draws ``videos`` videos of ``frames`` frames from ``digits`` with ``rng``.

    ``speed`` (low, high): fraction of the travel range a frame, uniform per video.
    Returns ``videos`` uint8 [V, T, 64, 64] and the labels described in the module doc.
    """
    pick = rng.integers(0, len(digits.labels), size=videos)
    start = rng.uniform(0.0, 1.0, size=(videos, 2))
    angle = rng.uniform(0.0, 2 * np.pi, size=videos)
    pace = rng.uniform(*speed, size=videos)
    velocity = pace[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    return paint(digits, pick, start, velocity, frames)


def paint(
    digits: Digits, pick: np.ndarray, start: np.ndarray, velocity: np.ndarray, frames: int
) -> dict[str, np.ndarray]:
    """Videos of digit images ``pick`` [V] starting at ``start`` [V, 2] (row, col in [0, 1]
    of the travel range) moving ``velocity`` [V, 2] a frame: what :func:`render` returns.

    The motion is the same float64 arithmetic as :mod:`stvae.data.on_device`'s, so the
    same parameters give the same pixels on either path (tested)."""
    videos = len(pick)
    top_left = np.rint(_bounce(start, velocity, frames) * TRAVEL).astype(np.int64)  # [V, T, 2]
    out = np.zeros((videos, frames, FRAME, FRAME), dtype=np.uint8)
    offs = np.arange(DIGIT)
    rows = (top_left[..., 0, None] + offs)[..., :, None]  # [V, T, 28, 1]
    cols = (top_left[..., 1, None] + offs)[..., None, :]  # [V, T, 1, 28]
    v_idx = np.arange(videos)[:, None, None, None]
    t_idx = np.arange(frames)[None, :, None, None]
    out[v_idx, t_idx, rows, cols] = digits.images[pick][:, None]

    return {
        "videos": out,
        "static_labels": digits.labels[pick].astype(np.int64),
        "temporal_labels": location_class(top_left),
        "positions": (top_left + DIGIT / 2).astype(np.float32),
        "image_ids": digits.ids[pick].astype(np.int64),
    }
