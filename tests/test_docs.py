"""The README's and the docs pages' result tables say what the committed reports
(docs/results/*.json) say, and their links lead somewhere.

Every table in the README or a page of docs/ (not docs/results/, which holds the reports
themselves) whose header starts ``| model | beta |`` is either a copy of a
table of a report's markdown (same header, same rows), whose tables must in turn be what
:func:`stvae.report.report_tables` renders from the report's JSON; or a table of the
stvae 0.1 reports (``*-0.1.json``) matched by its header below, each cell equal to the
report's number as the README rounds it and each "paper" cell the paper's number as
stvae.grids records it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stvae.grids import GRIDS, GridRun
from stvae.report import quoted_tables, report_tables

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _pages_text() -> str:
    return "\n".join(p.read_text() for p in PAGES)


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


def _eight(m):
    return 8


# the runs each static-accuracy column probes: {model: features in total}
_chairs_static = GRIDS["chairs"].static_columns[0][1].__getitem__


TABLES = {
    "| model | beta | d-score (eq 19) | paper | chair from static | chair from temporal "
    "| order from static | order from temporal | d-score, order-aware probe |": (
        "chairs-cpu-0.1.json",
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
        "chairs-cpu-0.1.json",
        [_field("static_accuracy", _chairs_static, digits=3), _paper("chairs", 0)],
    ),
}


def _readme_tables() -> dict[str, list[list[str]]]:
    """The pages' legacy tables: header -> rows of cells stripped of bold markers."""
    return {
        head: [[c.strip().strip("*") for c in row.strip("|").split("|")] for row in body]
        for page in PAGES
        for head, body in quoted_tables(page.read_text()).items()
        if head in TABLES
    }


REPORTS = {"bouncing-mnist-cpu": "bouncing-mnist", "chairs-cpu": "chairs", "sprites-cpu": "sprites"}


def _report_tables() -> dict[str, list[str]]:
    """Header -> body of every table of the committed (current) reports' markdown."""
    out: dict[str, list[str]] = {}
    for stem in REPORTS:
        md = ROOT / "docs" / "results" / f"{stem}.md"
        if md.exists():
            out.update(quoted_tables(md.read_text()))
    return out


def test_every_legacy_table_in_the_readme_is_checked():
    current = _report_tables()
    unchecked = [
        (page.name, h)
        for page in PAGES
        for h in quoted_tables(page.read_text())
        if h not in TABLES and h not in current
    ]
    assert not unchecked, f"tables that no report holds: {unchecked}"
    assert set(_readme_tables()) == set(TABLES), "a legacy check with no README table"


@pytest.mark.parametrize("stem", list(REPORTS))
def test_report_markdown_renders_from_its_json(stem):
    path = ROOT / "docs" / "results" / f"{stem}.json"
    if not path.exists():
        pytest.skip(f"{stem}: no report committed yet")
    rows = json.loads(path.read_text())
    earlier = path.with_name(f"{stem}-0.1.json")
    old = json.loads(earlier.read_text()) if earlier.exists() else None
    md = quoted_tables((ROOT / "docs" / "results" / f"{stem}.md").read_text())
    for lines in report_tables(rows, REPORTS[stem], old).values():
        assert md.get(lines[0]) == lines[2:], f"{stem}.md: {lines[0]}"


def test_readme_copies_report_tables_verbatim():
    current = _report_tables()
    copies = 0
    for page in PAGES:
        for head, body in quoted_tables(page.read_text()).items():
            if head in TABLES:
                continue
            assert body == current[head], f"{page.name}: table differs from its report: {head}"
            copies += 1
    assert copies >= 5  # the README's Table 1 and the results page's tables


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


def test_every_test_the_readme_names_exists():
    """The guarantees' table names the tests that hold each promise up."""
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", _pages_text())
    assert len(named) > 10
    for file, name in named:
        assert re.search(rf"^def {name}\(", (ROOT / "tests" / file).read_text(), re.M), name


def test_no_two_reports_share_a_table_header():
    """The README's copies are matched to report tables by header: one report each."""
    seen: dict[str, str] = {}
    for stem, dataset in REPORTS.items():
        path = ROOT / "docs" / "results" / f"{stem}.json"
        if not path.exists():
            continue
        earlier = path.with_name(f"{stem}-0.1.json")
        old = json.loads(earlier.read_text()) if earlier.exists() else None
        for lines in report_tables(json.loads(path.read_text()), dataset, old).values():
            assert lines[0] not in seen, f"{stem} and {seen.get(lines[0])}: {lines[0]}"
            seen[lines[0]] = stem


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page):
    """Links and images of the README and the docs pages point at committed files."""
    targets = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and t[0] != "#"]
    assert local or page.name != "README.md"
    missing = [t for t in local if not (page.parent / t).exists()]
    assert not missing, f"{page.name}: links to nothing: {missing}"


def _results_table(header: str) -> list[list[str]]:
    """The cells of the one table of docs/results.md whose header starts ``header``."""
    (body,) = quoted_tables((ROOT / "docs" / "results.md").read_text(), header).values()
    return [[c.strip() for c in line.strip("|").split("|")] for line in body]


CURVE_HEADER = "| step | frames (M) | eq 19, RBF | eq 19, linear | digit, training images |"


def test_the_long_runs_curve_in_the_docs_is_its_reports():
    """docs/results.md's table of issue 25's learning curve: one row per point of
    docs/results/bouncing-mnist-paper-cpu.json, every cell its number as the page rounds
    it, then the paper's row."""
    report = json.loads((ROOT / "docs" / "results" / "bouncing-mnist-paper-cpu.json").read_text())
    rows = _results_table(CURVE_HEADER)
    want = [
        [
            f"{p['step']:,}",
            f"{p['frames'] / 1e6:.2f}",
            f"{p['d_score_rbf']:.3f}",
            f"{p['d_score']:.3f}",
            f"{p['static_train_rbf']:.3f}",
            f"{p['static_held_out_rbf']:.3f}",
            f"{p['temporal_from_temporal_rbf']:.3f}",
            f"{p['elbo_negative_elbo']:.1f}",
        ]
        for p in report["points"]
    ]
    cfg, paper = report["config"], report["paper"]
    frames = report["steps"] * cfg["batch_videos"] * cfg["data"]["frames"] / 1e6  # the schedule's
    d, acc = f"{paper['d_score']:.2f}", f"{paper['static_accuracy']:.2f}"
    want.append(["paper", f"{frames:.2f}", d, "", "", acc, "", ""])
    assert rows == want


FINAL_HEADER = "| scored | eq 19, RBF (Table 1) |"


def test_the_long_runs_final_scores_in_the_docs_are_its_evaluate_and_spread():
    """docs/results.md's table of issue 25's final weights beside the paper: `stvae
    evaluate`'s numbers (docs/results/bouncing-mnist-paper-cpu-eval.json, which are also the
    curve's last point), the five probe sets' mean ± sd at the last step on 1,024 scoring
    videos (the scoring report) and on 256 (the noise report), and the paper's Table 1 and
    Table 2 Acc 2 numbers as the curve's report records them."""
    results = ROOT / "docs" / "results"
    report = json.loads((results / "bouncing-mnist-paper-cpu.json").read_text())
    ev = json.loads((results / "bouncing-mnist-paper-cpu-eval.json").read_text())
    last = report["points"][-1]
    assert report["finished"] and last["step"] == report["steps"]
    assert (last["d_score_rbf"], last["static_held_out_rbf"]) == (
        ev["d_score_rbf"],
        ev["static_accuracy_rbf"],
    )
    rbf = ev["disentanglement_rbf"]
    measured = [ev["d_score_rbf"], ev["d_score"], ev["static_accuracy_rbf"]]
    measured += [ev["static_accuracy"], rbf["temporal_acc_from_temporal"]]
    measured += [rbf["temporal_acc_from_static"], rbf["static_acc_from_temporal"]]
    from test_pretrained import scoring_spreads

    spread = scoring_spreads()
    rows = _results_table(FINAL_HEADER)
    paper = report["paper"]
    want = [  # the spread leads, on 1,024 scoring videos; one probe set is a detail
        [f"five probe sets of {v:,} scoring videos, mean ± sd", *spread[v][:3], "", *spread[v][3:]]
        for v in (1024, 256)
    ]
    want.append(["probe set 0 (`stvae evaluate`)", *(f"{v:.3f}" for v in measured)])
    want.append(["paper, beta 4", f"{paper['d_score']:.2f}", "", f"{paper['static_accuracy']:.2f}"])
    assert rows == [*want[:3], want[3] + [""] * 4]
