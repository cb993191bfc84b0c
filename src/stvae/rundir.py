"""A run directory as other code reads it: its files, its snapshots, its trained model.

Evaluation, figures and curves load runs from here, never from the trainer
(:mod:`stvae.train` writes them).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from stvae.checkpoint import load_checkpoint, load_weights, previous, read_json
from stvae.config import RUN_FILES, TrainConfig
from stvae.errors import StvaeError
from stvae.model import make_model

__all__ = ["RUN_FILES", "SNAPSHOTS", "load_run", "resolve_device", "snapshot_path"]

SNAPSHOTS = "snapshots"  # the run directory's folder of weight snapshots


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise StvaeError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """Where the weights after ``step`` steps are kept (``--snapshot-every``)."""
    return Path(run_dir) / SNAPSHOTS / f"step-{step:06d}.safetensors"


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[nn.Module, TrainConfig]:
    """The trained model of a run directory (final weights, else the last checkpoint)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StvaeError(f"{run_dir}: no such run directory")
    cfg_path = run_dir / RUN_FILES["config"]
    config = TrainConfig.from_dict(read_json(cfg_path), str(cfg_path))
    model = make_model(config.model)
    weights = run_dir / RUN_FILES["weights"]
    if weights.exists():
        load_weights(weights, model)
    else:
        ckpt = run_dir / RUN_FILES["checkpoint"]
        if not (ckpt.exists() or previous(ckpt).exists()):
            raise StvaeError(f"{run_dir}: holds no weights yet (no {weights.name} or {ckpt.name})")
        load_checkpoint(ckpt, model)
    return model.to(resolve_device(device)).eval(), config
