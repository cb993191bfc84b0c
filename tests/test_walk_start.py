"""bench/walk_start.py: issue 49's chairs cell trained with a tighter start of the walk."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "walk_start.py"


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
    assert row["video_mean"] == ev["static_in_temporal"]["video_mean"]
    assert (
        math.isfinite(row["offsets_cost"]) and row["negative_elbo"] == ev["elbo"]["negative_elbo"]
    )
    md = (tmp_path / "rep.md").read_text()
    assert "--starts 0.5 --preset smoke --frames 6" in md and "| 0.5 | " in md
