"""The README's and the docs pages' result tables say what the committed reports
(docs/results/*.json) say, and their links lead somewhere.

Every table in the README or a page of docs/ (not docs/results/, which holds the reports
themselves) whose header starts ``| model | beta |`` is a copy of a table of a report's
markdown (same header, same rows), whose tables must in turn be what
:func:`stvae.report.report_tables` renders from the report's JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stvae.report import quoted_tables, report_tables

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _pages_text() -> str:
    return "\n".join(p.read_text() for p in PAGES)


REPORTS = {"bouncing-mnist-cpu": "bouncing-mnist", "chairs-cpu": "chairs", "sprites-cpu": "sprites"}


def _report_tables() -> dict[str, list[str]]:
    """Header -> body of every table of the committed (current) reports' markdown."""
    out: dict[str, list[str]] = {}
    for stem in REPORTS:
        md = ROOT / "docs" / "results" / f"{stem}.md"
        if md.exists():
            out.update(quoted_tables(md.read_text()))
    return out


def test_every_table_of_the_pages_is_a_reports():
    current = _report_tables()
    unchecked = [
        (page.name, h)
        for page in PAGES
        for h in quoted_tables(page.read_text())
        if h not in current
    ]
    assert not unchecked, f"tables that no report holds: {unchecked}"


@pytest.mark.parametrize("stem", list(REPORTS))
def test_report_markdown_renders_from_its_json(stem):
    path = ROOT / "docs" / "results" / f"{stem}.json"
    if not path.exists():
        pytest.skip(f"{stem}: no report committed yet")
    rows = json.loads(path.read_text())
    md = quoted_tables((ROOT / "docs" / "results" / f"{stem}.md").read_text())
    for lines in report_tables(rows, REPORTS[stem]).values():
        assert md.get(lines[0]) == lines[2:], f"{stem}.md: {lines[0]}"


def test_readme_copies_report_tables_verbatim():
    current = _report_tables()
    copies = 0
    for page in PAGES:
        for head, body in quoted_tables(page.read_text()).items():
            assert body == current[head], f"{page.name}: table differs from its report: {head}"
            copies += 1
    assert copies >= 5  # the README's Table 1 and the results page's tables


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
        for lines in report_tables(json.loads(path.read_text()), dataset).values():
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


@pytest.mark.parametrize(
    "page", [*PAGES, *sorted((ROOT / "docs" / "results").glob("*.md"))], ids=lambda p: p.name
)
def test_every_table_ends_before_the_text_after_it(page):
    """A line of text right after a table's last row renders as one more row of it (as
    the README's "Speed:" line once did); a table ends at a blank line, a heading or a
    fence."""
    lines = page.read_text().splitlines()
    glued = [
        f"line {i + 2}: {after[:40]!r}"
        for i, (row, after) in enumerate(zip(lines, lines[1:], strict=False))
        if row.startswith("|") and after.strip() and not after.startswith(("|", "#", "```"))
    ]
    assert not glued, f"{page.name}: text glued to a table: {glued}"


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


FINAL_HEADERS = {  # docs/results.md's table of each paper-schedule run's final weights
    "hierarchical": "| scored | eq 19, RBF (Table 1) |",
    "slow": "| scored, slow model | eq 19, RBF (Table 1) |",
}


@pytest.mark.parametrize("kind", sorted(FINAL_HEADERS))
def test_the_long_runs_final_scores_in_the_docs_are_its_evaluate_and_spread(kind):
    """docs/results.md's table of a paper-schedule run's final weights beside the paper
    (issues 25, 43): `stvae evaluate`'s numbers (docs/results/<report>-eval.json, which
    are also the curve's last point), the five probe sets' mean ± sd at the last step on
    1,024 scoring videos (the scoring report) and on 256 (the noise report), and the
    paper's Table 1 and Table 2 numbers as the curve's report records them (Acc 2 for the
    hierarchical model's static factor, Acc 4 for the slow model's four features)."""
    from test_pretrained import _report, scoring_spreads

    report = json.loads(_report(kind, ".json").read_text())
    ev = json.loads(_report(kind, "-eval.json").read_text())
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
    spread = scoring_spreads(kind)
    rows = _results_table(FINAL_HEADERS[kind])
    paper = report["paper"]
    want = [  # the spread leads, on 1,024 scoring videos; one probe set is a detail
        [f"five probe sets of {v:,} scoring videos, mean ± sd", *spread[v][:3], "", *spread[v][3:]]
        for v in (1024, 256)
    ]
    want.append(["probe set 0 (`stvae evaluate`)", *(f"{v:.3f}" for v in measured)])
    want.append(["paper, beta 4", f"{paper['d_score']:.2f}", "", f"{paper['static_accuracy']:.2f}"])
    assert rows == [*want[:3], want[3] + [""] * 4]


def test_the_readmes_paper_schedule_row_is_the_scoring_reports():
    """The README's Table 1 beta-4 row at the paper's schedule (issue 43): each model's
    eq 19 under both probes and its digit accuracy are the mean ± sd over five probe sets
    of 1,024 scoring videos in its committed scoring report, beside the paper's numbers as
    its curve's report records them."""
    from test_pretrained import MODELS, _report, scoring_spreads

    header = "| model, paper's schedule, beta 4 |"
    (body,) = quoted_tables((ROOT / "README.md").read_text(), header).values()
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")] for line in body)}
    assert sorted(rows) == sorted(MODELS)
    for kind, row in rows.items():
        eq19, linear, digit = scoring_spreads(kind)[1024][:3]
        paper = json.loads(_report(kind, ".json").read_text())["paper"]
        column = {"Table 2 Acc 2": "static factor, Acc 2", "Table 2 Acc 4": "all 4 features, Acc 4"}
        digit_cell = f"{digit} ({column[paper['static_column']]})"
        want = [kind, eq19, f"{paper['d_score']:.2f}", linear, digit_cell]
        assert row == [*want, f"{paper['static_accuracy']:.2f}"], kind
