"""Bouncing MNIST (Srivastava et al., the paper's first dataset), generated on the fly.

One 28x28 MNIST digit moves in a straight line inside a 64x64 frame and bounces off the
walls. Start position is uniform over the frame, direction uniform over the circle and
speed uniform in [2, 5] pixels a frame. Ground truth (section 4.1):

* ``static_labels`` [V]: the digit class;
* ``temporal_labels`` [V, T]: the 3x3 cell (thirds of the frame) holding the digit's
  centre, as row * 3 + col;
* ``positions`` [V, T, 2]: the digit's centre (row, col) in pixels.

Everything is vectorised over videos and frames (no Python loop per frame), and a batch
is a pure function of the seed it is given.
"""

from __future__ import annotations

import numpy as np

from stvae.data.digits import Digits

__all__ = ["render", "SPEED_RANGE", "TEMPORAL_CLASSES", "STATIC_CLASSES"]

FRAME = 64
DIGIT = 28
TRAVEL = FRAME - DIGIT  # top-left corner moves in [0, 36]
SPEED_RANGE = (2.0, 5.0)
STATIC_CLASSES = 10
TEMPORAL_CLASSES = 9


def _bounce(start: np.ndarray, velocity: np.ndarray, frames: int) -> np.ndarray:
    """Reflecting straight-line motion in [0, TRAVEL]: [V, 2], [V, 2] -> [V, T, 2]."""
    t = np.arange(frames, dtype=np.float64)[None, :, None]
    free = start[:, None, :] + velocity[:, None, :] * t  # unbounded path
    folded = np.mod(free, 2 * TRAVEL)
    return TRAVEL - np.abs(folded - TRAVEL)  # a triangle wave is a ball between two walls


def render(
    digits: Digits, videos: int, frames: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draws ``videos`` videos of ``frames`` frames from ``digits`` with ``rng``.

    Returns ``videos`` uint8 [V, T, 64, 64] and the labels described in the module doc.
    """
    pick = rng.integers(0, len(digits.labels), size=videos)
    start = rng.uniform(0.0, TRAVEL, size=(videos, 2))
    angle = rng.uniform(0.0, 2 * np.pi, size=videos)
    speed = rng.uniform(*SPEED_RANGE, size=videos)
    velocity = speed[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    top_left = np.rint(_bounce(start, velocity, frames)).astype(np.int64)  # [V, T, 2]

    out = np.zeros((videos, frames, FRAME, FRAME), dtype=np.uint8)
    offs = np.arange(DIGIT)
    rows = (top_left[..., 0, None] + offs)[..., :, None]  # [V, T, 28, 1]
    cols = (top_left[..., 1, None] + offs)[..., None, :]  # [V, T, 1, 28]
    v_idx = np.arange(videos)[:, None, None, None]
    t_idx = np.arange(frames)[None, :, None, None]
    out[v_idx, t_idx, rows, cols] = digits.images[pick][:, None]

    centre = (top_left + DIGIT / 2).astype(np.float32)  # [V, T, 2]
    cell = np.minimum((centre * 3 // FRAME).astype(np.int64), 2)
    return {
        "videos": out,
        "static_labels": digits.labels[pick].astype(np.int64),
        "temporal_labels": cell[..., 0] * 3 + cell[..., 1],
        "positions": centre,
    }
