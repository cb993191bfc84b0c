"""The pretrained models in pretrained/ (issue 43): the `paper` preset's hierarchical and
slow runs, each one's final weights kept as a run directory that `evaluate`, `encode` and
`figures` read as they are; each card's numbers tied to the committed reports; and the
clone kept from growing: no tracked file over 8 MB outside pretrained/ but the resumable
state of one long run still training."""

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
PRETRAINED = ROOT / "pretrained"
RESULTS = ROOT / "docs" / "results"
LARGE = 8 * 2**20  # bytes: a tracked file above this is weights, and weights are kept once
# model kind: (its folder under pretrained/, the stem of its run's reports in docs/results)
MODELS = {
    "hierarchical": ("bouncing-mnist-hierarchical-beta4", "bouncing-mnist-paper-cpu"),
    "slow": ("bouncing-mnist-slow-beta4", "bouncing-mnist-paper-cpu-slow"),
}
each_model = pytest.mark.parametrize("kind", sorted(MODELS))


def _folder(kind: str) -> Path:
    return PRETRAINED / MODELS[kind][0]


def _report(kind: str, suffix: str = "") -> Path:
    return RESULTS / f"{MODELS[kind][1]}{suffix}"


def test_pretrained_holds_exactly_the_listed_models_each_with_a_card():
    assert sorted(p.name for p in PRETRAINED.iterdir()) == sorted(f for f, _ in MODELS.values())
    for kind in MODELS:
        assert sorted(p.name for p in _folder(kind).iterdir()) == [
            "README.md", "config.json", "metrics.jsonl", "model.safetensors"]  # fmt: skip


@each_model
def test_the_pretrained_folder_is_the_finished_paper_preset_run(kind):
    model, config = load_run(_folder(kind))
    assert (config.model.kind, config.model.features, config.model.beta) == (kind, 4, 4.0)
    assert config.steps == 30_000 and config.batch_videos == 64 and config.data.frames == 16
    lines = (_folder(kind) / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[-1]["step"] == config.steps and records[-1]["final"]
    report = json.loads(_report(kind, ".json").read_text())
    assert report["finished"] and report["steps"] == config.steps
    assert sum(p.numel() for p in model.parameters()) > 1_000_000


@pytest.mark.slow
@each_model
def test_its_weights_give_the_negative_elbo_its_evaluation_recorded(kind):
    """The committed eval.json scored these weights on probe set 0's scoring videos: the
    same weights on the same videos give the same ELBO terms (a wrong file, a loader that
    mixes up tensors or a changed data generator would not)."""
    model, config = load_run(_folder(kind))
    recorded = json.loads(_report(kind, "-eval.json").read_text())["elbo"]
    score = probe_sets(config.data, 256, 0)["score"]
    elbo = elbo_terms(model, score["videos"], seed=0)
    assert {"negative_elbo", "reconstruction", "kl_temporal"} <= set(recorded)
    for key in recorded:  # the slow model's prior has no static block: no kl_static
        assert elbo[key] == pytest.approx(recorded[key], rel=1e-4), key


def _spread(text: str) -> list[str]:
    """The cells of a probe_noise table's mean ± sd row at step 30,000."""
    (row,) = re.findall(r"^\| 30,000 \| mean ± sd \| (.*) \|$", text, re.M)
    return [c.strip() for c in row.split("|")]


def scoring_spreads(kind: str) -> dict[int, list[str]]:
    """The final weights' spread over five probe sets by scoring videos: 1,024 from the
    scoring report's table of 256 fitting and 1,024 scoring videos, 256 from the noise
    report's first table."""
    scoring = _report(kind, "-scoring.md").read_text().split("\n## ")
    (wide,) = [part for part in scoring if part.startswith("256 fitting and 1,024 scoring")]
    noise = _report(kind, "-noise.md").read_text().split("\n## ")[0]
    return {1024: _spread(wide), 256: _spread(noise)}


@each_model
def test_its_card_quotes_the_committed_spread_and_provenance(kind):
    """The card's scores are the reports' mean ± sd at step 30,000 on 1,024 and on 256
    scoring videos, and the card names the data caveat, the commit and the steps."""
    card = (_folder(kind) / "README.md").read_text()
    for videos, cells in scoring_spreads(kind).items():
        assert f"| {videos:,} | " + " | ".join(cells) + " |" in card, videos
    for words in ("56f7840", "30,000 steps", "4,500 digit images", "60,000"):
        assert words in card, words


def test_the_paired_comparison_is_the_two_scoring_reports_set_by_set(bench_module, capsys):
    """The slow model's scoring report sets the two models side by side on the same five
    probe sets: its tables are what bench/paired_probes.py prints from the two committed
    scoring reports, so they change when either report does."""
    paired = bench_module("paired_probes")
    hier, slow = _report("hierarchical", "-scoring.md"), _report("slow", "-scoring.md")
    text = slow.read_text()
    for column in ("eq 19, RBF", "eq 19, linear"):
        a = paired.seed_rows(hier, "256 fitting and 1,024 scoring", column)
        b = paired.seed_rows(slow, "256 fitting and 1,024 scoring", column)
        assert sorted(a) == sorted(b) == [0, 1, 2, 3, 4]
        argv = ["paired_probes", str(hier), str(slow), "--names", "hierarchical", "slow"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.argv", [*argv, "--column", column])
            paired.main()
        printed = capsys.readouterr().out
        assert printed.strip() in text, column
        diffs = [a[s] - b[s] for s in a]
        assert f"{sum(diffs) / 5:+.3f} ± " in printed


@pytest.mark.slow
@each_model
def test_evaluate_encode_and_figures_read_it_without_writing_into_it(kind, tmp_path):
    folder = _folder(kind)
    before = sorted(p.name for p in folder.iterdir())
    videos = probe_sets(load_run(folder)[1].data, 8, 5)["score"]
    np.savez(tmp_path / "clips.npz", **videos)
    assert main(["encode", str(folder), "--data", str(tmp_path / "clips.npz"),
                 "--out", str(tmp_path / "feats.npz")]) in (0, None)  # fmt: skip
    feats = np.load(tmp_path / "feats.npz")
    # the static set: the model's own division, or the one its evaluation chose (slow)
    chosen = json.loads(_report(kind, "-eval.json").read_text())["disentanglement_rbf"]
    assert int(feats["static_features"]) in (0, len(chosen["static_set"]))
    static = feats["mu"][:, :, chosen["static_set"]]  # [V, N, S]
    within = static.std(axis=1).mean()
    between = static.mean(axis=1).std(axis=0).mean()
    assert within < between / 4  # the static factor holds still within a video (Fig 8)
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(folder), "--videos", "24", "--probe", "rbf", "--out", str(out)]
    assert main(argv) in (0, None)
    assert json.loads(out.read_text())["probe_sets"]["rbf"]["score_videos"] == 24
    assert main(["figures", str(folder), "--out", str(tmp_path / "figs")]) in (0, None)
    assert (tmp_path / "figs" / "fig2_swap.png").is_file()
    assert sorted(p.name for p in folder.iterdir()) == before


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
    outside = [p.relative_to(ROOT) for p in large if PRETRAINED not in p.parents]
    runs = {p.parts[1] for p in outside if p.parts[0] == "long"}
    assert len(runs) <= 1, f"more than one long run keeps its state in the tree: {runs}"
    assert all(_in_progress(ROOT / "long" / run) for run in runs), "a finished run left in long/"
    assert [p for p in outside if p.parts[0] != "long"] == []
