"""The registry of generated datasets: name -> :class:`stvae.data.spec.DatasetSpec`.

Nothing else in the package names a generated dataset to decide what to do with it: a
new one is one new module (its renderer) and one entry below (docs/design.md).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from stvae.data import bouncing_mnist, chairs, sprites
from stvae.data.digits import load_digits
from stvae.data.on_device import DeviceBouncingMNIST, DeviceChairs
from stvae.data.spec import DatasetSpec

__all__ = ["DATASETS"]


def _mnist(digits, videos, frames, rng, split, speed) -> dict:
    data = bouncing_mnist.render(digits, videos, frames, rng, speed)
    data["temporal_definition"] = np.array(bouncing_mnist.TEMPORAL_DEFINITION)
    return data


def _by_split(render):
    """A renderer of (videos, frames, rng, split) as a spec's renderer: no context, no
    speed (those are Bouncing MNIST's). A partial, not a lambda: worker processes pickle
    the source that holds it."""
    return functools.partial(_split_only, render)


def _split_only(render, context, videos, frames, rng, split, speed) -> dict:
    return render(videos, frames, rng, split)


def _mnist_on_device(digits, frames, speed, device) -> DeviceBouncingMNIST:
    return DeviceBouncingMNIST(digits, frames, speed, device)


def _chairs_on_device(context, frames, speed, device) -> DeviceChairs:
    workers = max(0, (os.cpu_count() or 1) - 1)  # the bank's rendering, once
    return DeviceChairs(frames, device, workers=workers)


DATASETS: dict[str, DatasetSpec] = {
    "bouncing-mnist": DatasetSpec(
        name="bouncing-mnist",
        channels=1,
        render=_mnist,
        statics="digits",
        describe={
            "images": "digit images",
            "held": "held-out digit images, half {} (25 of each class)",
        },
        load=load_digits,
        on_device=_mnist_on_device,
    ),
    "chairs": DatasetSpec(
        name="chairs",
        channels=1,
        render=_by_split(chairs.render),
        statics="chairs",
        temporal_task="order",  # section 4.1: the chairs' temporal target
        training_images=False,  # the classes are the held-out chairs themselves
        describe={
            "score": "the 10 held-out chairs, views 2.5 degrees off the 5-degree grid",
            "fit": "the 10 held-out chairs, views on the 5-degree grid",
        },
        on_device=_chairs_on_device,
    ),
    "sprites": DatasetSpec(
        name="sprites",
        channels=3,
        render=_by_split(sprites.render),
        statics="characters",
        describe={"images": "characters", "held": "held-out characters, half {} (81 of the 162)"},
        judge=True,
    ),
}
