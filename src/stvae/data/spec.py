"""What the rest of stvae knows of a generated dataset: :class:`DatasetSpec`.

Code asks a dataset's spec, never its name, for its channels, its splits, how it is
drawn on the host and on the device, its temporal task, its probe sets and its judge;
the specs are registered in :data:`stvae.data.registry.DATASETS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stvae.errors import StvaeError

__all__ = [
    "DatasetSpec",
    "GridSpec",
    "SPLITS",
    "BETAS",
    "DESCRIBE_KEYS",
    "PAPER_KINDS",
    "paper_cells",
]

# train; test (held out), and its two parts that share no image: test-fit, test-score
SPLITS = ("train", "test", "test-fit", "test-score")


# the words a spec's ``describe`` gives, by whether its probes fit on training images
DESCRIBE_KEYS = {True: frozenset({"images", "held"}), False: frozenset({"fit", "score"})}

BETAS = (1.0, 2.0, 4.0)  # the paper's betas (section 4.4)
PAPER_KINDS = ("hierarchical", "slow", "vae")  # the models of the paper's Tables 1-3


def _nothing(split: str, options: Any) -> None:
    return None


def paper_cells(values: list) -> dict[tuple[str, float], float]:
    """Paper values listed model by model (hierarchical, slow, vae), beta 1, 2, 4 in each."""
    cells = [(m, b) for m in PAPER_KINDS for b in BETAS]
    return dict(zip(cells, values, strict=True))


@dataclass(frozen=True)
class GridSpec:
    """A dataset's grid of Tables 1-3 (:mod:`stvae.grids`): what the paper reports for it,
    the runs that reproduce it, and the words its report (:mod:`stvae.report`) needs."""

    table1_features: int  # features in total of the Table 1 runs
    paper_table1: dict[tuple[str, float], float]  # (model, beta) -> d-score
    static_table: str  # "Table 2" or "Table 3"
    # static-accuracy columns: (heading, {model: features in total of the run probed})
    static_columns: tuple[tuple[str, dict[str, int]], ...]
    paper_static: dict[tuple[str, float], tuple[float, ...]]  # one value per column
    targets: tuple[str, str]  # what the static and the temporal target are called
    attributes: bool = False  # several static attributes: the report's tables per attribute
    fit_sets: str = ""  # the report's words for what the probes are fitted and scored on
    about: str = ""  # the report's words for what the data is, where it needs them
    # runs at sizes of their own, beta 1, beside the tables (sprites: DSVAE at its
    # published size): (kind, static features, temporal features, ((option, value), ...))
    sized: tuple[tuple[str, int, int, tuple[tuple[str, str], ...]], ...] = ()
    # Table 1's rows: the kinds this grid runs, the paper's first (a kind registered later
    # joins a grid by being named here, or for one call by ``stvae reproduce --kind``)
    kinds: tuple[str, ...] = (*PAPER_KINDS, "dsvae")


@dataclass(frozen=True)
class DatasetSpec:
    """One generated data source.

    ``render(context, videos, frames, rng, split, options)`` draws a labelled dataset in
    the file format of :mod:`stvae.data.files` (uint8 ``videos`` [V, N, 64, 64] or
    [V, N, 64, 64, 3] and its labels) from a ``numpy.random.Generator``; ``context`` is
    what ``load(split, options)`` read once per source (Bouncing MNIST: the split's digit
    images; None for the others). ``on_device(context, frames, options, device)`` builds
    the maker of :mod:`stvae.data.on_device` that draws the same distribution with torch
    ops on the training device (None: host only). ``options``: the dataset's own settings,
    an instance of its ``options`` dataclass (None when it has none), whose fields become
    fields of :class:`stvae.data.DataConfig` and flags of ``stvae train`` and ``stvae
    dataset`` (Bouncing MNIST: ``mnist_dir`` and ``speed``).
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
    # the probe sets in words, for eval.json and the reports (DESCRIBE_KEYS): with
    # training images, "images" (what they are, plural) and "held" (the held-out ones,
    # with {} for the half, A or B); without, "fit" and "score" (each set's videos)
    describe: dict[str, str] = field(default_factory=dict)
    load: Callable[[str, Any], Any] = _nothing  # (split, options) -> context
    on_device: Callable[..., Any] | None = None
    grid: GridSpec | None = None  # its grid of Tables 1-3, if it has one
    options: type | None = None  # a frozen dataclass of its own settings, each with a default
    # its benchmark's clip length, which a preset's default (16) gives way to
    # (:func:`stvae.config.preset_config`); None: the preset's
    frames: int | None = None
    # sprites: ``balanced(frames, rng, split, limit)``, the field's class-balanced set of
    # ``split``'s characters (:func:`stvae.judge.field_set`); a judge classifier
    # (:mod:`stvae.judge`) is trained on its ``render`` where it is given
    balanced: Callable[..., dict] | None = None

    def __post_init__(self) -> None:
        want = DESCRIBE_KEYS[self.training_images]
        if set(self.describe) != want:
            raise ValueError(
                f"dataset {self.name}: describe must have the keys {sorted(want)} "
                f"(training_images={self.training_images}); got {sorted(self.describe)}"
            )

    @property
    def judge(self) -> bool:
        """Whether a judge classifier of decoded clips exists for it (:mod:`stvae.judge`)."""
        return self.balanced is not None

    @property
    def option_names(self) -> list[str]:
        """The fields of its ``options`` dataclass ([] without)."""
        return [f.name for f in dataclasses.fields(self.options)] if self.options else []

    def make_options(self, values: dict | None = None) -> Any:
        """Its ``options`` dataclass from ``values`` (its fields by name; the rest keep
        their defaults), checked by the dataclass; None when it has no options. A name it
        does not take is refused in one line."""
        values = dict(values or {})
        names = self.option_names
        unknown = sorted(set(values) - set(names))
        if unknown:
            takes = f"its options: {', '.join(names)}" if names else "it has no options"
            raise StvaeError(f"dataset {self.name} takes no option {unknown[0]} ({takes})")
        return self.options(**values) if self.options else None
