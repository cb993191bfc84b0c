"""The README's result tables say what the committed reports (docs/results/*.json) say.

Every table in the README whose header starts ``| model | beta |`` is matched to a report
by its header below; each cell must equal the report's number as the README rounds it,
and each "paper" cell the paper's number as stvae.reproduce records it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stvae.reproduce import GRIDS, GridRun

ROOT = Path(__file__).resolve().parent.parent


def _report(name: str) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads((ROOT / "docs" / "results" / name).read_text())}


def _acc(key: str, features):
    return lambda rows, m, b: f"{rows[_name(m, features(m), b)]['accuracies'][key]:.3f}"


def _field(key: str, features, digits: int = 2, models=("hierarchical", "slow", "vae")):
    def cell(rows, m, b):
        if m not in models:
            return ""
        return f"{rows[_name(m, features(m), b)][key]:.{digits}f}"

    return cell


def _paper(dataset: str, column: int | None = None):
    def cell(rows, m, b):
        spec = GRIDS[dataset]
        value = spec.paper_table1[(m, b)] if column is None else spec.paper_static[(m, b)][column]
        return f"{value:.2f}"

    return cell


def _name(model: str, features: int, beta: float) -> str:
    return GridRun(model, beta, features, seed=0).name


def _four(m):
    return 4


def _eight(m):
    return 8


# the runs each static-accuracy column probes: {model: features in total}
_static_big = GRIDS["bouncing-mnist"].static_columns[0][1].__getitem__
_static_small = GRIDS["bouncing-mnist"].static_columns[1][1].__getitem__
_chairs_static = GRIDS["chairs"].static_columns[0][1].__getitem__


TABLES = {
    "| model | beta | d-score (eq 19) | paper | digit from static | digit from temporal "
    "| location from static | location from temporal |": (
        "bouncing-mnist-cpu.json",
        [
            _field("d_score", _four),
            _paper("bouncing-mnist"),
            _acc("static_acc_from_static", _four),
            _acc("static_acc_from_temporal", _four),
            _acc("temporal_acc_from_static", _four),
            _acc("temporal_acc_from_temporal", _four),
        ],
    ),
    "| model | beta | static acc, 4 features | paper | static acc, 2 features | paper "
    "| d-score, hierarchical 4 + 4 |": (
        "bouncing-mnist-cpu.json",
        [
            _field("static_accuracy", _static_big),
            _paper("bouncing-mnist", 0),
            _field("static_accuracy", _static_small),
            _paper("bouncing-mnist", 1),
            _field("d_score", _eight, models=("hierarchical",)),
        ],
    ),
    "| model | beta | d-score (eq 19) | paper | chair from static | chair from temporal "
    "| order from static | order from temporal | d-score, order-aware probe |": (
        "chairs-cpu.json",
        [
            _field("d_score", _eight),
            _paper("chairs"),
            _acc("static_acc_from_static", _eight),
            _acc("static_acc_from_temporal", _eight),
            _acc("temporal_acc_from_static", _eight),
            _acc("temporal_acc_from_temporal", _eight),
            _field("d_score_order_between", _eight),
        ],
    ),
    "| model | beta | static accuracy, 4 features | paper |": (
        "chairs-cpu.json",
        [_field("static_accuracy", _chairs_static, digits=3), _paper("chairs", 0)],
    ),
}


def _readme_tables() -> dict[str, list[list[str]]]:
    """Header line -> body rows (cells stripped of bold markers) of each results table."""
    tables: dict[str, list[list[str]]] = {}
    lines = (ROOT / "README.md").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| model | beta |"):
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                body.append([c.strip().strip("*") for c in row.strip("|").split("|")])
            tables[line] = body
    return tables


def test_every_results_table_in_the_readme_is_checked():
    assert set(_readme_tables()) == set(TABLES), "a README table with no check, or none"


@pytest.mark.parametrize("header", list(TABLES))
def test_readme_table_matches_its_report(header):
    report, columns = TABLES[header]
    rows = _report(report)
    body = _readme_tables()[header]
    assert body, "an empty table"
    for cells in body:
        model, beta = cells[0], float(cells[1])
        want = [column(rows, model, beta) for column in columns]
        assert cells[2:] == want, f"{report}: {model} beta {beta:g}"
