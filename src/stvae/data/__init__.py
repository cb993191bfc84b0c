"""Where training and evaluation videos come from: generated datasets or files.

A *source* hands out batches of clips, uint8 or float32 [B, N, 64, 64] (grey) or
[B, N, 64, 64, 3] (colour), as a pure function
of a ``numpy.random.Generator``; training derives that generator from (seed, step), so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stvae.data.bouncing_mnist import check_speed
from stvae.data.files import load_dataset, save_dataset
from stvae.data.registry import DATASETS
from stvae.data.spec import SPLITS, DatasetSpec
from stvae.errors import StvaeError, check_seed
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
    "OPTION_FIELDS",
    "CLIP_FRAMES",
    "default_frames",
]

# the registered datasets' names as they stand at import (DATASETS is the live registry)
GENERATED = tuple(DATASETS)
CLIP_FRAMES = 16  # frames per clip where neither the config nor the data names others


def default_frames(source: str) -> int:
    """The clip length of data ``source`` when nothing else names one: its spec's own
    (``DatasetSpec.frames``; sprites-field: the field's 8), else :data:`CLIP_FRAMES`."""
    spec = DATASETS.get(source)
    return spec.frames if spec is not None and spec.frames is not None else CLIP_FRAMES


def _source_help() -> str:
    names = ", ".join(DATASETS)
    return (
        f"{names} (generated on the fly), a .npz/.npy file, or a folder of video files or of "
        "folders of frame images"
    )


def _data_path(source: str) -> str:
    """A file or folder source as ``config.json`` records it: absolute, so that a run's
    ``evaluate``, ``figures`` and ``--resume`` find its data from any working folder.

    A relative name must be a .npz/.npy path or a folder that is here (otherwise it is
    refused: most often a misspelt dataset name). An absolute path that is not here is
    taken (a run's data moved away: the run still loads, ``encode --data`` still works,
    and whatever reads the data says that it is missing)."""
    path = Path(source).expanduser()
    here = path.suffix.lower() in (".npz", ".npy") or path.is_dir()
    if here or (path.is_absolute() and not path.exists()):
        return os.path.abspath(path)
    raise StvaeError(
        f"--data must be {' or '.join(DATASETS)}, a .npz/.npy file or a folder of "
        f"videos; got {source!r}"
    )


@dataclass(frozen=True)
class _DataCommon:
    """Where a run's videos come from. Field metadata gives each ``stvae train`` flag
    (``help``, ``flag``, ``parse``; see :func:`stvae.config.train_fields`). Beside the
    fields every source has, each generated dataset's own settings (its spec's
    ``options``; Bouncing MNIST: ``mnist_dir``, ``speed``) are fields too, one flat
    dataclass as ``config.json`` has always had it; a field the source does not take
    must keep its default."""

    source: str = field(  # a generated dataset's name, or a .npz/.npy path or a folder
        default="bouncing-mnist",
        metadata={"flag": "data", "help": _source_help},
    )
    frames: int = field(  # N; the paper uses 16
        default=CLIP_FRAMES, metadata={"help": "frames per video clip"}
    )
    clip_stride: int | None = field(  # None: = frames
        default=None,
        metadata={"help": "folder data: frames between clip starts (default: --frames)"},
    )

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise StvaeError(f"frames must be at least 1; got {self.frames}")
        if self.clip_stride is not None and self.clip_stride < 1:
            raise StvaeError(f"clip-stride must be at least 1; got {self.clip_stride}")
        if not self.generated:
            object.__setattr__(self, "source", _data_path(self.source))
        own = self.settings()
        for name, f in OPTION_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, list):  # JSON gives lists: kept as the tuple a flag gives
                value = tuple(value)
                object.__setattr__(self, name, value)
            if name not in own and value != f.default:
                takers = [n for n, spec in DATASETS.items() if name in spec.option_names]
                raise StvaeError(
                    f"{name} is an option of {', '.join(takers)}; --data {self.source} "
                    "does not take it"
                )
        options = self.options
        for name in own:  # as the dataset's options checked them (a speed: a tuple)
            object.__setattr__(self, name, getattr(options, name))

    @property
    def generated(self) -> bool:
        return self.source in DATASETS

    @property
    def spec(self) -> DatasetSpec | None:
        """The generated dataset's spec (None for a file or folder)."""
        return DATASETS.get(self.source)

    def settings(self) -> dict:
        """The source's own settings by name (its spec's ``options`` fields; {} for a
        file or a dataset without options). A dataset registered after this module was
        imported has no fields here: its settings keep their defaults."""
        names = self.spec.option_names if self.spec is not None else []
        fields = self.__dataclass_fields__
        return {name: getattr(self, name) for name in names if name in fields}

    @property
    def options(self):
        """The source's own settings as its spec's ``options`` dataclass (None without)."""
        return None if self.spec is None else self.spec.make_options(self.settings())


def _option_fields() -> dict[str, dataclasses.Field]:
    """Every dataset's own fields, once each (datasets sharing a field declare it alike)."""
    seen: dict[str, dataclasses.Field] = {}
    for name, spec in DATASETS.items():
        for f in dataclasses.fields(spec.options) if spec.options else ():
            if f.name in seen and seen[f.name].default != f.default:
                raise TypeError(f"dataset {name} declares {f.name} with another default")
            seen.setdefault(f.name, f)
    return seen


# every registered dataset's own settings, by field name: DataConfig's fields beside the
# common ones, and flags of `stvae train` and `stvae dataset`
OPTION_FIELDS = _option_fields()

DataConfig = dataclasses.make_dataclass(
    "DataConfig",
    [
        (n, f.type, field(default=f.default, metadata=dict(f.metadata)))
        for n, f in OPTION_FIELDS.items()
    ],
    bases=(_DataCommon,),
    frozen=True,
    namespace={"__module__": __name__, "__doc__": _DataCommon.__doc__},
)


class GeneratedSource:
    """Fresh videos for every batch: Bouncing MNIST from one split's digit images, rotating
    chairs from one split's identities, or sprites from one split's characters
    (:data:`SPLITS`; ``test-fit`` and ``test-score`` are two parts of ``test`` that share
    no image)."""

    def __init__(
        self,
        frames: int,
        split: str = "train",
        name: str = "bouncing-mnist",
        options: dict | None = None,
    ):
        if name not in DATASETS:
            raise StvaeError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
        if split not in SPLITS:
            raise StvaeError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        self.frames, self.split, self.name = frames, split, name
        self.spec = DATASETS[name]
        self.options = self.spec.make_options(options)  # its own settings, checked
        self.channels = self.spec.channels
        self.context = self.spec.load(split, self.options)  # Bouncing MNIST: the digits

    def sample(self, videos: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.spec.render(self.context, videos, self.frames, rng, self.split, self.options)

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
        return GeneratedSource(config.frames, split, config.source, config.settings())
    data = load_dataset(config.source, config.frames, config.clip_stride)
    return ClipSource(data["videos"], config.frames, config.source)


def generate(
    name: str,
    videos: int,
    frames: int,
    seed: int,
    split: str = "train",
    **options,
) -> dict[str, np.ndarray]:
    """A labelled dataset in the file format of :mod:`stvae.data.files`, from ``seed``;
    ``options``: the dataset's own settings (Bouncing MNIST: ``mnist_dir``, ``speed``)."""
    if videos < 1 or frames < 1:
        raise StvaeError(f"videos and frames must be at least 1; got {videos} and {frames}")
    check_seed(seed)
    source = GeneratedSource(frames, split, name, options)
    return source.sample(videos, np.random.default_rng(seed))


HELD_OUT_SEED = 1_000_003  # held-out sets never share a stream with training's (seed, step)


def held_out(config: DataConfig, videos: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """A labelled evaluation set for ``config``: fresh videos of the held-out digit images
    for a generated dataset, the file itself for a file (its labels, if any, included)."""
    if config.generated:
        return generate(
            config.source, videos, config.frames, HELD_OUT_SEED + seed, "test", **config.settings()
        )
    return load_dataset(config.source, config.frames, config.clip_stride, "test")
