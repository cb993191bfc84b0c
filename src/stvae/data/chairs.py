"""Rotating chairs, built and rendered offline (a stand-in for the paper's ShapeNet chairs).

The paper rendered ShapeNet chair models, which cannot be downloaded here. This module
builds the same task from a procedural family instead: every chair identity is a seed
that fixes a set of parameters (seat size, height and thickness; back height, tilt and
style -- solid panel, vertical slats or horizontal rails; four splayed legs or a pedestal
with a star base; leg thickness; arm rests or none), turned into 8-20 oriented boxes.

Each video is a 16-frame rotation of one chair about the vertical axis with a random
start angle, direction and speed (5, 10 or 15 degrees a frame, on a 5-degree grid of
views), rendered at 64x64 in grayscale by exact ray-box intersection under an
orthographic camera 20 degrees above the horizon, with Lambertian shading (ambient 0.25,
one directional light) on a black background.

Ground truth: ``static_labels`` = chair identity, ``temporal_labels`` = azimuth bin
(8 bins of 45 degrees), ``angles`` = the azimuth in radians, ``image_ids`` [V, T] = which
rendered view a frame is (chair and azimuth). Identities 0..9 are the held-out chairs of
the paper's static task (section 4.1); training draws identities from ``TRAIN_OFFSET`` on,
so the two never meet. The split ``test-score`` shows the held-out chairs from azimuths
half a grid step (2.5 degrees) off the grid that ``test`` and ``test-fit`` use, so a probe
fitted on one and scored on the other never sees the same image twice.

Rendering one chair's 72 views takes 0.1-0.2 s of CPU, and a training run meets nearly all
2,000 training chairs (about 5 minutes of a 2-core CPU's time). Each chair's views are
therefore kept on disk once rendered (:func:`cache_dir`: ``$STVAE_CACHE``, default
``~/.cache/stvae``, about 300 KB a chair; ``STVAE_CACHE=off`` renders every time), in a
folder named by a hash of this file, so a changed renderer never reads old images.
"""

from __future__ import annotations

import contextlib
import math
import os
from functools import cache
from pathlib import Path

import numpy as np

from stvae.cache import cache_dir as shared_cache_dir
from stvae.data.spec import SPLITS
from stvae.errors import StvaeError

__all__ = [
    "cache_dir",
    "chair_boxes",
    "render_views",
    "render",
    "TRAIN_OFFSET",
    "HELD_OUT",
    "AZIMUTH_BINS",
    "SPLITS",
]

FRAME = 64
HELD_OUT = 10  # identities 0..9: the test chairs
TRAIN_OFFSET = 1000  # training identities are TRAIN_OFFSET + k
AZIMUTH_BINS = 8
ELEVATION = math.radians(20.0)
LIGHT = np.array([0.4, 0.8, 0.45])
VIEWS = 72  # azimuth grid: 5 degrees a step
MAX_STEP = 3  # up to 15 degrees a frame
VIEW = 1.3  # the image plane spans [-VIEW, VIEW]^2 in chair units


def _box(centre, size, tilt_x=0.0, tilt_z=0.0):
    """(centre [3], half sizes [3], rotation [3, 3]): x right, y up, z towards the front."""
    cx, sx = math.cos(tilt_x), math.sin(tilt_x)
    cz, sz = math.cos(tilt_z), math.sin(tilt_z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return np.asarray(centre, float), np.asarray(size, float) / 2, rz @ rx


def chair_boxes(
    identity: int,
) -> list[
    tuple[np.ndarray, np.ndarray, np.ndarray]
]:  # long: the chair's parts as one list of boxes, read top to bottom
    """The oriented boxes of chair ``identity``, centred near the origin, about 2 units tall."""
    rng = np.random.default_rng([7_919, identity])
    w, d = rng.uniform(0.7, 1.2), rng.uniform(0.7, 1.2)  # seat width, depth
    seat_t = rng.uniform(0.05, 0.18)
    seat_h = rng.uniform(0.55, 1.0)  # height of the seat's top
    leg_t = rng.uniform(0.05, 0.14)
    back_h = rng.uniform(0.4, 1.2)
    back_t = rng.uniform(0.05, 0.12)
    tilt = math.radians(rng.uniform(-25.0, 0.0))
    base = -1.0  # floor
    top = base + seat_h
    boxes = [_box([0, top - seat_t / 2, 0], [w, seat_t, d])]
    if rng.random() < 0.75:  # four legs, possibly splayed
        splay = math.radians(rng.uniform(0.0, 12.0))
        length = seat_h - seat_t
        for sx in (-1, 1):
            for sz in (-1, 1):
                x = sx * (w / 2 - leg_t / 2 - rng.uniform(0, 0.1))
                z = sz * (d / 2 - leg_t / 2 - rng.uniform(0, 0.1))
                off = math.tan(splay) * length / 2
                boxes.append(
                    _box(
                        [x + sx * off, base + length / 2, z + sz * off],
                        [leg_t, length / math.cos(splay), leg_t],
                        tilt_x=sz * splay,
                        tilt_z=-sx * splay,
                    )
                )
        if rng.random() < 0.4:  # stretchers between the legs
            y = base + rng.uniform(0.15, 0.4) * seat_h
            boxes.append(_box([0, y, d / 2 - 0.1], [w - 0.2, leg_t * 0.6, leg_t * 0.6]))
            boxes.append(_box([0, y, -d / 2 + 0.1], [w - 0.2, leg_t * 0.6, leg_t * 0.6]))
    else:  # pedestal and star base
        col = rng.uniform(0.08, 0.2)
        boxes.append(_box([0, base + (seat_h - seat_t) / 2, 0], [col, seat_h - seat_t, col]))
        arms = int(rng.integers(3, 6))
        reach = rng.uniform(0.35, 0.6)
        for k in range(arms):
            a = 2 * math.pi * k / arms
            c, s = math.cos(a), math.sin(a)
            centre = np.array([c * reach / 2, base + 0.04, s * reach / 2])
            rot = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
            boxes.append((centre, np.array([reach / 2, 0.04, 0.04]), rot))
    style = rng.integers(0, 3)
    back_z = -d / 2 + back_t / 2
    lean = math.tan(-tilt) * back_h / 2
    if style == 0:  # solid panel
        boxes.append(_box([0, top + back_h / 2, back_z - lean], [w, back_h, back_t], tilt_x=tilt))
    elif style == 1:  # vertical slats under a top rail
        n = int(rng.integers(2, 6))
        rail = rng.uniform(0.08, 0.2)
        boxes.append(_box([0, top + back_h - rail / 2, back_z - 2 * lean], [w, rail, back_t]))
        for k in range(n):
            x = -w / 2 + back_t / 2 + k * (w - back_t) / max(n - 1, 1)
            boxes.append(
                _box([x, top + back_h / 2, back_z - lean], [back_t, back_h, back_t], tilt_x=tilt)
            )
    else:  # two posts and horizontal rails
        n = int(rng.integers(2, 5))
        for sx in (-1, 1):
            boxes.append(
                _box(
                    [sx * (w / 2 - back_t / 2), top + back_h / 2, back_z - lean],
                    [back_t, back_h, back_t],
                    tilt_x=tilt,
                )
            )
        for k in range(n):
            y = top + back_h * (k + 1) / n - back_t
            boxes.append(_box([0, y, back_z - lean * 2 * (k + 1) / n], [w, back_t * 1.5, back_t]))
    if rng.random() < 0.35:  # arm rests on posts
        arm_h = rng.uniform(0.2, 0.35)
        for sx in (-1, 1):
            boxes.append(_box([sx * (w / 2 - 0.04), top + arm_h, 0], [0.08, 0.06, d * 0.9]))
            boxes.append(
                _box([sx * (w / 2 - 0.04), top + arm_h / 2, d / 2 - 0.08], [0.06, arm_h, 0.06])
            )
    return boxes


def _camera() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthographic camera looking down by ELEVATION: (right, up, forward) unit vectors."""
    ce, se = math.cos(ELEVATION), math.sin(ELEVATION)
    return np.array([1.0, 0, 0]), np.array([0, ce, -se]), np.array([0, -se, -ce])


def render_views(identity: int, azimuths: np.ndarray) -> np.ndarray:
    """Chair ``identity`` seen from each azimuth (radians) -> float32 [A, 64, 64] in [0, 1].

    Exact ray casting: every pixel's ray is intersected with every box whose screen-space
    bounding rectangle covers it (slab test in the box's own frame); the nearest hit is
    shaded by its face normal. Rotating the chair by +azimuth about the vertical axis.
    """
    boxes = chair_boxes(identity)
    right, up, fwd = _camera()
    light = LIGHT / np.linalg.norm(LIGHT)
    pix = np.linspace(-VIEW, VIEW, FRAME)  # pixel centres on the image plane
    step = pix[1] - pix[0]
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    out = np.zeros((len(azimuths), FRAME, FRAME), dtype=np.float32)
    for a, az in enumerate(np.asarray(azimuths, dtype=np.float64)):
        c, s = math.cos(az), math.sin(az)
        spin = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # chair -> world
        depth = np.full((FRAME, FRAME), np.inf)
        for centre, half, rot in boxes:
            r_world = spin @ rot  # box frame -> world
            c_world = spin @ centre
            pts = c_world + (corners * half) @ r_world.T  # [8, 3]
            sx, sy = pts @ right, pts @ up
            cols = np.arange(
                max(0, int(np.floor((sx.min() - pix[0]) / step))),
                min(FRAME, int(np.ceil((sx.max() - pix[0]) / step)) + 1),
            )
            rows = np.arange(
                max(0, int(np.floor((pix[-1] - sy.max()) / step))),
                min(FRAME, int(np.ceil((pix[-1] - sy.min()) / step)) + 1),
            )
            if not len(cols) or not len(rows):
                continue
            # ray origins of the rectangle, in the box frame; row 0 is the top of the image
            origin = pix[cols][None, :, None] * right + pix[::-1][rows][:, None, None] * up
            o = (origin - 5.0 * fwd - c_world) @ r_world  # [R, C, 3]
            d = fwd @ r_world  # [3]
            d = np.where(np.abs(d) < 1e-12, 1e-12, d)
            t1, t2 = (-half - o) / d, (half - o) / d
            t_lo = np.minimum(t1, t2)
            t_near, t_far = t_lo.max(-1), np.maximum(t1, t2).min(-1)
            hit = (t_far >= t_near) & (t_far > 0)
            block = depth[rows[:, None], cols[None, :]]
            closer = hit & (t_near < block)
            if not closer.any():
                continue
            axis = t_lo.argmax(-1)  # the slab entered last holds the entry face
            normal = -np.sign(d)[axis][..., None] * r_world.T[axis]  # world-space face normal
            shade = 0.25 + 0.75 * np.clip(normal @ light, 0.0, None)
            depth[rows[:, None], cols[None, :]] = np.where(closer, t_near, block)
            img = out[a, rows[:, None], cols[None, :]]
            out[a, rows[:, None], cols[None, :]] = np.where(closer, shade, img)
    return out


def cache_dir() -> Path | None:
    """Where rendered views are kept: ``$STVAE_CACHE`` (default ``~/.cache/stvae``) /
    ``chairs-<hash of this file>`` (:func:`stvae.cache.cache_dir`); None when
    ``STVAE_CACHE=off``."""
    return shared_cache_dir("chairs", __file__)


@cache
def _view_bank(identity: int, phase: float = 0.0) -> np.ndarray:
    """All VIEWS azimuths of one chair, shifted by ``phase`` grid steps, uint8 [VIEWS, 64, 64]:
    rendered once per process, read from :func:`cache_dir` when it holds them (a damaged
    file is rendered again and replaced; an unwritable cache is no error)."""
    folder = cache_dir()
    path = None if folder is None else folder / f"{identity}-{phase:g}.npy"
    if path is not None and path.exists():
        try:
            bank = np.load(path, allow_pickle=False)
            if bank.shape == (VIEWS, FRAME, FRAME) and bank.dtype == np.uint8:
                return bank
        except (OSError, ValueError, EOFError):
            pass
    views = render_views(identity, (np.arange(VIEWS) + phase) * (2 * math.pi / VIEWS))
    bank = np.rint(views * 255).astype(np.uint8)
    if path is not None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, bank)
            os.replace(tmp, path)  # whole or absent: never half a file under the name
        except OSError:  # read-only, full, or not a folder: render again next time
            with contextlib.suppress(OSError):
                tmp.unlink()
    return bank


def render(
    videos: int, frames: int, rng: np.random.Generator, split: str = "train", identities: int = 2000
) -> dict[str, np.ndarray]:
    """``videos`` rotating-chair videos -> uint8 videos [V, T, 64, 64] and labels.

    ``split`` "train" draws identities from TRAIN_OFFSET .. TRAIN_OFFSET + identities - 1;
    "test" and "test-fit" from the HELD_OUT chairs 0..9, "test-score" from the same chairs
    half a grid step off the grid. Azimuths lie on a grid of VIEWS steps (5 degrees, like
    the paper's fixed renderings), so each chair is rendered once per process and then
    served from memory: start on the grid, 1-3 steps a frame, either direction.
    """
    if split not in SPLITS:
        raise StvaeError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if split == "train":
        ids = TRAIN_OFFSET + rng.integers(0, identities, size=videos)
    else:
        ids = rng.integers(0, HELD_OUT, size=videos)
    phase = 0.5 if split == "test-score" else 0.0
    start = rng.integers(0, VIEWS, size=videos)
    speed = rng.integers(1, MAX_STEP + 1, size=videos) * rng.choice([-1, 1], size=videos)
    steps = np.mod(start[:, None] + speed[:, None] * np.arange(frames), VIEWS)  # [V, T]
    out = np.stack([_view_bank(int(i), phase)[s] for i, s in zip(ids, steps, strict=True)])
    angles = (steps + phase) * (2 * math.pi / VIEWS)
    return {
        "videos": out,
        "static_labels": ids.astype(np.int64),
        "temporal_labels": (steps * AZIMUTH_BINS // VIEWS).astype(np.int64),
        "angles": angles.astype(np.float32),
        # a rendered view: chair, then azimuth in half grid steps
        "image_ids": ids[:, None] * (2 * VIEWS) + 2 * steps + int(2 * phase),
    }
