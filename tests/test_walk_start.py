"""bench/walk_start.py: issue 49's chairs cell trained with a tighter start of the walk."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "walk_start.py"


@pytest.fixture(scope="module")
def walk_start(bench_module):
    return bench_module("walk_start")


def test_the_s1_row_is_the_grids_own_run_under_the_scripts_columns(walk_start):
    """The s = 1 row is the committed grid report's hierarchical beta-4 chairs run, its
    numbers under the columns the script's table prints, all but the offsets' two filled."""
    grid = {r["name"]: r for r in json.loads(walk_start.GRID.read_text())}[walk_start.CELL]
    row = walk_start.grid_row()
    assert row["walk_start"] == 1.0 and row["d_score_rbf"] == grid["d_score_rbf"]
    assert row["static_held_out_rbf"] == grid["static_accuracy_rbf"]
    assert row["static_in_temporal_centred"] == grid["static_in_temporal"]["centred"]
    assert row["elbo_negative_elbo"] == grid["negative_elbo"]
    cells = [c.strip() for c in walk_start.table_cells(row, walk_start.COLUMNS).split("|")]
    assert cells[0] == f"{grid['d_score_rbf']:.3f}"
    assert [c for c in cells if c == "—"] == ["—"] * 2  # the offsets' columns: no weights


def test_a_finished_run_is_scored_again_not_retrained(walk_start, tmp_path, monkeypatch):
    """A start whose run has its final weights is only scored; one without them trains
    (resuming where its config exists); every row lands in the report as it is scored."""
    done, half = tmp_path / "runs" / "s0.1", tmp_path / "runs" / "s0.01"
    done.mkdir(parents=True), half.mkdir()
    (done / "model.safetensors").write_bytes(b"")
    (half / "config.json").write_text("{}")  # interrupted: it resumes
    trained = []
    monkeypatch.setattr(walk_start, "train", lambda cfg, run, resume: trained.append((run, resume)))
    monkeypatch.setattr(
        walk_start,
        "scored_row",
        lambda run, s, d: {"walk_start": s, "walk_decay": d, "run": str(run), "d_score": s},
    )
    argv = ["walk_start.py", "--preset", "smoke", "--out", str(tmp_path / "runs")]
    argv += ["--report", str(tmp_path / "rep")]
    monkeypatch.setattr(sys, "argv", argv)
    walk_start.main()
    assert trained == [(half, True)]  # s = 0.1 had finished; s = 0.01 resumed
    rows = json.loads((tmp_path / "rep.json").read_text())["rows"]
    assert [r["walk_start"] for r in rows] == [0.1, 0.01]  # no grid row outside `cpu`
    # a decay is a cell of its own, at eq 8's start, in a folder of its own
    monkeypatch.setattr(sys, "argv", argv + ["--starts", "--decays", "0.9"])
    trained.clear()
    walk_start.main()
    assert trained == [(tmp_path / "runs" / "d0.9", False)]
    (row,) = json.loads((tmp_path / "rep.json").read_text())["rows"]
    assert (row["walk_start"], row["walk_decay"]) == (1.0, 0.9)
    assert "| 1 | 0.9 | " in (tmp_path / "rep.md").read_text()


@pytest.mark.slow
def test_each_start_trains_the_chairs_cell_with_it_and_is_scored(tmp_path):
    """The smoke preset's run of the script: the run trains the grid's cell with the
    given start, and its row carries eval.json's numbers and the offsets' cost."""
    cmd = [sys.executable, str(SCRIPT), "--starts", "0.5", "--preset", "smoke", "--frames", "6"]
    cmd += ["--out", str(tmp_path / "runs"), "--report", str(tmp_path / "rep")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "runs" / "s0.5"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["walk_start"] == 0.5 and config["model"]["beta"] == 4.0
    assert config["data"]["source"] == "chairs" and config["model"]["features"] == 8
    (row,) = json.loads((tmp_path / "rep.json").read_text())["rows"]
    ev = json.loads((run / "eval.json").read_text())
    assert row["walk_start"] == 0.5 and row["d_score_rbf"] == ev["d_score_rbf"]
    assert row["static_held_out_rbf"] == ev["static_accuracy_rbf"]
    assert row["static_in_temporal_video_mean"] == ev["static_in_temporal"]["video_mean"]
    assert math.isfinite(row["offsets_cost"]) and math.isfinite(row["offsets_buy"])
    assert row["elbo_negative_elbo"] == ev["elbo"]["negative_elbo"]
    md = (tmp_path / "rep.md").read_text()
    assert "--starts 0.5 --preset smoke --frames 6" in md and "| 0.5 | 1 | " in md
