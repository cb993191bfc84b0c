"""What the rest of stvae knows of a generated dataset: :class:`DatasetSpec`.

Every place that once asked a dataset's name (its channels, its splits, how it is drawn
on the host and on the device, its temporal task, its probe sets, its judge) asks its
spec instead; the specs are registered in :data:`stvae.data.registry.DATASETS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DatasetSpec", "SPLITS"]

# train; test (held out), and its two parts that share no image: test-fit, test-score
SPLITS = ("train", "test", "test-fit", "test-score")


def _nothing(split: str, mnist_dir: str | None) -> None:
    return None


@dataclass(frozen=True)
class DatasetSpec:
    """One generated data source.

    ``render(context, videos, frames, rng, split, speed)`` draws a labelled dataset in the
    file format of :mod:`stvae.data.files` (uint8 ``videos`` [V, N, 64, 64] or
    [V, N, 64, 64, 3] and its labels) from a ``numpy.random.Generator``; ``context`` is
    what ``load(split, mnist_dir)`` read once per source (Bouncing MNIST: the split's digit
    images; None for the others). ``on_device(context, frames, speed, device)`` builds the
    maker of :mod:`stvae.data.on_device` that draws the same distribution with torch ops
    on the training device (None: host only).
    """

    name: str
    channels: int  # colour channels of its frames: 1 grey, 3 RGB
    render: Callable[..., dict]
    statics: str  # what its static classes are, plural ("digits", "chairs")
    temporal_task: str = "labels"  # eq 19's temporal target: per-frame "labels" or "order"
    # its probe sets: training images (the RBF probe is fitted on videos of training
    # images, the linear one on held-out half A, both scored on held-out half B) or, where
    # the held-out classes are the classes themselves (chairs), held-out views only
    training_images: bool = True
    describe: dict[str, str] = field(default_factory=dict)  # the probe sets, in words
    load: Callable[[str, str | None], Any] = _nothing
    on_device: Callable[..., Any] | None = None
    judge: bool = False  # a judge classifier of swapped codes exists (stvae.judge)
