"""The grids of Tables 1-3: which runs reproduce each table, and the paper's numbers.

Bouncing MNIST: Table 1 compares the three model kinds at 4 latent features in total;
Table 2 the static accuracy of the hierarchical model with 2 and 4 features per factor
against baselines with 2 and 4 features in total. Rotating chairs: Table 1 at 8 features
in total; Table 3 the static accuracy of the hierarchical model with 4 features per
factor against baselines with 4. All at beta 1, 2 and 4 (section 4.4). Procedural sprites
(colour; :mod:`stvae.data.sprites`) run the same four models at 8 features, scored per
attribute; the paper has no numbers for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from stvae.config import TrainConfig, preset_config
from stvae.data import registry
from stvae.data.spec import BETAS, PAPER_KINDS, GridSpec
from stvae.errors import StvaeError
from stvae.kinds import KINDS

__all__ = [
    "BETAS",
    "PAPER_KINDS",
    "table1_kinds",
    "GridRun",
    "GridSpec",
    "GRIDS",
    "grid",
    "cell_config",
    "table1_cells",
]


def table1_kinds(dataset: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Table 1's rows of ``dataset``'s grid: the kinds it names (:attr:`GridSpec.kinds`,
    the paper's first), then ``extra`` registered kinds asked for beside them (``stvae
    reproduce --kind``, or the kinds of a report's rows), each with as many features per
    frame as the others (half static, half temporal where it has a division of its own);
    the paper has numbers for its own three only."""
    named = GRIDS[dataset].kinds
    for kind in extra:
        if kind not in KINDS:
            raise StvaeError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")
    return (*named, *(k for k in dict.fromkeys(extra) if k not in named))


class _Grids(Mapping):
    """Every registered dataset that has a grid (its spec's ``grid``), by name: a live view
    of the registry, so a dataset registered later has its grid here too."""

    def __getitem__(self, name: str) -> GridSpec:
        spec = registry.DATASETS.get(name)
        if spec is None or spec.grid is None:
            raise KeyError(name)
        return spec.grid

    def __iter__(self) -> Iterator[str]:
        return (name for name, spec in registry.DATASETS.items() if spec.grid is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


GRIDS: Mapping[str, GridSpec] = _Grids()


@dataclass(frozen=True)
class GridRun:
    model: str
    beta: float
    features: int  # in total; the hierarchical model gives half to each factor
    seed: int
    static: int | None = None  # features of the kind's own static factor; None: half
    options: tuple[tuple[str, str], ...] = ()  # the kind's own options, (name, value)

    @property
    def name(self) -> str:
        """``<model>-f<features>-beta<beta>-seed<seed>``; a run of a size of its own:
        ``<model>[-<option value>...]-s<static>-t<temporal>-beta<beta>-seed<seed>``."""
        kind = self.variant or f"{self.model}-f{self.features}"
        return f"{kind}-beta{self.beta:g}-seed{self.seed}"

    @property
    def variant(self) -> str:
        """The model, its options and sizes of a run of :attr:`GridSpec.sized` (for
        example ``dsvae-full-s256-t32``); "" for a run of the tables."""
        if self.static is None and not self.options:
            return ""
        size = f"f{self.features}" if self.static is None else f"s{self.static}-t{self.temporal}"
        return "-".join([self.model, *(str(v) for _, v in self.options), size])

    @property
    def temporal(self) -> int:
        return self.features - (self.features // 2 if self.static is None else self.static)


def grid(
    dataset: str = "bouncing-mnist", seeds: int = 1, extra: Iterable[str] = ()
) -> list[GridRun]:
    """Table 1 runs of every seed first (:func:`table1_kinds`, ``extra`` kinds included),
    then the other sizes the static-accuracy table needs, then the runs at sizes of their
    own (:attr:`GridSpec.sized`, beta 1)."""
    spec = GRIDS[dataset]
    table1 = [(m, spec.table1_features) for m in table1_kinds(dataset, extra)]
    rest = []
    for _, column in spec.static_columns:
        rest += [(m, f) for m, f in column.items() if (m, f) not in table1 + rest]
    runs = [
        GridRun(model, beta, features, seed)
        for sizes in (table1, rest)
        for seed in range(seeds)
        for model, features in sizes
        for beta in BETAS
    ]
    return runs + [
        GridRun(model, 1.0, static + temporal, seed, static, options)
        for seed in range(seeds)
        for model, static, temporal, options in spec.sized
    ]


def table1_cells(dataset: str, extra: Iterable[str] = ()) -> list[tuple[str, float, float | None]]:
    """(model, beta, the paper's d-score or None) of every Table 1 cell, in report order."""
    paper = GRIDS[dataset].paper_table1
    return [(m, b, paper.get((m, b))) for m in table1_kinds(dataset, extra) for b in BETAS]


def cell_config(dataset: str, preset: str, run: GridRun) -> TrainConfig:
    """The training config of one grid cell: the preset with the cell's fields set
    (:func:`stvae.config.preset_config`)."""
    return preset_config(
        preset,
        {
            "seed": run.seed,
            "model.kind": run.model,
            "model.beta": run.beta,
            "model.features": run.features,
            "model.channels": registry.DATASETS[dataset].channels,
            "data.source": dataset,
            **({} if run.static is None else {"model.static_features": run.static}),
            **{f"model.{name}": value for name, value in run.options},
        },
    )
