"""Training configuration as data: :class:`TrainConfig`, its presets, the run files.

``config.json`` in a run directory is a :class:`TrainConfig` serialised with its class
name and the package version; loading it rebuilds the same run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from stvae import __version__
from stvae.data import CLIP_FRAMES, DataConfig, default_frames
from stvae.data.bouncing_mnist import LEGACY_SPEED
from stvae.errors import StvaeError, check_seed
from stvae.model import ModelConfig

__all__ = [
    "TrainConfig",
    "PRESETS",
    "preset_config",
    "RUN_FILES",
    "PRECISIONS",
    "DEVICES",
    "DATA_ON",
    "train_fields",
    "train_flags",
    "RESUMABLE",
    "HOW_FIELDS",
    "AUTO_FIELDS",
]

RUN_FILES = {
    "config": "config.json",
    "metrics": "metrics.jsonl",
    "checkpoint": "checkpoint.safetensors",
    "weights": "model.safetensors",
    "segments": "segments.jsonl",
}
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
DATA_ON = ("auto", "host", "device")


def _flag(default, help: str, **meta):
    """A field with its ``stvae train`` flag's help (and ``parse``, ``choices``, ``flag``
    where not the usual; see :func:`train_fields`)."""
    return field(default=default, metadata={"help": help, **meta})


def _how(default, help: str, resumable: bool = True, **meta):
    """A field of *how* a run trains (where, how fast, how often it writes): it does not
    change what the run learns, so a grid cell does not compare it, and ``--resume`` may
    change it (field metadata read by :func:`train_fields`)."""
    return _flag(default, help, learns=False, resumable=resumable, **meta)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. Fields carry metadata that the CLI, resume and the grid read
    (:func:`train_fields`): ``help`` (its flag's help), ``flag`` (its flag's name where not
    the field's), ``parse`` and ``choices`` (how its flag reads a value), ``learns``
    (False: how it trains, not what it learns), ``resumable`` (``--resume`` may change
    it), ``auto`` (the value "auto" is resolved when the run starts and the resolved
    value is kept: on resume or in a grid, "auto" means "as recorded")."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # section 4.2; --resume may extend a run, and a grid cell compares it
    steps: int = _flag(30_000, "optimiser steps", resumable=True)
    batch_videos: int = _flag(64, "videos per batch (frames per batch: this x --frames)")
    lr: float = _flag(1e-3, "Adam learning rate")  # section 4.2
    lr_decay: float = _flag(0.1, "learning-rate factor per decay")
    lr_decay_every: int = _flag(10_000, "steps between decays")  # section 4.2
    beta_warmup: int = _flag(
        0, "steps over which beta ramps linearly from 0 (0: off, the paper)", parse="nonneg"
    )
    seed: int = _flag(0, "seed of weights, sampling noise and the data stream", parse="int")
    device: str = _how("auto", "where to train (auto: cuda when available)", choices=DEVICES)
    precision: str = _flag(
        "fp32",
        "fp32, or bf16 autocast of convs and matmuls (fp32 master weights); auto: bf16 on "
        "CUDA or a CPU with native bf16, else fp32",
        choices=PRECISIONS,
    )
    compile: bool = _how(False, "torch.compile the model (eager fallback if it fails)")
    cuda_graphs: bool = _how(
        False, "on CUDA, replay the compiled step as CUDA graphs (mode reduce-overhead)"
    )
    data_workers: int = _how(
        -1,
        "processes drawing batches ahead (0: one thread; default -1: auto, up to 8 on CUDA "
        "with generated data, else one thread)",
        parse="int",
    )
    keep_freed_memory: bool = _how(
        True,
        "on a CPU, glibc keeps the memory a step frees for the next step instead of "
        "returning it to the system (fewer page faults, more resident memory; "
        "stvae.hostmem)",
    )
    # host and device draw other videos from a seed: config.json records the choice and a
    # resumed run or a continued grid keeps it
    data_on: str = _flag(
        "auto",
        "where generated batches are made: host (numpy, ahead of the loop) or device (torch "
        "ops on the training device, stvae.data.on_device); auto: device on CUDA where the "
        "dataset supports it",
        choices=DATA_ON,
        auto=True,
    )
    checkpoint_every: int = _how(1000, "steps between checkpoints (and one at the end)")
    log_every: int = _how(50, "steps between metrics.jsonl records")
    snapshot_every: int = _how(
        0,
        "keep the weights every this many steps (and at the end) in RUN/snapshots, for "
        "`stvae curve` (0: none, the default)",
        parse="nonneg",
    )
    # seconds; config.json records the steps chosen and no budget
    time_budget: float | None = _flag(
        None,
        "train for about this long (10m, 90s, 1.5h): the run measures its speed, then "
        "fixes the steps and the learning-rate schedule to fit; config.json records them",
        parse="duration",
    )

    def __post_init__(self) -> None:
        for name in ("steps", "batch_videos", "lr_decay_every", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise StvaeError(
                    f"{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}"
                )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise StvaeError(f"lr must be a positive number; got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise StvaeError(f"lr-decay must be in (0, 1]; got {self.lr_decay}")
        if self.data_workers < -1:
            raise StvaeError(f"data-workers must be -1 (auto) or more; got {self.data_workers}")
        if self.time_budget is not None and not (
            self.time_budget > 0 and math.isfinite(self.time_budget)
        ):
            raise StvaeError(f"time-budget must be a positive duration; got {self.time_budget}")
        if self.snapshot_every < 0:
            raise StvaeError(f"snapshot-every must be 0 (off) or more; got {self.snapshot_every}")
        if self.beta_warmup < 0:
            raise StvaeError(f"beta-warmup must be 0 or more; got {self.beta_warmup}")
        check_seed(self.seed)
        if self.device not in DEVICES:
            raise StvaeError(f"device must be one of {', '.join(DEVICES)}; got {self.device!r}")
        if self.cuda_graphs and not self.compile:
            raise StvaeError("cuda-graphs needs compile (CUDA graphs come from torch.compile)")
        if self.data_on not in DATA_ON:
            raise StvaeError(f"data-on must be one of {', '.join(DATA_ON)}; got {self.data_on!r}")
        if self.precision not in PRECISIONS:
            raise StvaeError(
                f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}"
            )

    @property
    def frames_per_batch(self) -> int:
        return self.batch_videos * self.data.frames

    def lr_at(self, step: int) -> float:
        return self.lr * self.lr_decay ** (step // self.lr_decay_every)

    def beta_at(self, step: int) -> float:
        if self.beta_warmup == 0:
            return self.model.beta
        return self.model.beta * min(1.0, (step + 1) / self.beta_warmup)

    def to_dict(self) -> dict:
        return {"class": type(self).__name__, "version": __version__, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> TrainConfig:
        if not isinstance(d, dict):
            raise StvaeError(f"{where}: not a {cls.__name__} (a JSON object expected)")
        if d.get("class") != cls.__name__:
            raise StvaeError(f"{where}: not a {cls.__name__} (class {d.get('class')!r})")
        body = {k: v for k, v in d.items() if k not in ("class", "version")}
        try:
            data = dict(body.pop("data"))
            if data.get("source", "bouncing-mnist") == "bouncing-mnist":
                data.setdefault("speed", LEGACY_SPEED)  # before 0.2: the digit moved 2-5 px
            model = dict(body.pop("model"))
            model.setdefault("channels", 1)  # written before 0.3: every frame was grey
            body.setdefault("data_on", "host")  # written before 0.4: batches came from the host
            return cls(
                model=ModelConfig(**model),
                data=DataConfig(**data),
                **body,
            )
        except (TypeError, KeyError) as e:
            raise StvaeError(
                f"{where}: written by stvae {d.get('version')}, "
                f"cannot be read by {__version__} ({e})"
            ) from None
        except StvaeError as e:  # a value the file holds (a relative --data of 0.5 and before)
            raise StvaeError(f"{where}: {e}") from None

    def get(self, name: str):
        """The value of a field by dotted name (``model.beta``, ``steps``)."""
        value = self
        for part in name.split("."):
            value = getattr(value, part)
        return value

    def replace(self, **changes) -> TrainConfig:
        """A copy with top-level fields or ``model.<field>`` / ``data.<field>`` changed."""
        model = {k[6:]: v for k, v in changes.items() if k.startswith("model.")}
        data = {k[5:]: v for k, v in changes.items() if k.startswith("data.")}
        top = {k: v for k, v in changes.items() if "." not in k}
        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, **model),
            data=dataclasses.replace(self.data, **data),
            **top,
        )


def train_fields() -> dict[str, dataclasses.Field]:
    """Every leaf field of :class:`TrainConfig` by dotted name (``model.beta``, ``steps``):
    the one source of the CLI's training flags, the fields ``--resume`` may change and
    the fields a grid cell compares (their metadata; see :class:`TrainConfig`). A flag
    reads its value by ``parse`` (``int``; ``nonneg``: 0 or more; ``duration``;
    ``speed``; default: a positive number for int and float fields, the text for str,
    ``--X/--no-X`` for bool) or from ``choices`` (a tuple, or a function giving one)."""
    out = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("model", "data"):
            inner = ModelConfig if f.name == "model" else DataConfig
            out.update({f"{f.name}.{g.name}": g for g in dataclasses.fields(inner)})
        else:
            out[f.name] = f
    return out


def train_flags() -> dict[str, str]:
    """CLI flag dest (``batch_videos``) -> dotted field (``batch_videos``, ``model.kind``)."""
    return {f.metadata.get("flag", name.split(".")[-1]): name for name, f in train_fields().items()}


RESUMABLE = frozenset(n for n, f in train_fields().items() if f.metadata.get("resumable"))
HOW_FIELDS = frozenset(n for n, f in train_fields().items() if not f.metadata.get("learns", 1))
AUTO_FIELDS = frozenset(n for n, f in train_fields().items() if f.metadata.get("auto"))


PRESETS: dict[str, TrainConfig] = {
    # Section 4.2: 30k steps of 64 videos x 16 frames (the VAE sees the same 1,024 frames
    # per batch), Adam 1e-3 decayed by 10x every 10k steps; bf16 where the hardware has it.
    # Both compile (eager fallback): 1.2-1.3x the eager step here, for about a minute of
    # compiling on a cold cache (docs/results/performance.md).
    "paper": TrainConfig(precision="auto", compile=True),
    # Sized for a 2-core CPU: the paper's schedule shape in 2,400 steps of 16 videos, about
    # 9-14 minutes here; the best of the schedules in docs/results/cpu-preset-search.md.
    "cpu": TrainConfig(
        steps=2400,
        batch_videos=16,
        lr_decay_every=800,
        precision="auto",
        compile=True,
        checkpoint_every=200,
    ),
    # Seconds, not results: every path of a command (train, evaluate, a grid, a script)
    # run through once, eagerly, on 4-frame clips: for checking an install or a script
    # (bench/gpu_grid.sh's dry run).
    "smoke": TrainConfig(
        steps=6,
        batch_videos=2,
        data=DataConfig(frames=4),
        precision="fp32",
        compile=False,
        checkpoint_every=2,
        log_every=1,
        lr_decay_every=3,
    ),
}


def preset_config(preset: str, given: dict | None = None) -> TrainConfig:
    """Preset ``preset`` with the fields ``given`` (dotted names: ``model.beta``) set: what
    ``stvae train`` and a grid's cell train. Data whose spec names a clip length of its
    own (``DatasetSpec.frames``; sprites-field: the field's 8 frames) gets it where
    ``given`` names no ``data.frames`` and the preset keeps the default (16; smoke's 4
    stays)."""
    if preset not in PRESETS:
        raise StvaeError(f"preset must be one of {', '.join(sorted(PRESETS))}; got {preset!r}")
    given = dict(given or {})
    config = PRESETS[preset].replace(**given)
    if "data.frames" not in given and PRESETS[preset].data.frames == CLIP_FRAMES:
        config = config.replace(**{"data.frames": default_frames(config.data.source)})
    return config
