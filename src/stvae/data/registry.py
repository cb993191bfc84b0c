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
from stvae.data.spec import DatasetSpec, GridSpec, paper_cells

__all__ = ["DATASETS"]


def _mnist(digits, videos, frames, rng, split, options: bouncing_mnist.Options) -> dict:
    data = bouncing_mnist.render(digits, videos, frames, rng, options.speed)
    data["temporal_definition"] = np.array(bouncing_mnist.TEMPORAL_DEFINITION)
    return data


def _by_split(render):
    """A renderer of (videos, frames, rng, split) as a spec's renderer: no context, no
    options. A partial, not a lambda: worker processes pickle the source that holds it."""
    return functools.partial(_split_only, render)


def _split_only(render, context, videos, frames, rng, split, options) -> dict:
    return render(videos, frames, rng, split)


def _sprites(name: str, design: sprites.Design, **more) -> DatasetSpec:
    """The spec of procedural sprites drawn in ``design`` (``more``: its other fields): its
    renderer and balanced-set maker are partials of module-level functions, which worker
    processes can unpickle."""
    return DatasetSpec(
        name=name,
        channels=3,
        render=_by_split(functools.partial(sprites.render, design=design)),
        statics="characters",
        describe={"images": "characters", "held": "held-out characters, half {} (81 of the 162)"},
        balanced=functools.partial(sprites.balanced, design=design),
        **more,
    )


def _digits(split: str, options: bouncing_mnist.Options):
    return load_digits(split, options.mnist_dir)


def _mnist_on_device(digits, frames, options, device) -> DeviceBouncingMNIST:
    return DeviceBouncingMNIST(digits, frames, options.speed, device)


def _chairs_on_device(context, frames, options, device) -> DeviceChairs:
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
        load=_digits,
        on_device=_mnist_on_device,
        options=bouncing_mnist.Options,
        grid=GridSpec(
            table1_features=4,
            paper_table1=paper_cells([6.71, 6.74, 6.82, 4.70, 5.78, 6.38, 1.08, 1.70, 1.71]),
            static_table="Table 2",
            targets=("digit", "location"),
            static_columns=(
                ("Acc 4", {"hierarchical": 8, "slow": 4, "vae": 4}),
                ("Acc 2", {"hierarchical": 4, "slow": 2, "vae": 2}),
            ),
            paper_static=paper_cells(
                [
                    (0.83, 0.71),
                    (0.88, 0.64),
                    (0.82, 0.69),
                    (0.58, 0.11),
                    (0.65, 0.12),
                    (0.66, 0.13),
                    (0.80, 0.13),
                    (0.52, 0.12),
                    (0.51, 0.13),
                ]
            ),
            fit_sets="256 videos of training digit images (RBF) or of one half of the held-out "
            "digit images (linear), scored on 256 videos of the other half",
        ),
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
        grid=GridSpec(
            table1_features=8,
            paper_table1=paper_cells([1.79, 1.73, 1.81, 1.19, 1.57, 1.39, 1.27, 1.24, 1.35]),
            static_table="Table 3",
            targets=("chair", "order"),
            static_columns=(("Accuracy", {"hierarchical": 8, "slow": 4, "vae": 4}),),
            paper_static=paper_cells(
                [(0.33,), (0.48,), (0.59,), (0.24,), (0.34,), (0.37,), (0.52,), (0.51,), (0.54,)]
            ),
            fit_sets="256 videos of the 10 held-out chairs on the 5-degree view grid, scored on "
            "256 videos of the same chairs seen from views half a step (2.5 degrees) off that "
            "grid",
        ),
    ),
    "sprites": _sprites(
        "sprites",
        sprites.EARLIER,
        # not the original Sprites: no paper numbers. 8 features like chairs (4 static for 4
        # attributes, 4 temporal for 9 actions x 8 poses); the static accuracy is each
        # attribute's, probed on the Table 1 runs themselves
        grid=GridSpec(
            table1_features=8,
            paper_table1={},
            static_table="attribute accuracy",
            targets=("attributes", "action"),
            static_columns=(("Attributes", {"hierarchical": 8, "slow": 8, "vae": 8}),),
            paper_static={},
            attributes=True,
            about="**Procedural sprites, not the original Sprites** (`stvae.data.sprites`: "
            "colour characters of four attributes with six options each, walking, waving or "
            "jumping seen from three directions); numbers here compare the models with each "
            "other, not with published Sprites results. This grid is on the earlier design "
            "(`--data sprites`: figures of about 512 of 4,096 pixels, on white, 16-frame "
            "clips); `--data sprites-field` draws them as large as the original's, on black, "
            "in the field's 8-frame clips (docs/results/sprites-designs.md).",
            fit_sets="256 videos of training characters (RBF) or of one half of the 162 "
            "held-out characters (linear); both scored on 256 videos of the other half, so "
            "no character is both fitted and scored (`image_overlap` 0 in the JSON)",
            # f of 256 and z of 32 (Li & Mandt; C-DSVAE's defaults), both of dsvae's
            # posteriors, and the hierarchical model at the same sizes
            sized=(
                ("hierarchical", 256, 32, ()),
                ("dsvae", 256, 32, (("posterior", "factorized"),)),
                ("dsvae", 256, 32, (("posterior", "full"),)),
            ),
        ),
    ),
    # the same characters and actions drawn as large as the original Sprites' figures, on
    # black, in 8-frame clips (docs/data.md); its runs are the long ones of
    # docs/results.md, not a grid
    "sprites-field": _sprites("sprites-field", sprites.FIELD, frames=8),
}
