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

from dataclasses import dataclass

from stvae.config import PRESETS, TrainConfig
from stvae.data import registry
from stvae.kinds import KINDS

__all__ = [
    "BETAS",
    "PAPER_KINDS",
    "table1_kinds",
    "GridRun",
    "GridSpec",
    "GRIDS",
    "DATASETS",
    "grid",
    "cell_config",
    "table1_cells",
]

BETAS = (1.0, 2.0, 4.0)
PAPER_KINDS = ("hierarchical", "slow", "vae")  # the models of the paper's Tables 1-3


def table1_kinds() -> tuple[str, ...]:
    """Table 1's rows: every registered kind (stvae.kinds), the paper's first, each with
    as many features per frame as the others (half static, half temporal where it has
    a division of its own); the paper has numbers for its own three only."""
    return (*PAPER_KINDS, *(k for k in KINDS if k not in PAPER_KINDS))


@dataclass(frozen=True)
class GridSpec:
    """What the paper reports for one dataset, and the runs that reproduce it."""

    table1_features: int  # features in total of the Table 1 runs
    paper_table1: dict[tuple[str, float], float]  # (model, beta) -> d-score
    static_table: str  # "Table 2" or "Table 3"
    # static-accuracy columns: (heading, {model: features in total of the run probed})
    static_columns: tuple[tuple[str, dict[str, int]], ...]
    paper_static: dict[tuple[str, float], tuple[float, ...]]  # one value per column
    targets: tuple[str, str]  # what the static and the temporal target are called


def _paper(values: list) -> dict[tuple[str, float], float]:
    """Paper values listed model by model (hierarchical, slow, vae), beta 1, 2, 4 in each."""
    cells = [(m, b) for m in PAPER_KINDS for b in BETAS]
    return dict(zip(cells, values, strict=True))


GRIDS: dict[str, GridSpec] = {
    "bouncing-mnist": GridSpec(
        table1_features=4,
        paper_table1=_paper([6.71, 6.74, 6.82, 4.70, 5.78, 6.38, 1.08, 1.70, 1.71]),
        static_table="Table 2",
        targets=("digit", "location"),
        static_columns=(
            ("Acc 4", {"hierarchical": 8, "slow": 4, "vae": 4}),
            ("Acc 2", {"hierarchical": 4, "slow": 2, "vae": 2}),
        ),
        paper_static=_paper(
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
    ),
    "chairs": GridSpec(
        table1_features=8,
        paper_table1=_paper([1.79, 1.73, 1.81, 1.19, 1.57, 1.39, 1.27, 1.24, 1.35]),
        static_table="Table 3",
        targets=("chair", "order"),
        static_columns=(("Accuracy", {"hierarchical": 8, "slow": 4, "vae": 4}),),
        paper_static=_paper(
            [(0.33,), (0.48,), (0.59,), (0.24,), (0.34,), (0.37,), (0.52,), (0.51,), (0.54,)]
        ),
    ),
    # Procedural sprites (not the original Sprites; stvae.data.sprites): no paper numbers.
    # 8 features like chairs (4 static for 4 attributes, 4 temporal for 9 actions x 8 poses);
    # the static accuracy is each attribute's, probed on the Table 1 runs themselves.
    "sprites": GridSpec(
        table1_features=8,
        paper_table1={},
        static_table="attribute accuracy",
        targets=("attributes", "action"),
        static_columns=(("Attributes", {"hierarchical": 8, "slow": 8, "vae": 8}),),
        paper_static={},
    ),
}
DATASETS = tuple(GRIDS)


@dataclass(frozen=True)
class GridRun:
    model: str
    beta: float
    features: int  # in total; the hierarchical model gives half to each factor
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}-f{self.features}-beta{self.beta:g}-seed{self.seed}"


def grid(dataset: str = "bouncing-mnist", seeds: int = 1) -> list[GridRun]:
    """Table 1 runs of every seed first, then the other sizes the static-accuracy table needs."""
    spec = GRIDS[dataset]
    table1 = [(m, spec.table1_features) for m in table1_kinds()]
    rest = []
    for _, column in spec.static_columns:
        rest += [(m, f) for m, f in column.items() if (m, f) not in table1 + rest]
    return [
        GridRun(model, beta, features, seed)
        for sizes in (table1, rest)
        for seed in range(seeds)
        for model, features in sizes
        for beta in BETAS
    ]


def table1_cells(dataset: str) -> list[tuple[str, float, float | None]]:
    """(model, beta, the paper's d-score or None) of every Table 1 cell, in report order."""
    paper = GRIDS[dataset].paper_table1
    return [(m, b, paper.get((m, b))) for m in table1_kinds() for b in BETAS]


def cell_config(dataset: str, preset: str, run: GridRun) -> TrainConfig:
    """The training config of one grid cell: the preset with the cell's fields set."""
    return PRESETS[preset].replace(
        seed=run.seed,
        **{
            "model.kind": run.model,
            "model.beta": run.beta,
            "model.features": run.features,
            "model.channels": registry.DATASETS[dataset].channels,
            "data.source": dataset,
        },
    )
