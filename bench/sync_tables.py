"""Copy the result tables of committed reports into the README and the docs pages.

A table in README.md or docs/*.md whose header starts ``| model | beta |`` is a verbatim
copy of the report table with the same header (tests/test_docs.py checks it; headers are
unique across reports). After a grid adds rows to docs/results/<report>.md, this replaces
each copy's body with the report's, leaving the prose around it alone:

    python bench/sync_tables.py            # every report
    python bench/sync_tables.py sprites-cpu

It prints what it replaced; the prose that quotes the numbers is still yours to update.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stvae.report import quoted_tables

ROOT = Path(__file__).resolve().parent.parent


def sync(page: Path, reports: dict[str, list[str]]) -> list[str]:
    """Replaces the rows (below the header and its ``|---|`` line) of ``page``'s copies of
    ``reports``' tables; returns their headers."""
    lines, out, done, i = page.read_text().splitlines(keepends=True), [], [], 0
    while i < len(lines):
        line = lines[i].rstrip("\n")
        out.append(lines[i])
        i += 1
        if line in reports:
            out.append(lines[i])  # the |---| line
            i += 1
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            out.extend(row + "\n" for row in reports[line])
            done.append(line)
    if done:
        page.write_text("".join(out))
    return done


def main(names: list[str]) -> int:
    results = ROOT / "docs" / "results"
    chosen = [results / f"{n}.md" for n in names] or sorted(results.glob("*.md"))
    reports = {}
    for path in chosen:
        reports.update(quoted_tables(path.read_text()))
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for header in sync(page, reports):
            print(f"{page.relative_to(ROOT)}: {header[:70]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
