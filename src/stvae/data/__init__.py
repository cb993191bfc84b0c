"""Where training and evaluation videos come from: generated datasets or files.

A *source* hands out batches of clips, uint8 or float32 [B, N, 64, 64] (grey) or
[B, N, 64, 64, 3] (colour), as a pure function
of a ``numpy.random.Generator``; training derives that generator from (seed, step), so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stvae.data import bouncing_mnist
from stvae.data.files import load_dataset, save_dataset
from stvae.data.registry import DATASETS
from stvae.data.spec import SPLITS, DatasetSpec
from stvae.errors import StvaeError
from stvae.layout import channels_of, to_tensor

__all__ = [
    "DataConfig",
    "DATASETS",
    "DatasetSpec",
    "SPLITS",
    "GENERATED",
    "open_source",
    "generate",
    "load_dataset",
    "save_dataset",
    "ClipSource",
    "GeneratedSource",
    "to_tensor",
    "channels_of",
    "check_speed",
    "held_out",
]

# the registered datasets' names as they stand at import (DATASETS is the live registry)
GENERATED = tuple(DATASETS)


def _source_help() -> str:
    names = ", ".join(DATASETS)
    return (
        f"{names} (generated on the fly), a .npz/.npy file, or a folder of video files or of "
        "folders of frame images"
    )


@dataclass(frozen=True)
class DataConfig:
    """Where a run's videos come from. Field metadata gives each ``stvae train`` flag
    (``help``, ``flag``, ``parse``; see :func:`stvae.config.train_fields`)."""

    source: str = field(  # a generated dataset's name, or a .npz/.npy path or a folder
        default="bouncing-mnist",
        metadata={"flag": "data", "help": _source_help},
    )
    frames: int = field(  # N; the paper uses 16
        default=16, metadata={"help": "frames per video clip"}
    )
    mnist_dir: str | None = field(
        default=None, metadata={"help": "folder of MNIST IDX files instead of the shipped subset"}
    )
    clip_stride: int | None = field(  # None: = frames
        default=None,
        metadata={"help": "folder data: frames between clip starts (default: --frames)"},
    )
    speed: tuple[float, float] = field(  # the authors' generator moves a constant 0.1
        default=bouncing_mnist.SPEED,
        metadata={
            "parse": "speed",
            "help": "bouncing-mnist: the digit's speed, a fraction of its 36-pixel travel "
            "range a frame: one number (constant; default 0.1, the authors' generator) or "
            "LOW,HIGH (uniform per video)",
        },
    )

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise StvaeError(f"frames must be at least 1; got {self.frames}")
        if self.clip_stride is not None and self.clip_stride < 1:
            raise StvaeError(f"clip-stride must be at least 1; got {self.clip_stride}")
        object.__setattr__(self, "speed", check_speed(self.speed))  # JSON gives a list
        path = Path(self.source)
        if not (self.generated or path.suffix.lower() in (".npz", ".npy") or path.is_dir()):
            raise StvaeError(
                f"--data must be {' or '.join(DATASETS)}, a .npz/.npy file or a folder of "
                f"videos; got {self.source!r}"
            )

    @property
    def generated(self) -> bool:
        return self.source in DATASETS

    @property
    def spec(self) -> DatasetSpec | None:
        """The generated dataset's spec (None for a file or folder)."""
        return DATASETS.get(self.source)


def check_speed(speed) -> tuple[float, float]:
    """Bouncing MNIST's speed (low, high), fractions of the travel range a frame, checked:
    two numbers, 0 <= low <= high <= 1 -> the tuple."""
    try:
        pair = tuple(float(s) for s in speed)
    except (TypeError, ValueError):
        raise StvaeError(f"speed must be two numbers (low, high); got {speed!r}") from None
    if len(pair) != 2 or not 0 <= pair[0] <= pair[1] <= 1:
        raise StvaeError(
            f"speed must be 0 <= low <= high <= 1 (of the travel range a frame); got {speed!r}"
        )
    return pair


class GeneratedSource:
    """Fresh videos for every batch: Bouncing MNIST from one split's digit images, rotating
    chairs from one split's identities, or sprites from one split's characters
    (:data:`SPLITS`; ``test-fit`` and ``test-score`` are two parts of ``test`` that share
    no image)."""

    def __init__(
        self,
        frames: int,
        split: str = "train",
        mnist_dir: str | None = None,
        name: str = "bouncing-mnist",
        speed: tuple[float, float] = bouncing_mnist.SPEED,
    ):
        if name not in DATASETS:
            raise StvaeError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
        if split not in SPLITS:
            raise StvaeError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        self.frames, self.split, self.name = frames, split, name
        self.speed = check_speed(speed)
        self.spec = DATASETS[name]
        self.channels = self.spec.channels
        self.context = self.spec.load(split, mnist_dir)  # Bouncing MNIST: the digit images

    def sample(self, videos: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.spec.render(self.context, videos, self.frames, rng, self.split, self.speed)

    def batch(self, videos: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample(videos, rng)["videos"]


class ClipSource:
    """Random clips of ``frames`` consecutive frames from videos held in memory."""

    def __init__(self, videos: np.ndarray, frames: int, where: str):
        if videos.shape[1] < frames:
            raise StvaeError(
                f"{where}: videos have {videos.shape[1]} frames, "
                f"fewer than the {frames} of one clip"
            )
        self.videos = videos
        self.frames = frames
        self.channels = channels_of(videos)

    def batch(self, videos: int, rng: np.random.Generator) -> np.ndarray:
        pick = rng.integers(0, len(self.videos), size=videos)
        start = rng.integers(0, self.videos.shape[1] - self.frames + 1, size=videos)
        frame_idx = start[:, None] + np.arange(self.frames)  # [B, N]
        return self.videos[pick[:, None], frame_idx]


def open_source(config: DataConfig, split: str = "train") -> GeneratedSource | ClipSource:
    """The training (or held-out) source that ``config`` names; files are read once, here."""
    if config.generated:
        return GeneratedSource(config.frames, split, config.mnist_dir, config.source, config.speed)
    data = load_dataset(config.source, config.frames, config.clip_stride)
    return ClipSource(data["videos"], config.frames, config.source)


def generate(
    name: str,
    videos: int,
    frames: int,
    seed: int,
    split: str = "train",
    mnist_dir: str | None = None,
    speed: tuple[float, float] = bouncing_mnist.SPEED,
) -> dict[str, np.ndarray]:
    """A labelled dataset in the file format of :mod:`stvae.data.files`, from ``seed``."""
    if videos < 1 or frames < 1:
        raise StvaeError(f"videos and frames must be at least 1; got {videos} and {frames}")
    source = GeneratedSource(frames, split, mnist_dir, name, speed)
    return source.sample(videos, np.random.default_rng(seed))


HELD_OUT_SEED = 1_000_003  # held-out sets never share a stream with training's (seed, step)


def held_out(config: DataConfig, videos: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """A labelled evaluation set for ``config``: fresh videos of the held-out digit images
    for a generated dataset, the file itself for a file (its labels, if any, included)."""
    if config.generated:
        return generate(
            config.source,
            videos,
            config.frames,
            HELD_OUT_SEED + seed,
            "test",
            config.mnist_dir,
            config.speed,
        )
    return load_dataset(config.source, config.frames, config.clip_stride)
