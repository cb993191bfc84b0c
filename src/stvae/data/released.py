"""The field's Sprites arrays, as the users of DSVAE's release keep them (the data of the
sequential-disentanglement papers that score on Sprites): one folder holding, for each
split (``train``, ``test``),

* ``sprites_X_<split>.npy``: frames float [N, 8, 64, 64, 3] in [0, 1];
* ``sprites_A_<split>.npy``: per-frame one-hot attributes [N, 8, 4, 6]: body, bottom,
  top and hair (:data:`ATTRIBUTES`, the order of the original renderer), 6 options each;
* ``sprites_D_<split>.npy``: per-frame one-hot actions [N, 8, 9].

:func:`load_released` reads one split into stvae's dataset format
(:mod:`stvae.data.files`): uint8 ``videos`` [N, 8, 64, 64, 3], ``attributes`` [N, 4]
with ``attribute_names``, and ``temporal_labels`` [N, 8], the action of each frame, so
that `train`, `evaluate` (each attribute against the action, as for procedural sprites)
and `figures` read it as they read any labelled file. Training reads ``train``; every
held-out use (`evaluate`, `figures`, the learning curve) reads ``test``. Nothing is
downloaded: docs/data.md says where the files come from. Arrays are read without
unpickling, memory-mapped, and converted a block of videos at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stvae.errors import StvaeError

__all__ = ["ATTRIBUTES", "ACTIONS", "is_released", "load_released"]

ATTRIBUTES = ("body", "bottom", "top", "hair")
OPTIONS = 6  # per attribute
ACTIONS = 9  # 3 actions x 3 directions
BLOCK = 512  # videos converted at a time (the float frames of 9,000 videos are 3.5 GB)


def _name(kind: str, split: str) -> str:
    return f"sprites_{kind}_{split}.npy"


def is_released(folder: Path) -> bool:
    """Whether ``folder`` holds the field's Sprites arrays (its training frames file)."""
    return (folder / _name("X", "train")).is_file()


def _array(folder: Path, kind: str, split: str) -> np.ndarray:
    path = folder / _name(kind, split)
    if not path.is_file():
        raise StvaeError(f"{path}: missing (the field's Sprites folder holds X, A and D files)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise StvaeError(f"{path}: cannot read as .npy ({str(e).splitlines()[0]})") from None


def _labels(onehot: np.ndarray, path: Path, classes: int) -> np.ndarray:
    """Per-frame one-hot [..., C] -> class indices [...], checked: one 1 per row."""
    block = np.asarray(onehot)
    if not np.all((block == 0) | (block == 1)) or not np.all(block.sum(-1) == 1):
        raise StvaeError(f"{path}: not one-hot (each row must hold a single 1 of {classes})")
    return block.argmax(-1)


def load_released(folder: str | Path, split: str = "train") -> dict[str, np.ndarray]:
    """One split of the field's Sprites folder (``train``; ``test`` for ``test``,
    ``test-fit`` and ``test-score``, which evaluation halves itself) in stvae's format."""
    folder = Path(folder)
    which = "train" if split == "train" else "test"
    x, a, d = (_array(folder, kind, which) for kind in ("X", "A", "D"))
    n, frames = x.shape[:2] if x.ndim == 5 else (0, 0)
    shapes = {"X": (n, frames, 64, 64, 3), "A": (n, frames, 4, OPTIONS), "D": (n, frames, ACTIONS)}
    expected = {"X": "[N, T, 64, 64, 3]", "A": f"[{n}, {frames}, 4, 6]", "D": f"[{n}, {frames}, 9]"}
    for kind, got in zip("XAD", (x, a, d), strict=True):
        if got.shape != shapes[kind] or n < 1:
            raise StvaeError(
                f"{folder / _name(kind, which)}: shape {list(got.shape)}; expected {expected[kind]}"
            )
    if not np.issubdtype(x.dtype, np.floating):
        raise StvaeError(f"{folder / _name('X', which)}: frames must be float in [0, 1]")
    videos = np.empty(x.shape, np.uint8)
    for start in range(0, n, BLOCK):
        block = np.asarray(x[start : start + BLOCK], np.float32)
        if not np.isfinite(block).all() or block.min() < 0 or block.max() > 1:
            raise StvaeError(f"{folder / _name('X', which)}: frames must be finite, in [0, 1]")
        videos[start : start + BLOCK] = np.rint(block * 255)
    attrs = _labels(a, folder / _name("A", which), OPTIONS)  # [N, T, 4]
    if not (attrs == attrs[:, :1]).all():
        raise StvaeError(
            f"{folder / _name('A', which)}: a character's attributes change within a clip"
        )
    return {
        "videos": videos,
        "attributes": attrs[:, 0].astype(np.int64),
        "attribute_names": np.array(ATTRIBUTES),
        "temporal_labels": _labels(d, folder / _name("D", which), ACTIONS).astype(np.int64),
    }
