"""The Tables 1-2 grid: order, restart without retraining, and the report files."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stvae import StvaeError, __version__
from stvae import reproduce as rep
from stvae.data import DataConfig
from stvae.data.sprites import ATTRIBUTES
from stvae.evaluate import _options
from stvae.model import ModelConfig, encode_videos, make_model
from stvae.report import sized_table
from stvae.result import EvalResult
from stvae.train import TrainConfig, load_run, train


def test_grid_covers_tables_1_and_2():
    runs = rep.grid()
    assert len(runs) == 21
    table1 = {(r.model, r.beta) for r in runs if r.features == 4}
    paper = set(rep.GRIDS["bouncing-mnist"].paper_table1)
    assert table1 == paper | {("dsvae", b) for b in rep.BETAS}  # the successor beside them
    assert {r.features for r in runs if r.model == "hierarchical"} == {4, 8}
    assert {r.features for r in runs if r.model in ("slow", "vae")} == {2, 4}
    assert {r.features for r in runs if r.model == "dsvae"} == {4}
    assert [r.features for r in runs[:12]] == [4] * 12  # Table 1 first
    assert len(rep.grid(seeds=3)) == 63
    two = rep.grid(seeds=2)  # Table 1 of every seed before the other sizes
    assert [r.features for r in two[:24]] == [4] * 24 and [r.seed for r in two[:24:12]] == [0, 1]


def test_a_grid_runs_the_kinds_it_names_and_others_only_when_asked(monkeypatch, capsys):
    """A kind registered later adds no run to a grid that does not name it (nor rows to its
    committed report); ``kinds`` / ``--kind`` runs it beside the grid's own, and every
    grid names registered kinds only."""
    from stvae.cli import main
    from stvae.kinds import KINDS

    monkeypatch.setitem(KINDS, "toy", KINDS["hierarchical"])
    for dataset, spec in rep.GRIDS.items():
        assert set(spec.kinds) <= set(KINDS) - {"toy"}, dataset
        assert "toy" not in {r.model for r in rep.grid(dataset)}
        with_toy = rep.grid(dataset, extra=["toy"])
        assert [r.name for r in with_toy if r.model != "toy"] == [r.name for r in rep.grid(dataset)]
        assert {(r.beta, r.features) for r in with_toy if r.model == "toy"} == {
            (b, spec.table1_features) for b in rep.BETAS
        }
    with pytest.raises(StvaeError, match="unknown model kind 'nosuch'"):
        rep.grid(extra=["nosuch"])
    assert main(["reproduce", "--kind", "nosuch", "--out", "/nonexistent/x"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "unknown model kind 'nosuch'" in line


def test_chairs_grid_covers_table_1_and_3():
    runs = rep.grid("chairs")
    assert len(runs) == 18
    assert {(r.model, r.features) for r in runs} == {
        ("hierarchical", 8),
        ("slow", 8),
        ("vae", 8),
        ("dsvae", 8),
        ("slow", 4),
        ("vae", 4),
    }


@pytest.mark.slow
def test_sprites_grid_runs_dsvae_at_its_published_size():
    runs = rep.grid("sprites", seeds=2)
    assert len(runs) == 30 and len(rep.grid()) == 21  # bouncing MNIST has none of its own
    sized = [r.name for r in runs[-6:]]
    assert sized[:3] == [
        "hierarchical-s256-t32-beta1-seed0",
        "dsvae-factorized-s256-t32-beta1-seed0",
        "dsvae-full-s256-t32-beta1-seed0",
    ] and sized[3:] == [n.replace("seed0", "seed1") for n in sized[:3]]
    assert all(r.variant == "" for r in runs[:-6])  # the tables' runs keep their names
    assert runs[0].name == "hierarchical-f8-beta1-seed0"
    full = runs[-4]
    cfg = rep.cell_config("sprites", "cpu", full).model
    assert (cfg.kind, cfg.features, cfg.static_features, cfg.posterior) == (
        "dsvae",
        288,
        256,
        "full",
    )
    assert _options(cfg) == {"static_features": 256, "posterior": "full", "likelihood": "bernoulli"}
    mu, _ = encode_videos(make_model(cfg), np.random.rand(2, 3, 64, 64, 3).astype(np.float32))
    assert mu.shape == (2, 3, 288)  # f of 256 repeated over the frames, then z of 32
    assert np.allclose(mu[:, 0, :256], mu[:, 2, :256]) and not np.allclose(
        mu[:, 0, 256:], mu[:, 2, 256:]
    )


def test_runs_of_a_size_of_their_own_have_a_table_of_their_own():
    # dsvae's two posteriors at one size are two rows, and neither joins Table 1's cell
    names = list(ATTRIBUTES)
    rows = []
    for variant, skin in (("dsvae-factorized-s256-t32", 0.7), ("dsvae-full-s256-t32", 0.3)):
        for seed in (0, 1):
            attrs = {
                n: {
                    "static_acc_from_static": skin + 0.1 * seed,
                    "temporal_acc_from_static": 0.2,
                    "temporal_acc_from_temporal": 0.9,
                }
                for n in names
            }
            rows.append(
                {
                    **_row(f"dsvae-f288-beta1-seed{seed}", 2.0, 3.0 + seed),
                    "name": f"{variant}-beta1-seed{seed}",
                    "variant": variant,
                    "attributes_rbf": attrs,
                }
            )
    sized = sized_table(rows, names)
    assert sized[2].startswith("| hierarchical-s256-t32 | 1 | 256 + 32 | not run |")
    assert sized[3] == (
        "| dsvae-factorized-s256-t32 | 1 | 256 + 32 | 3.50 ± 0.71 | 2.00 ± 0.00 | "
        + " | ".join(["0.750 ± 0.071"] * len(names))
        + " | 0.200 ± 0.000 | 0.900 ± 0.000 | 530.0 ± 0.0 | 2 |"
    )
    assert sized[4].startswith(
        "| dsvae-full-s256-t32 | 1 | 256 + 32 | 3.50 ± 0.71 | 2.00 ± 0.00 | 0.350"
    )
    md = rep.report_markdown(rows, "sprites", "cpu", 2)
    assert "## At DSVAE's published size" in md and "| dsvae | 1 | not run |" in md


def test_reproduce_restarts_where_it_stopped(tmp_path, monkeypatch, small_probe_sets):
    tiny = TrainConfig(model=ModelConfig(), data=DataConfig(frames=3), steps=2, batch_videos=2)
    monkeypatch.setitem(rep.PRESETS, "cpu", tiny)
    trained = []
    real_train = rep.train
    monkeypatch.setattr(
        rep, "train", lambda c, d, resume: trained.append(d) or real_train(c, d, resume)
    )
    kwargs = dict(out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lambda s: None)
    rows = rep.reproduce(limit=2, **kwargs)
    assert [r["name"] for r in rows] == [r.name for r in rep.grid()[:2]]
    rows = rep.reproduce(limit=1, **kwargs)
    assert len(rows) == 3 and len(trained) == 3  # the first two were not trained again
    saved = json.loads((tmp_path / "docs" / "bouncing-mnist-cpu.json").read_text())
    assert saved == rows
    for row in saved:
        assert {"model", "beta", "features", "seed", "d_score", "static_accuracy", "wall_s"} <= set(
            row
        )
        # how it trained, as train() reports it
        assert row["device"] == row["device_name"] == "cpu" and row["precision"] in ("bf16", "fp32")
        assert row["compiled"] is tiny.compile
        assert row["clip_frames"] == 3 and row["frames_seen"] == 2 * 2 * 3  # what it saw
    md = (tmp_path / "docs" / "bouncing-mnist-cpu.md").read_text()
    assert "| hierarchical | 1 | " in md and "6.71" in md and "Runs done: 3 of 21" in md
    assert "| slow | 4 | not run | 6.38 | not run | not run | 0 |" in md
    assert "| dsvae | 1 | not run | — | not run | own division | 0 |" in md
    how = f"cpu {saved[0]['precision']} {'compiled' if tiny.compile else 'eager'}"
    first = saved[0]
    assert (
        f"| {first['name']} | {first['d_score_rbf']:.2f} | {first['d_score']:.2f} |" in md
        and f" {how} (stvae " in md
    )
    assert first["image_overlap_rbf"] == first["image_overlap"] == 0.0
    assert first["eval_version"] == rep.EVAL_VERSION
    assert first["version"] == rep.code_version() and first["version"].startswith(__version__)
    assert (tmp_path / "runs" / "bouncing-mnist-cpu" / first["name"]).is_dir()
    # --only picks cells out of order; the report keeps the earlier rows
    rows = rep.reproduce(only=["vae-f4-beta4-*", "slow-f2-beta1-*"], **kwargs)
    assert [r["name"] for r in rows[3:]] == ["vae-f4-beta4-seed0", "slow-f2-beta1-seed0"]
    assert len(trained) == 5
    with pytest.raises(StvaeError, match="matches no run"):
        rep.reproduce(only=["lstm-*"], **kwargs)
    # with nothing left to train (limit 0) the report is rendered again from its rows
    md_path = tmp_path / "docs" / "bouncing-mnist-cpu.md"
    md_path.write_text("stale")
    assert rep.reproduce(limit=0, **kwargs) == rows and len(trained) == 5
    md = md_path.read_text()
    assert "Runs done: 5 of 21" in md
    assert "Features the probe sees: Acc 4: hierarchical 4, slow 4, vae 4; Acc 2:" in md
    assert "| frames seen (M) | clip (frames) |" in md and " | 0.00 | 3 | " in md
    # a row from before rows recorded what their run saw gets it from its grid cell
    report = tmp_path / "docs" / "bouncing-mnist-cpu.json"
    old = json.loads(report.read_text())
    for row in old:
        del row["clip_frames"], row["frames_seen"]
    report.write_text(json.dumps(old))
    assert rep.reproduce(limit=0, **kwargs) == rows and len(trained) == 5


def test_a_judged_row_without_the_field_protocol_is_not_current(tmp_path):
    # sprites rows of evaluation version 2 written before the field's protocol existed
    # are run again; rows of data without a judge stay as they are
    for dataset, action in (("sprites", "train"), ("bouncing-mnist", "skip")):
        run = rep.grid(dataset)[0]
        rows = {run.name: {"eval_version": rep.EVAL_VERSION}}
        assert rep._plan(run, rows, tmp_path, dataset, "cpu")[0] == action
    run = rep.grid("sprites")[0]
    rows = {run.name: {"eval_version": rep.EVAL_VERSION, "field": {}}}
    assert rep._plan(run, rows, tmp_path, "sprites", "cpu")[0] == "skip"
    # a baseline's row from before the redraws' change was measured is scored again (the
    # change decides whether the protocol applies to its division); a split model's stays
    baseline = next(r for r in rep.grid("sprites") if r.model == "vae")
    split = next(r for r in rep.grid("sprites") if r.model == "hierarchical")
    sets = {"static_set": [3], "temporal_set": [0, 1, 2]}
    for run, static, field, action in (
        (baseline, 0, sets, "train"),
        (baseline, 0, {**sets, "change": {"static": 0.0, "temporal": 0.1, "all": 0.1}}, "skip"),
        (split, 4, sets, "skip"),
    ):
        row = {"eval_version": rep.EVAL_VERSION, "static_features": static, "field": field}
        assert rep._plan(run, {run.name: row}, tmp_path, "sprites", "cpu")[0] == action


@pytest.mark.slow
def test_older_rows_are_scored_again_and_other_configs_refused(
    tmp_path, monkeypatch, small_probe_sets
):
    tiny = TrainConfig(model=ModelConfig(), data=DataConfig(frames=3), steps=2, batch_videos=2)
    monkeypatch.setitem(rep.PRESETS, "cpu", tiny)
    trained, scored = [], []
    real_train, real_eval = rep.train, rep.evaluate_run
    monkeypatch.setattr(
        rep, "train", lambda c, d, resume: trained.append(d) or real_train(c, d, resume)
    )
    monkeypatch.setattr(rep, "evaluate_run", lambda d: scored.append(d) or real_eval(d))
    kwargs = dict(out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lambda s: None)
    rows = rep.reproduce(limit=1, **kwargs)
    assert len(trained) == len(scored) == 1
    report = tmp_path / "docs" / "bouncing-mnist-cpu.json"
    old = [{**rows[0], "eval_version": 1}]  # a row of the earlier evaluation
    report.write_text(json.dumps(old))
    run_dir = tmp_path / "runs" / "bouncing-mnist-cpu" / rows[0]["name"]
    (run_dir / "eval.json").write_text(json.dumps({"eval_version": 1}))
    again = rep.reproduce(limit=0, **kwargs)
    assert len(trained) == 1 and len(scored) == 2  # scored again, not trained again
    assert again[0]["eval_version"] == rep.EVAL_VERSION
    assert again[0]["d_score_rbf"] == rows[0]["d_score_rbf"]  # the same weights, same score
    # a run directory of another configuration is refused, not reused or overwritten
    config = json.loads((run_dir / "config.json").read_text())
    config["model"]["beta"] = 3.0
    (run_dir / "config.json").write_text(json.dumps(config))
    report.write_text(json.dumps(old))
    refused = r"another configuration .*: model.beta \(run: 3.0, given: 1.0\); move"
    with pytest.raises(StvaeError, match=refused):
        rep.reproduce(limit=0, **kwargs)


def _row(name="slow-f8-beta1-seed0", d=2.47, rbf=2.9, **more):
    model, features, beta, seed = name.split("-")
    accs = {
        "static_acc_from_static": 0.9,
        "static_acc_from_temporal": 0.1,
        "temporal_acc_from_static": 0.5,
        "temporal_acc_from_temporal": 0.6,
    }
    return {
        "name": name,
        "model": model,
        "beta": float(beta[4:]),
        "features": int(features[1:]),
        "seed": int(seed[4:]),
        "eval_version": rep.EVAL_VERSION,
        "d_score": d,
        "d_score_rbf": rbf,
        "accuracies": accs,
        "accuracies_rbf": accs,
        "chosen_on_fit_rbf": {"d_score": rbf - 0.5, "static_set": [0]},
        "static_set": [0],
        "division": "best of 254",
        "static_accuracy": 0.9,
        "static_accuracy_rbf": 0.95,
        "static_chance": 0.086,
        "static_chance_rbf": 0.086,
        "temporal_chance": 0.508,
        "temporal_chance_rbf": 0.508,
        "ceiling": 4.47,
        "ceiling_this_balance": 4.79,
        "negative_elbo": 530.0,
        "wall_s": 800.0,
        **more,
    }


def test_chairs_report_shows_the_order_aware_score():
    row = _row(d_score_order_between=3.21)
    md = rep.report_markdown([row], "chairs", "cpu", 1)
    assert "d-score, order-aware linear probe |" in md
    cells = "| 2.90 | 2.47 | 0.950 | 0.900 | 530.0 | not recorded | not recorded | 800 | 3.21 |"
    assert f"| slow-f8-beta1-seed0 {cells}" in md
    assert "| slow | 1 | 2.90 | 1.19 | 2.47 | 2.40 | 1 | 3.21 |" in md
    without = {k: v for k, v in row.items() if k != "d_score_order_between"}
    assert "order-aware" not in rep.report_markdown([without], "chairs", "cpu", 1)


def test_report_cells_are_means_and_spreads_over_seeds():
    rows = [_row("vae-f4-beta2-seed0", 1.0, 2.0), _row("vae-f4-beta2-seed1", 2.0, 4.0)]
    tables = rep.report_tables(rows, "bouncing-mnist")
    assert "| vae | 2 | 3.00 ± 1.41 | 1.70 | 1.50 ± 0.71 | 2.50 ± 1.41 | 2 |" in tables["table1"]
    assert "| vae | 2 | linear | 0.900 ± 0.000 |" in "\n".join(tables["accuracies"])
    # Table 2's "Acc 4" baseline column probes the same 4-feature runs
    assert tables["static"][0].startswith("| model | beta | Acc 4, RBF | paper Acc 4 | Acc 4,")
    assert (
        "| vae | 2 | 0.950 ± 0.000 | 0.52 | 0.900 ± 0.000 | not run | 0.12 | not run |"
        in (tables["static"])
    )


def test_a_run_stopped_by_sigterm_is_not_scored_and_stops_the_grid(tmp_path, monkeypatch):
    calls = []

    def stopped_train(config, run_dir, resume):
        calls.append(run_dir)
        return {"run_dir": str(run_dir), "step": 1, "stopped": True, "final": None}

    monkeypatch.setattr(rep, "train", stopped_train)
    monkeypatch.setattr(rep, "evaluate_run", lambda d: pytest.fail("scored an unfinished run"))
    lines = []
    rows = rep.reproduce(out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lines.append)
    assert rows == [] and len(calls) == 1 and rows.stopped
    assert "stopped at step 1; the same command resumes" in lines[-1]
    assert not (tmp_path / "docs" / "bouncing-mnist-cpu.json").exists()
    # the command exits as `stvae train` does when SIGTERM stopped it
    from stvae.cli import main

    argv = ["reproduce", "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "d")]
    assert main(argv) == 128 + signal.SIGTERM


def _finished(run_dir, earlier=0.0):
    """What `train` returns for a finished run (the tests that fake training)."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return {
        "run_dir": str(run_dir),
        "start_step": 0,
        "step": 2400,
        "stopped": False,
        "earlier_wall_s": earlier,
        "device": "cpu",
        "precision": "fp32",
        "compiled": False,
    }


def _scored(d_score=2.0):
    """An evaluation result with what a report row reads."""
    d = {
        "d_score": d_score,
        "static_set": [0],
        "temporal_set": [1],
        "division": "model",
        "static_acc_from_static": 0.5,
        "temporal_acc_from_static": 0.5,
        "temporal_acc_from_temporal": 0.9,
        "static_acc_from_temporal": 0.1,
        "static_chance": 0.1,
        "temporal_chance": 0.5,
        "ceiling": 4.47,
        "ceiling_this_balance": 4.5,
    }
    return EvalResult.from_dict(
        {
            "eval_version": rep.EVAL_VERSION,
            "model": "hierarchical",
            "features": 4,
            "beta": 1.0,
            "seed": 0,
            "data": "held-out bouncing-mnist",
            "videos": 256,
            "disentanglement": d,
            "disentanglement_rbf": d,
            "static_accuracy": 0.5,
            "static_chance": 0.1,
            "static_accuracy_rbf": 0.5,
            "static_chance_rbf": 0.1,
            "elbo": {"negative_elbo": 100.0},
        }
    )


def test_two_grids_writing_one_report_keep_each_others_rows(tmp_path, monkeypatch):
    first, second = (r.name for r in rep.grid()[:2])
    docs = tmp_path / "docs"

    def train_while_another_grid_reports(config, run_dir, resume):
        if Path(run_dir).name == first:  # grid A trains; meanwhile grid B reports a run
            rep.reproduce(out=tmp_path / "b", report_dir=docs, only=[second], log=print)
        return _finished(run_dir)

    monkeypatch.setattr(rep, "train", train_while_another_grid_reports)
    monkeypatch.setattr(rep, "evaluate_run", lambda d: _scored())
    rows = rep.reproduce(out=tmp_path / "a", report_dir=docs, only=[first], log=print)
    on_disk = json.loads((docs / "bouncing-mnist-cpu.json").read_text())
    assert [r["name"] for r in on_disk] == [first, second] == [r["name"] for r in rows]
    md = (docs / "bouncing-mnist-cpu.md").read_text()
    assert md.count("| 2.00") >= 2  # both rows rendered
    assert not list(docs.glob(".*.lock"))  # the report's lock is gone with its writer


def _report_rows(stem: Path, names: list[str]) -> None:
    """One grid's writer: its rows merged into the report one at a time."""
    for name in names:
        rep._write_report(stem, {name: {"name": name, "seed": 0}}, "bouncing-mnist", "cpu", 2)


def test_two_processes_merging_rows_into_one_report_lose_none(tmp_path, monkeypatch):
    """The race itself: two processes each merge their half of the grid's rows into one
    report, a row at a time, the markdown taking a moment (as a real report's does) to
    hold the window between reading the report and writing it back open. Every row of
    both ends up in it (without the report's lock, rows of one are written over)."""
    import multiprocessing

    def slow_markdown(rows, *args):
        time.sleep(0.002)
        return f"{len(rows)} rows\n"

    monkeypatch.setattr(rep, "report_markdown", slow_markdown)
    names = [r.name for r in rep.grid(seeds=2)]
    stem = tmp_path / "bouncing-mnist-cpu"
    fork = multiprocessing.get_context("fork")  # the patched module goes with the child
    writers = [fork.Process(target=_report_rows, args=(stem, names[i::2])) for i in (0, 1)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
        assert w.exitcode == 0
    on_disk = json.loads(stem.with_suffix(".json").read_text())
    assert sorted(r["name"] for r in on_disk) == sorted(names)


def test_a_resumed_run_reports_the_time_of_all_its_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(rep, "train", lambda c, d, resume: _finished(d, earlier=500.0))
    monkeypatch.setattr(rep, "evaluate_run", lambda d: _scored())
    rows = rep.reproduce(
        out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lambda s: None, limit=1
    )
    assert 500.0 <= rows[0]["wall_s"] < 560.0


@pytest.mark.slow
def test_the_grid_continues_runs_killed_mid_checkpoint_or_before_one(
    tmp_path, monkeypatch, small_probe_sets
):
    tiny = TrainConfig(
        model=ModelConfig(), data=DataConfig(frames=3), steps=4, batch_videos=2, checkpoint_every=2
    )
    monkeypatch.setitem(rep.PRESETS, "cpu", tiny)
    calls, starts = [], []
    real_train = rep.train

    def recorded(c, d, resume):
        calls.append(resume)
        summary = real_train(c, d, resume)
        starts.append(summary["start_step"])
        return summary

    monkeypatch.setattr(rep, "train", recorded)
    folder = tmp_path / "runs" / "bouncing-mnist-cpu"
    first, second = (folder / r.name for r in rep.grid()[:2])
    cell = rep.cell_config("bouncing-mnist", "cpu", rep.grid()[0])
    real_train(cell.replace(steps=2), first)  # then killed between the two renames:
    ckpt = first / "checkpoint.safetensors"
    ckpt.replace(first / "checkpoint.prev.safetensors")
    (first / "model.safetensors").unlink()
    (first / "config.json").write_text(json.dumps(cell.to_dict()))
    second.mkdir(parents=True)  # killed before its first checkpoint: only its config
    (second / "config.json").write_text(
        json.dumps(rep.cell_config("bouncing-mnist", "cpu", rep.grid()[1]).to_dict())
    )
    kwargs = dict(out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lambda s: None)
    rows = rep.reproduce(limit=2, **kwargs)
    assert [r["name"] for r in rows] == [first.name, second.name] and calls == [True, True]
    assert starts == [2, 0]  # the first from its previous checkpoint, the second from 0
    steps = [json.loads(x)["step"] for x in (first / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4
    # and the continued runs equal a grid that was never interrupted, to the last bit
    straight = rep.reproduce(
        limit=2, out=tmp_path / "straight", report_dir=tmp_path / "docs2", log=lambda s: None
    )
    for a, b in zip(rows, straight, strict=True):
        assert (a["d_score"], a["d_score_rbf"], a["negative_elbo"]) == (
            b["d_score"],
            b["d_score_rbf"],
            b["negative_elbo"],
        )
        wa = load_run(folder / a["name"])[0].state_dict()
        wb = load_run(tmp_path / "straight" / "bouncing-mnist-cpu" / b["name"])[0].state_dict()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # a second grid process on the same folder is refused, the first named
    with rep.RunLock(folder), pytest.raises(StvaeError, match="in use by process"):
        rep.reproduce(limit=0, **kwargs)


@pytest.mark.slow
@pytest.mark.xdist_group("judge")  # one worker trains the judge, then reuses it
def test_sprites_grid_reports_each_attribute(tmp_path, monkeypatch, small_probe_sets):
    # clips of the judge's own length: one judge for the suite (tests/test_judge.py)
    tiny = TrainConfig(model=ModelConfig(), data=DataConfig(frames=8), steps=2, batch_videos=2)
    monkeypatch.setitem(rep.PRESETS, "cpu", tiny)
    kwargs = dict(out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lambda s: None)
    rows = rep.reproduce(dataset="sprites", limit=1, **kwargs)
    assert [r["name"] for r in rows] == ["hierarchical-f8-beta1-seed0"]
    row = rows[0]
    cfg = json.loads((tmp_path / "runs" / "sprites-cpu" / row["name"] / "config.json").read_text())
    assert cfg["model"]["channels"] == 3 and cfg["data"]["source"] == "sprites"
    for sfx in ("", "_rbf"):
        attrs = row[f"attributes{sfx}"]
        assert sorted(attrs) == sorted(ATTRIBUTES)
        assert row[f"d_score{sfx}"] == pytest.approx(
            np.mean([a["d_score"] for a in attrs.values()])
        )
        assert row[f"image_overlap{sfx}"] == 0.0
    md = (tmp_path / "docs" / "sprites-cpu.md").read_text()
    assert "not the original Sprites" in md and "Runs done: 1 of 15" in md
    skin = row["attributes_rbf"]["skin"]["static_acc_from_static"]
    assert f"| hierarchical | 1 | RBF | {skin:.3f} |" in md
    assert "| model | beta | probe | skin | hair | top | trousers |" in md
    assert f"| hierarchical | 1 | {row['d_score_rbf']:.2f} | {row['d_score']:.2f} | 1 |" in md
    swaps = row["swaps"]  # judged swaps, with the judge's own accuracy beside
    assert set(swaps["judge_accuracy"]) == {*ATTRIBUTES, "action"}
    assert all(0 <= swaps[k] <= 1 for k in ("action", *ATTRIBUTES))
    assert f"| hierarchical | 1 | {swaps['action']:.3f} | {swaps['skin']:.3f} |" in md
    kept = statistics.mean(swaps[f"reconstruction_{a}"] for a in ATTRIBUTES)
    assert f"| {swaps['reconstruction_action']:.3f} | {kept:.3f} |" in md


PARALLEL_SCRIPT = """
import sys
from stvae import evaluate
from stvae import reproduce as rep
from stvae.data import DataConfig
from stvae.model import ModelConfig
from stvae.train import TrainConfig

# a tiny run that lasts long enough to be stopped while it trains
rep.PRESETS["cpu"] = TrainConfig(
    model=ModelConfig(), data=DataConfig(frames=3), steps=int(sys.argv[2]), batch_videos=2,
    checkpoint_every=50, log_every=1,
)
# probe sets of 64 videos (conftest's small_probe_sets), here too in the spawned runs
evaluate.PROBE_VIDEOS = 64
if __name__ == "__main__":  # spawned processes import this file too
    from stvae.cli import main

    sys.exit(main(["reproduce", "--out", sys.argv[1] + "/runs", "--report-dir",
                   sys.argv[1] + "/docs", "--parallel", "2", "--only",
                   "hierarchical-f4-beta1-seed0", "--only", "slow-f4-beta1-seed0"]))
"""
PAIR = ("hierarchical-f4-beta1-seed0", "slow-f4-beta1-seed0")


@pytest.mark.slow
def test_parallel_runs_train_in_their_own_processes_and_report_like_one(tmp_path, monkeypatch):
    tiny = TrainConfig(model=ModelConfig(), data=DataConfig(frames=3), steps=3, batch_videos=2)
    monkeypatch.setitem(rep.PRESETS, "cpu", tiny)
    lines = []
    kwargs = dict(out=tmp_path / "runs", report_dir=tmp_path / "docs", log=lines.append)
    rows = rep.reproduce(only=list(PAIR), parallel=2, **kwargs)
    assert sorted(r["name"] for r in rows) == sorted(PAIR)
    assert json.loads((tmp_path / "docs" / "bouncing-mnist-cpu.json").read_text()) == rows
    assert all(r["clip_frames"] == 3 and r["frames_seen"] == 3 * 2 * 3 for r in rows)
    folder = tmp_path / "runs" / "bouncing-mnist-cpu"
    pids = {line.split(" in process ")[1].split(";")[0] for line in lines if "in process" in line}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two processes, neither this one
    for name in PAIR:
        assert "step      3/3" in (folder / f"{name}.log").read_text()  # its output, apart
        assert (folder / name / "wall.json").exists()
    # the same weights as the run trained here, in this process, on as many threads as a
    # worker had (Adam's first steps follow the gradients' signs: other threads' rounding
    # flips some)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // 2))
    try:
        train(rep.cell_config("bouncing-mnist", "cpu", rep.grid()[0]), tmp_path / "here")
    finally:
        torch.set_num_threads(threads)
    here = load_run(tmp_path / "here")[0].state_dict()
    there = load_run(folder / PAIR[0])[0].state_dict()
    assert all(torch.equal(there[k], v) for k, v in here.items())
    # a second call finds everything scored and trains nothing
    assert rep.reproduce(only=list(PAIR), parallel=2, **kwargs) == rows
    with pytest.raises(StvaeError, match="parallel must be at least 1"):
        rep.reproduce(parallel=0, **kwargs)


@pytest.mark.slow
def test_sigterm_stops_every_parallel_run_at_a_checkpoint_and_the_command_resumes(tmp_path):
    script = tmp_path / "grid.py"
    script.write_text(PARALLEL_SCRIPT)
    cmd = [sys.executable, str(script), str(tmp_path), "200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    folder = tmp_path / "runs" / "bouncing-mnist-cpu"
    logs = [folder / f"{name}.log" for name in PAIR]
    deadline = time.time() + 240
    while time.time() < deadline and not all(p.exists() and "step " in p.read_text() for p in logs):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # to the grid's process only: it tells its runs
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, out  # as `stvae train` stopped so
    assert out.count("the same command resumes") == 2, out
    for name in PAIR:
        assert (folder / name / "checkpoint.safetensors").exists()
        assert not (folder / name / "model.safetensors").exists()
    assert not (tmp_path / "docs" / "bouncing-mnist-cpu.json").exists()
    since = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "docs" / "bouncing-mnist-cpu.json").read_text())
    assert sorted(r["name"] for r in rows) == sorted(PAIR)
    for name in PAIR:
        steps = [json.loads(x)["step"] for x in (folder / name / "metrics.jsonl").open()]
        assert steps[-1] == 200 and steps == sorted(set(steps))
        records = [json.loads(x) for x in (folder / name / "metrics.jsonl").open()]
        kept = [r["step"] for r in records if r["time"] < since]  # from before the stop
        assert kept and kept[-1] > 0  # continued from its checkpoint, not restarted


def test_a_row_names_the_gpu_it_trained_on():
    from stvae.report import _how

    row = {"device": "cuda", "precision": "bf16", "compiled": True, "version": "0.4.0"}
    assert _how(row) == "cuda bf16 compiled (stvae 0.4.0)"  # rows before the name was kept
    named = {**row, "device_name": "NVIDIA H100 80GB HBM3"}
    assert _how(named) == "NVIDIA H100 80GB HBM3 bf16 compiled (stvae 0.4.0)"
    assert "device_name" in rep.HOW


def test_a_continued_grid_run_keeps_the_data_stream_it_started_with(tmp_path, monkeypatch):
    run = rep.grid()[0]
    folder = tmp_path / "runs" / "bouncing-mnist-cpu" / run.name
    folder.mkdir(parents=True)
    cell = rep.cell_config("bouncing-mnist", "cpu", run)
    assert cell.data_on == "auto"
    started = cell.replace(data_on="device")  # begun where auto meant the device (a GPU)
    (folder / "config.json").write_text(json.dumps(started.to_dict()))
    seen = []
    monkeypatch.setattr(
        rep, "train", lambda c, d, resume: seen.append((c.data_on, resume)) or _finished(d)
    )
    monkeypatch.setattr(rep, "evaluate_run", lambda d: _scored())
    rep.reproduce(out=tmp_path / "runs", report_dir=tmp_path / "docs", only=[run.name])
    assert seen == [("device", True)]  # not auto, which is the host's stream on a CPU


def test_a_baseline_the_field_protocol_does_not_apply_to_is_shown_so():
    from stvae.report import field_table

    def vae_line(row):
        return next(x for x in field_table([row], list(ATTRIBUTES)) if x.startswith("| vae | 1 |"))

    rows = json.loads((Path(__file__).parents[1] / "docs/results/sprites-cpu.json").read_text())
    vae = next(r for r in rows if r["model"] == "vae")  # a real row, with or without the flag
    field = {k: v for k, v in vae["field"].items() if k != "not_applicable"}
    shown = [vae_line({**vae, "field": field})]
    action = field["static_from_prior"]["action_accuracy"]["mean"]
    assert f"| {action:.3f} |" in shown[0] and "not applicable" not in shown[0]
    shown = [vae_line({**vae, "field": {**field, "not_applicable": "the static set is unused"}})]
    assert shown[0].count("| not applicable ") == 4 + len(ATTRIBUTES)
    assert shown[0].endswith("| 1.000 | 1.000 | 1 |")  # the judge's accuracy, one run
