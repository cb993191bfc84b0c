"""The pretrained model in pretrained/ (issue 43): the `paper` preset's hierarchical run,
its final weights kept as a run directory that `evaluate`, `encode` and `figures` read as
they are; its card's numbers tied to the committed reports; and the clone kept from
growing: no tracked file over 8 MB outside pretrained/ but the resumable state of one
long run still training."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from stvae.cli import main
from stvae.evaluate import elbo_terms, probe_sets
from stvae.rundir import load_run

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "pretrained" / "bouncing-mnist-hierarchical-beta4"
RESULTS = ROOT / "docs" / "results"
LARGE = 8 * 2**20  # bytes: a tracked file above this is weights, and weights are kept once


def _card() -> str:
    return (PRETRAINED / "README.md").read_text()


def test_the_pretrained_folder_is_the_finished_paper_preset_run():
    model, config = load_run(PRETRAINED)
    assert (config.model.kind, config.model.features, config.model.beta) == ("hierarchical", 4, 4.0)
    assert config.steps == 30_000 and config.batch_videos == 64 and config.data.frames == 16
    records = [json.loads(line) for line in (PRETRAINED / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == config.steps and records[-1]["final"]
    report = json.loads((RESULTS / "bouncing-mnist-paper-cpu.json").read_text())
    assert report["finished"] and report["steps"] == config.steps
    assert sum(p.numel() for p in model.parameters()) > 1_000_000


@pytest.mark.slow
def test_its_weights_give_the_negative_elbo_its_evaluation_recorded():
    """The committed eval.json scored these weights on probe set 0's scoring videos: the
    same weights on the same videos give the same ELBO terms (a wrong file, a loader that
    mixes up tensors or a changed data generator would not)."""
    model, config = load_run(PRETRAINED)
    recorded = json.loads((RESULTS / "bouncing-mnist-paper-cpu-eval.json").read_text())["elbo"]
    score = probe_sets(config.data, 256, 0)["score"]
    elbo = elbo_terms(model, score["videos"], seed=0)
    for key in ("negative_elbo", "reconstruction", "kl_static", "kl_temporal"):
        assert elbo[key] == pytest.approx(recorded[key], rel=1e-4), key


def _spread(text: str) -> list[str]:
    """The cells of a probe_noise table's mean ± sd row at step 30,000."""
    (row,) = re.findall(r"^\| 30,000 \| mean ± sd \| (.*) \|$", text, re.M)
    return [c.strip() for c in row.split("|")]


def scoring_spreads() -> dict[int, list[str]]:
    """The final weights' spread over five probe sets by scoring videos: 1,024 from the
    scoring report's second table, 256 from the noise report."""
    scoring = (RESULTS / "bouncing-mnist-paper-cpu-scoring.md").read_text().split("\n## ")
    (wide,) = [part for part in scoring if part.startswith("256 fitting and 1,024 scoring")]
    noise = (RESULTS / "bouncing-mnist-paper-cpu-noise.md").read_text().split("\n## ")[0]
    return {1024: _spread(wide), 256: _spread(noise)}


def test_its_card_quotes_the_committed_spread_and_provenance():
    """The card's scores are the reports' mean ± sd at step 30,000 on 1,024 and on 256
    scoring videos, and the card names the data caveat, the commit and the steps."""
    card = _card()
    for videos, cells in scoring_spreads().items():
        assert f"| {videos:,} | " + " | ".join(cells) + " |" in card, videos
    for words in ("56f7840", "30,000 steps", "4,500 digit images", "60,000"):
        assert words in card, words


@pytest.mark.slow
def test_evaluate_encode_and_figures_read_it_without_writing_into_it(tmp_path):
    before = sorted(p.name for p in PRETRAINED.iterdir())
    videos = probe_sets(load_run(PRETRAINED)[1].data, 8, 5)["score"]
    np.savez(tmp_path / "clips.npz", **videos)
    assert main(["encode", str(PRETRAINED), "--data", str(tmp_path / "clips.npz"),
                 "--out", str(tmp_path / "feats.npz")]) in (0, None)  # fmt: skip
    feats = np.load(tmp_path / "feats.npz")
    static = feats["mu"][:, :, : int(feats["static_features"])]  # [V, N, 2]
    within = static.std(axis=1).mean()
    between = static.mean(axis=1).std(axis=0).mean()
    assert within < between / 4  # the static factor holds still within a video (Fig 8)
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(PRETRAINED), "--videos", "24", "--probe", "rbf", "--out", str(out)]
    assert main(argv) in (0, None)
    assert json.loads(out.read_text())["probe_sets"]["rbf"]["score_videos"] == 24
    assert main(["figures", str(PRETRAINED), "--out", str(tmp_path / "figs")]) in (0, None)
    assert (tmp_path / "figs" / "fig2_swap.png").is_file()
    assert sorted(p.name for p in PRETRAINED.iterdir()) == before


def _tracked() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def _in_progress(run: Path) -> bool:
    """A kept long run that has not reached its last step (its metrics' last record)."""
    config = json.loads((run / "config.json").read_text())
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return not lines or json.loads(lines[-1])["step"] < config["steps"]


def test_no_tracked_file_over_8_mb_outside_pretrained_but_one_run_in_progress():
    large = [p for p in _tracked() if p.is_file() and p.stat().st_size > LARGE]
    outside = [p.relative_to(ROOT) for p in large if PRETRAINED.parent not in p.parents]
    runs = {p.parts[1] for p in outside if p.parts[0] == "long"}
    assert len(runs) <= 1, f"more than one long run keeps its state in the tree: {runs}"
    assert all(_in_progress(ROOT / "long" / run) for run in runs), "a finished run left in long/"
    assert [p for p in outside if p.parts[0] != "long"] == []
