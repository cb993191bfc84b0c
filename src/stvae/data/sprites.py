"""Procedural sprites: colour characters performing actions, drawn offline with ground truth.

The field's sequential-disentanglement benchmark (animated "Sprites" characters: four
appearance attributes, actions seen from several directions) cannot be downloaded here
and its links are dead. This module draws a stand-in of the same design. **These are not
the original Sprites**; numbers on them are comparable with each other, not with papers'.

A character is four static attributes, six options each (6^4 = 1,296 characters):

* ``skin``: the colour of head and hands;
* ``hair``: a style (short, long, crest) in one of two colours;
* ``top``: the colour of torso and sleeves;
* ``trousers``: the colour of the legs (shoes are always dark grey, eyes black).

It performs one of three actions (walk, wave, jump), seen from one of three directions
(facing left, the viewer, right): nine action classes, as in the field's benchmark. An
action is a cycle of 8 poses; a clip starts at a random pose and advances one pose a
frame, looping, so clips of any length are possible. Frames are 64x64 RGB, the character
centred on a white background, drawn as flat-coloured pixel art: every pose of every
hair style is drawn once as a map of part labels (filled disks, thick segments and
rectangles, painted back to front), and a clip is those maps coloured by its character's
palette, so drawing costs one table look-up a pixel.

Ground truth (file format of :mod:`stvae.data.files`): ``attributes`` [V, 4] (the option
of each attribute) with ``attribute_names`` [4] (``ATTRIBUTES``), ``image_ids`` [V] (the character,
0..1,295), ``temporal_labels`` [V, T] (the action class, ``3 * action + direction``),
``phases`` [V, T] (the pose, 0..7). A fixed eighth of the characters (162, every
attribute option among them) is held out: ``test`` draws from them, ``test-fit`` and
``test-score`` from two halves of them (81 characters each); ``train`` from the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from stvae.data.spec import SPLITS
from stvae.errors import StvaeError

__all__ = [
    "ATTRIBUTES",
    "OPTIONS",
    "ACTIONS",
    "DIRECTIONS",
    "POSES",
    "CHARACTERS",
    "TEMPORAL_DEFINITION",
    "render",
    "balanced",
    "pose_labels",
    "characters",
    "character_attributes",
]

FRAME = 64
ATTRIBUTES = ("skin", "hair", "top", "trousers")
OPTIONS = 6  # options of each attribute
CHARACTERS = OPTIONS ** len(ATTRIBUTES)  # 1,296
ACTIONS = ("walk", "wave", "jump")
DIRECTIONS = ("left", "front", "right")
POSES = 8  # poses in one action cycle
TEMPORAL_DEFINITION = "action x direction (9 classes: 3 * action + direction)"

# part labels of the pose maps, painted back to front
BACKGROUND, SKIN, HAIR, TOP, TROUSERS, SHOES, EYES = range(7)
WHITE, SHOE_GREY, BLACK = (255, 255, 255), (70, 70, 70), (0, 0, 0)
SKIN_COLOURS = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                (141, 85, 36), (92, 51, 23))  # fmt: skip
HAIR_STYLES = ("short", "long", "crest")
HAIR_OPTIONS = (("short", (40, 30, 20)), ("short", (230, 190, 60)),
                ("long", (120, 60, 20)), ("long", (200, 50, 30)),
                ("crest", (60, 80, 220)), ("crest", (150, 150, 150)))  # fmt: skip
TOP_COLOURS = ((220, 40, 40), (40, 170, 60), (40, 90, 220), (240, 210, 40), (150, 60, 190),
               (250, 130, 20))  # fmt: skip
TROUSER_COLOURS = ((20, 30, 90), (50, 50, 50), (120, 80, 40), (150, 150, 160), (0, 130, 130),
                   (120, 20, 40))  # fmt: skip
FIGURE_CENTRE = (32.0, 31.0)  # the middle of every pose (crest at a jump's top to shoes: rows 2-59)
HELD_OUT_SEED = 20_180_316  # fixes which characters are held out, for every user


def character_attributes(ids: np.ndarray) -> np.ndarray:
    """Character ids [...] (0..1,295) -> attribute options [..., 4] (skin, hair, top,
    trousers), each 0..5: the id's base-6 digits, skin most significant."""
    ids = np.asarray(ids, dtype=np.int64)
    powers = OPTIONS ** np.arange(len(ATTRIBUTES) - 1, -1, -1)
    return (ids[..., None] // powers) % OPTIONS


@cache
def characters(split: str) -> np.ndarray:
    """The character ids a split draws from (sorted int64)."""
    if split not in SPLITS:
        raise StvaeError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    order = np.random.default_rng(HELD_OUT_SEED).permutation(CHARACTERS)
    held = order[: CHARACTERS // 8]
    chosen = {
        "train": order[CHARACTERS // 8 :],
        "test": held,
        "test-fit": held[: len(held) // 2],
        "test-score": held[len(held) // 2 :],
    }[split]
    return np.sort(chosen)


@dataclass(frozen=True)
class Design:
    """How characters are drawn: the figure stretched by ``scale`` (x, y) about
    :data:`FIGURE_CENTRE` (1, 1: as designed), on ``background`` (RGB), legs ``leg_width``
    pixels thick and the hair's cap of radius ``hair_radius`` (before stretching)."""

    scale: tuple[float, float] = (1.0, 1.0)
    background: tuple[int, int, int] = WHITE
    leg_width: float = 5.0
    hair_radius: float = 7.0


# The first design (16-frame clips in its grid; its reports' numbers are on it): a figure
# of 512 of the frame's 4,096 pixels a pose on average, on white.
EARLIER = Design()
# The field's Sprites in size and background: a figure of 946 pixels (top 252, trousers
# 174, hair 243; the original's: 800-1,000, 190-360, 100-180, 230-300;
# docs/results/sprites-designs.md), on black; its benchmark clips are 8 frames.
FIELD = Design(scale=(1.7, 1.08), background=BLACK, leg_width=3.6, hair_radius=8.6)


def _grid(design: Design = EARLIER) -> tuple[np.ndarray, np.ndarray]:
    """The design's coordinates (x, y) [64, 64] of each pixel's centre: the frame
    stretched by ``1 / design.scale`` about its centre, so shapes drawn in them come out
    stretched by ``design.scale``."""
    y, x = np.mgrid[0:FRAME, 0:FRAME].astype(np.float64) + 0.5  # pixel centres
    if design.scale != (1.0, 1.0):
        x = FIGURE_CENTRE[0] + (x - FIGURE_CENTRE[0]) / design.scale[0]
        y = FIGURE_CENTRE[1] + (y - FIGURE_CENTRE[1]) / design.scale[1]
    return x, y


def _disk(grid, cx: float, cy: float, r: float) -> np.ndarray:
    x, y = grid
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _segment(grid, p: tuple[float, float], q: tuple[float, float], width: float) -> np.ndarray:
    """Pixels within width / 2 of the segment p-q (a thick line with round ends)."""
    x, y = grid
    px, py = p
    dx, dy = q[0] - px, q[1] - py
    t = np.clip(((x - px) * dx + (y - py) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    return (x - px - t * dx) ** 2 + (y - py - t * dy) ** 2 <= (width / 2) ** 2


def _rect(grid, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Pixels whose centres lie in [x0, x1] x [y0, y1] (closed: mirror images stay mirrored)."""
    x, y = grid
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _limb(root, length, angle):
    """End point of a limb of ``length`` from ``root`` at ``angle`` (radians from straight
    down, positive towards +x)."""
    return root[0] + length * math.sin(angle), root[1] + length * math.cos(angle)


def _draw(
    style: str, action: str, side: bool, phase: int, design: Design = EARLIER
) -> np.ndarray:  # long: a sprite's body parts drawn in painting order, one block each
    """One pose as part labels uint8 [64, 64], facing right when ``side``, else the viewer."""
    grid = _grid(design)
    theta = 2 * math.pi * phase / POSES
    cx = 32.0
    lift = 0.0
    leg_angles = (0.0, 0.0)  # (far or left, near or right), radians from straight down
    arm_angles = (0.05, -0.05) if side else (-0.15, 0.15)  # hanging, a little apart
    foot_up = (0.0, 0.0)
    if action == "walk":
        swing = 0.45 * math.sin(theta)
        if side:
            leg_angles, arm_angles = (swing, -swing), (-0.8 * swing, 0.8 * swing)
        else:  # seen from the front: feet lift in turn, arms swing out in turn
            s = math.sin(theta)
            foot_up = (3.0 * max(0.0, s), 3.0 * max(0.0, -s))
            arm_angles = (-0.15 - 0.3 * max(0.0, -s), 0.15 + 0.3 * max(0.0, s))
        lift = abs(math.sin(theta))
    elif action == "wave":
        wave = 2.6 + 0.45 * math.sin(theta)  # the near (or right) arm up, waving
        arm_angles = (0.05, wave) if side else (-0.15, wave)
    else:  # jump: up and down once a cycle, arms rising with the body
        height = 6.0 * math.sin(math.pi * phase / POSES)
        lift = height
        up = 0.35 * height
        arm_angles = (0.05 + up, 0.05 + up) if side else (-0.15 - up, 0.15 + up)
        tuck = 0.12 * height
        leg_angles = (tuck, tuck) if side else (-tuck, tuck)
    top = 11.0 - lift  # the crown of the head
    head = (cx, top + 7.0)
    shoulder_y, hip_y = top + 16.0, top + 31.0
    half_w = 4.0 if side else 6.0
    out = np.zeros((FRAME, FRAME), dtype=np.uint8)

    def paint(mask, label):
        out[mask] = label

    def leg(i):
        x = cx if side else cx + (-2.5 if i == 0 else 2.5)
        foot = _limb((x, hip_y), 15.0 - foot_up[i], leg_angles[i])
        paint(_segment(grid, (x, hip_y), foot, design.leg_width), TROUSERS)
        toe = (foot[0] + (2.5 if side else 0.0), foot[1] + 0.5)
        paint(_segment(grid, foot, toe, 3.5), SHOES)

    def arm(i):
        x = cx if side else cx + (-half_w - 1.5 if i == 0 else half_w + 1.5)
        root = (x, shoulder_y + 1.5)
        hand = _limb(root, 12.0, arm_angles[i])
        elbow = _limb(root, 6.0, arm_angles[i])
        paint(_segment(grid, root, elbow, 4.0), TOP)  # sleeve
        paint(_segment(grid, elbow, hand, 3.0), SKIN)
        paint(_disk(grid, *hand, 2.0), SKIN)

    if side:  # the far limbs first
        arm(0)
        leg(0)
    paint(_rect(grid, cx - half_w, cx + half_w, shoulder_y, hip_y + 1.0), TOP)
    paint(_rect(grid, cx - half_w, cx + half_w, hip_y - 2.0, hip_y + 2.0), TROUSERS)
    if side:
        leg(1)
    else:
        leg(0)
        leg(1)
    paint(_segment(grid, (cx, head[1] + 5.0), (cx, shoulder_y), 4.0), SKIN)  # neck
    if style == "long":  # hair falling to the shoulders: behind the head, or either side
        y0, y1 = head[1] - 3.0, head[1] + 9.0
        if side:
            paint(_rect(grid, cx - 8.0, cx - 1.0, y0, y1), HAIR)
        else:
            paint(
                _rect(grid, cx - 7.5, cx - 4.0, y0, y1) | _rect(grid, cx + 4.0, cx + 7.5, y0, y1),
                HAIR,
            )
    paint(_disk(grid, *head, 6.5), SKIN)
    rows = grid[1]
    cap = _disk(grid, head[0] - (1.0 if side else 0.0), head[1] - 1.5, design.hair_radius) & (
        rows < head[1] - (1.0 if style == "short" else 0.0)
    )
    if style == "crest":
        crest = _rect(grid, cx - 2.0, cx + 2.0, head[1] - 10.0, head[1] - 4.0)
        cap = (cap & (rows < head[1] - 3.0)) | crest
    paint(cap, HAIR)
    eye_y = head[1] + 0.5
    eyes = [(cx + 3.5, eye_y)] if side else [(cx - 2.5, eye_y), (cx + 2.5, eye_y)]
    for e in eyes:
        paint(_rect(grid, e[0] - 0.5, e[0] + 0.5, e[1] - 1.0, e[1] + 1.0), EYES)
    if side:
        arm(1)
    else:
        arm(0)
        arm(1)
    return out


@cache
def pose_labels(design: Design = EARLIER) -> np.ndarray:
    """Every pose of ``design`` as part labels: uint8 [3 styles, 3 actions, 3 directions,
    8 poses, 64, 64]. Facing left is facing right mirrored."""
    out = np.zeros((len(HAIR_STYLES), len(ACTIONS), len(DIRECTIONS), POSES, FRAME, FRAME), np.uint8)
    for s, style in enumerate(HAIR_STYLES):
        for a, action in enumerate(ACTIONS):
            for p in range(POSES):
                right = _draw(style, action, True, p, design)
                out[s, a, 2, p] = right
                out[s, a, 0, p] = right[:, ::-1]
                out[s, a, 1, p] = _draw(style, action, False, p, design)
    out.flags.writeable = False
    return out


@cache
def _palettes(background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGB of each part label for every character, on ``background``: uint8 [1296, 7, 3]."""
    attrs = character_attributes(np.arange(CHARACTERS))
    pal = np.zeros((CHARACTERS, 7, 3), dtype=np.uint8)
    pal[:, BACKGROUND] = background
    pal[:, SKIN] = np.asarray(SKIN_COLOURS)[attrs[:, 0]]
    pal[:, HAIR] = np.asarray([c for _, c in HAIR_OPTIONS])[attrs[:, 1]]
    pal[:, TOP] = np.asarray(TOP_COLOURS)[attrs[:, 2]]
    pal[:, TROUSERS] = np.asarray(TROUSER_COLOURS)[attrs[:, 3]]
    pal[:, SHOES] = SHOE_GREY
    pal[:, EYES] = BLACK
    pal.flags.writeable = False
    return pal


def render(
    videos: int,
    frames: int,
    rng: np.random.Generator,
    split: str = "train",
    design: Design = EARLIER,
) -> dict[str, np.ndarray]:
    """``videos`` clips of ``frames`` frames of ``design`` -> uint8 ``videos`` [V, T, 64,
    64, 3] and the labels of the module doc, drawn from ``rng`` (character, action,
    direction, first pose)."""
    ids = rng.choice(characters(split), size=videos)
    action = rng.integers(0, len(ACTIONS), size=videos)
    direction = rng.integers(0, len(DIRECTIONS), size=videos)
    first = rng.integers(0, POSES, size=videos)
    return _paint(ids, action, direction, first, frames, design)


def balanced(
    frames: int,
    rng: np.random.Generator,
    split: str = "test-score",
    limit: int | None = None,
    design: Design = EARLIER,
) -> dict[str, np.ndarray]:
    """Every character of ``split`` (the first ``limit`` of them) in every one of the 9
    action classes, once, from a first pose drawn from ``rng``: a set whose action
    classes are exactly balanced (test-score: 81 characters, 729 clips), in the format
    of :func:`render`, ordered by character, then class."""
    ids = characters(split)[:limit]
    classes = len(ACTIONS) * len(DIRECTIONS)
    ids, label = np.repeat(ids, classes), np.tile(np.arange(classes), len(ids))
    first = rng.integers(0, POSES, size=len(ids))
    return _paint(ids, label // len(DIRECTIONS), label % len(DIRECTIONS), first, frames, design)


def _paint(
    ids, action, direction, first, frames: int, design: Design = EARLIER
) -> dict[str, np.ndarray]:
    """Clips of characters ``ids`` [V] doing ``action`` [V] toward ``direction`` [V] from
    pose ``first`` [V]: uint8 ``videos`` [V, T, 64, 64, 3] and the module doc's labels."""
    videos = len(ids)
    phases = (first[:, None] + np.arange(frames)) % POSES  # [V, T]
    attrs = character_attributes(ids)  # [V, 4]
    style = np.asarray([HAIR_STYLES.index(HAIR_OPTIONS[h][0]) for h in range(OPTIONS)])[attrs[:, 1]]
    labels = pose_labels(design)[
        style[:, None], action[:, None], direction[:, None], phases
    ]  # [V, T, 64, 64]
    pal = _palettes(design.background)[ids]  # [V, 7, 3]
    rgb = pal[np.arange(videos)[:, None, None, None], labels]  # [V, T, 64, 64, 3]
    return {
        "videos": rgb,
        "attributes": attrs,
        "attribute_names": np.array(ATTRIBUTES),
        "image_ids": ids,
        "temporal_labels": np.repeat((3 * action + direction)[:, None], frames, 1),
        "phases": phases,
        "temporal_definition": np.array(TEMPORAL_DEFINITION),
    }
