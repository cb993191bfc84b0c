"""Learning curves over weight snapshots (stvae curve, issue 25)."""

import json
import shutil
from pathlib import Path

import pytest

from stvae import curve as curve_module
from stvae import evaluate as evaluate_module
from stvae.cli import main
from stvae.curve import CURVE_FILES, curve_report, curve_run, eval_scores, snapshots
from stvae.data import DataConfig
from stvae.errors import StvaeError
from stvae.evaluate import evaluate_run
from stvae.model import ModelConfig
from stvae.result import EvalResult
from stvae.train import TrainConfig, snapshot_path, train

TINY = TrainConfig(
    model=ModelConfig(features=4),
    data=DataConfig(frames=4),
    steps=4,
    batch_videos=2,
    checkpoint_every=2,
    log_every=2,
    snapshot_every=2,
)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A tiny run with snapshots at steps 2 and 4, its curve and its eval.json; while the
    tests that use it run, curve and evaluate score on probe sets of 64 videos instead of
    256 (conftest's small_probe_sets, for a whole module): these tests compare the two
    commands' numbers with each other, not with any value."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "PROBE_VIDEOS", 64)
        run = tmp_path_factory.mktemp("curve") / "run"
        train(TINY, run)
        curve = curve_run(run, quiet=True)
        ev = evaluate_run(run)
        yield run, curve, ev


def strip(point):
    return {k: v for k, v in point.items() if k != "eval"}


def test_every_snapshot_is_scored_and_the_last_point_is_evaluate_of_the_final_weights(scored):
    run, curve, ev = scored
    assert [p["step"] for p in curve["points"]] == [2, 4]
    assert [p["frames"] for p in curve["points"]] == [2 * 8, 4 * 8]  # 2 videos x 4 frames
    last = curve["points"][-1]
    assert last["eval"] == ev.to_dict()  # the final snapshot holds the final weights
    assert last["d_score_rbf"] == ev.d_score("rbf") and last["d_score"] == ev.d_score("linear")
    assert last["static_accuracy_rbf"] == ev.static_accuracy("rbf")
    rbf = ev.first("rbf").disentanglement
    assert last["temporal_from_temporal_rbf"] == rbf.temporal_acc_from_temporal
    assert last["elbo_negative_elbo"] == ev.elbo["negative_elbo"]
    # the authors' protocol fits on training digits: held out, it is evaluate's own number
    assert last["static_held_out_rbf"] == ev.static_accuracy("rbf")
    assert {"static_train", "static_train_rbf", "static_held_out"} <= set(last)
    assert curve["points"][0]["d_score_rbf"] != last["d_score_rbf"]  # other weights
    on_disk = json.loads((run / CURVE_FILES["json"]).read_text())
    assert on_disk == json.loads(json.dumps(curve))
    assert (run / CURVE_FILES["png"]).stat().st_size > 10_000
    assert any(p.name.startswith("events") for p in (run / "tb").iterdir())


@pytest.mark.slow
def test_scored_snapshots_are_not_scored_again_and_rescoring_gives_the_same(scored, monkeypatch):
    run, curve, _ = scored
    calls = []
    real = curve_module.evaluate_model

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(curve_module, "evaluate_model", counting)
    again = curve_run(run, quiet=True)
    assert calls == [] and again == json.loads(json.dumps(curve))
    # from nothing, the same snapshots give the same numbers
    (run / CURVE_FILES["json"]).unlink()
    fresh = curve_run(run, quiet=True)
    assert len(calls) == 2
    assert [strip(p) for p in fresh["points"]] == [strip(p) for p in curve["points"]]
    # a new snapshot (the run continued) is scored alone
    train(TINY.replace(steps=6), run, resume=True)
    assert [s for s, _ in snapshots(run)] == [2, 4, 6]
    calls.clear()
    longer = curve_run(run, quiet=True)
    assert len(calls) == 1 and [p["step"] for p in longer["points"]] == [2, 4, 6]
    assert [strip(p) for p in longer["points"][:2]] == [strip(p) for p in curve["points"]]


@pytest.mark.slow
def test_probe_spread_seed_0_is_the_curves_point_and_other_seeds_other_sets(scored):
    from stvae.curve import probe_spread

    run, curve, _ = scored
    spread = probe_spread(run, [4, 2], seeds=2)
    assert list(spread) == [4, 2] and all(len(points) == 2 for points in spread.values())
    by_step = {p["step"]: p for p in curve["points"]}
    for step, (first, second) in spread.items():
        acc4 = {k: first.pop(k) for k in ("static_all_features", "static_all_features_rbf")}
        assert all(0 <= v <= 1 for v in acc4.values()) and "static_all_features" in second
        assert {"d_score_rbf", "d_score", "static_accuracy_rbf", "elbo_kl"} <= set(first)
        assert first == {k: by_step[step][k] for k in first}  # the curve's own numbers
        assert second["d_score_rbf"] != first["d_score_rbf"]  # other videos, other split
    with pytest.raises(StvaeError, match="no snapshot at step 3 "):
        probe_spread(run, [2, 3])
    with pytest.raises(StvaeError, match="seeds must be at least 1"):
        probe_spread(run, [2], seeds=0)


@pytest.mark.slow
def test_table_2_acc_4_reads_all_features_on_the_sets_and_split_of_acc_2(scored, monkeypatch):
    """Acc 4 is the probe of Acc 2 (eval.json's static accuracy) with every feature in:
    the same pipeline asked for the static features only gives evaluate's Acc 2 exactly."""
    from stvae.curve import probe_spread

    run, curve, _ = scored
    asked = []
    real = curve_module.static_accuracy

    def static_only(features, labels, static_features, *rest):
        asked.append((features.shape[-1], static_features))
        return real(features, labels, 2, *rest)  # the static features of TINY's 2 + 2

    monkeypatch.setattr(curve_module, "static_accuracy", static_only)
    (point,) = probe_spread(run, [4], seeds=1)[4]
    assert asked == [(4, 0), (4, 0)]  # both probes, all four features
    assert point["static_all_features"] == curve["points"][-1]["static_accuracy"]
    assert point["static_all_features_rbf"] == curve["points"][-1]["static_accuracy_rbf"]


def test_a_run_without_snapshots_is_refused_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    train(TINY.replace(steps=1, snapshot_every=0), run)
    with pytest.raises(StvaeError, match="no snapshots to score"):
        curve_run(run)
    assert main(["curve", str(run)]) == 2  # the command line, in this process
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--snapshot-every" in err
    assert main(["curve", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_damaged_snapshot_is_refused_by_name(tmp_path):
    run = tmp_path / "run"
    train(TINY.replace(steps=2), run)
    snap = snapshot_path(run, 2)
    snap.write_bytes(snap.read_bytes()[:100])
    with pytest.raises(StvaeError, match="step-000002.safetensors: corrupt"):
        curve_run(run)
    assert not (run / CURVE_FILES["json"]).exists()


@pytest.mark.slow
def test_the_report_has_every_point_beside_the_papers_numbers(scored, tmp_path):
    from stvae.curve import _report_markdown, _trained_on, curve_report

    run, _, _ = scored
    curve = json.loads((run / CURVE_FILES["json"]).read_text())  # as the tests above left it
    report = curve_report(run, tmp_path / "docs" / "paper-cpu", commit="abc1234")
    assert [p["step"] for p in report["points"]] == [p["step"] for p in curve["points"]]
    assert all("eval" not in p for p in report["points"])
    assert report["paper"] == {
        "d_score": 6.71,
        "static_accuracy": 0.71,
        "static_column": "Table 2 Acc 2",
    }
    assert report["finished"] and report["steps_done"] == curve["points"][-1]["step"]
    md = (tmp_path / "docs" / "paper-cpu.md").read_text()
    first = curve["points"][0]
    assert f"| 2 | 0.00 | 0.001 | {first['d_score_rbf']:.3f} |" in md
    assert "| paper | 30.72 | | 6.71 |" in md and "abc1234" in md
    hours = f"{report['loop_hours']:.2f} h in the training loop"
    assert f"The run is finished, {hours} (" in md  # not "so far" once it has ended
    # which machine trained which steps, from the run's segments.jsonl
    segments = report["segments"]
    assert segments[0]["start_step"] == 0
    for r in segments:  # the fixture's run may have been resumed: one line a process
        assert r["precision"] in ("fp32", "bf16")
    first = segments[0]
    assert f"Trained from step 0 on {first['machine']} ({first['precision']}, " in md
    # processes in a row on one machine are one stretch, with the steps resumed at; a
    # change of machine or precision starts the next
    same = {"machine": first["machine"], "precision": first["precision"], "threads": 2}
    other = {**same, "machine": "Other CPU", "threads": 1}
    stretches = [{**same, "start_step": 0}, {**same, "start_step": 392}]
    stretches += [{**same, "start_step": 400}, {**other, "start_step": 900}]
    stretches += [{**same, "start_step": 1200}]
    said = f"{same['machine']} ({same['precision']}, 2 threads"
    assert _trained_on(stretches) == (
        f" Trained from step 0 on {said}; resumed at steps 392, 400), from step 900 on "
        f"Other CPU ({same['precision']}, 1 thread), from step 1,200 on {said})"
        " (segments.jsonl)."
    )
    assert _trained_on(stretches[:2]).endswith("; resumed at step 392) (segments.jsonl).")
    # a line that does not parse ends what the report names, rather than failing it
    copy = shutil.copytree(run, tmp_path / "copy")  # the fixture's run left as it is
    with open(copy / "segments.jsonl", "a") as f:
        f.write('{"start_step": 9\n{"start_step"')
    assert curve_report(copy, tmp_path / "again")["segments"] == segments
    going = _report_markdown({**report, "finished": False, "steps_done": 1}, Path("x"))
    assert f"in progress: step 1 of {report['steps']:,}, {hours} so far (" in going
    assert "static from static, held-out (RBF)" in md and "no static factor" not in md
    # a model without a static factor reads the static label from all its features
    config = {**report["config"], "model": {**report["config"]["model"], "kind": "slow"}}
    slow = _report_markdown({**report, "config": config}, Path("x"))
    assert "The slow model has no static factor" in slow and "static from static" not in slow
    assert "| static from all features, held-out (RBF) |" in slow
    assert (tmp_path / "docs" / "paper-cpu.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "docs" / "paper-cpu.json").read_text()) == json.loads(
        json.dumps(report)
    )


def test_the_curve_plot_of_a_model_without_a_static_factor_says_all_features(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from stvae.curve import plot_curve

    titles = []
    real = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda ax, t, **k: titles.append(t) or real(ax, t, **k))
    points = [{"step": 2, "frames": 16, "d_score_rbf": 1.5, "static_held_out_rbf": 0.3}]
    for kind, words in (("hierarchical", "from the static factor"), ("slow", "from all features")):
        titles.clear()
        config = TINY.replace(**{"model.kind": kind})
        plot_curve({"points": points}, tmp_path / f"{kind}.png", config)
        assert f"static label {words}" in titles, titles
        assert (tmp_path / f"{kind}.png").stat().st_size > 5_000


def test_a_judged_curve_has_the_fields_columns_in_its_points_plot_and_report(
    tmp_path, monkeypatch, small_probe_sets
):
    """`stvae curve --judge` on sprites: each point carries the field's protocol and the
    judge on reconstructions, as its eval result has them; the plot gains their panel and
    the report their table. (The judge trains 4 steps here: plumbing, not its values.)"""
    from matplotlib.axes import Axes

    from stvae import judge

    monkeypatch.setattr(judge, "JUDGE_STEPS", 4)
    titles = []
    real = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda ax, t, **k: titles.append(t) or real(ax, t, **k))
    config = TINY.replace(**{"data.source": "sprites-field", "steps": 2, "model.channels": 3})
    run = tmp_path / "run"
    train(config, run)
    assert main(["curve", str(run), "--judge", "--report", str(tmp_path / "rep")]) == 0
    curve = json.loads((run / CURVE_FILES["json"]).read_text())
    assert curve["judge"] is True
    (point,) = curve["points"]
    field = point["eval"]["field"]
    assert point["field_action"] == field["static_from_prior"]["action_accuracy"]["mean"]
    assert point["field_IS"] == field["static_from_prior"]["IS"]["mean"]
    heads = [point[f"field_{a}"] for a in ("skin", "hair", "top", "trousers")]
    assert point["field_attributes"] == pytest.approx(sum(heads) / 4)
    assert point["recon_action"] == point["eval"]["swaps"]["reconstruction_action"]
    assert point["swap_action_leak"] == point["eval"]["swaps"]["leak_action"]
    # the action read from the static code: the model's division, the same for each attribute
    heads = point["eval"]["attributes"].values()
    found = {a["disentanglement_rbf"]["temporal_acc_from_static"] for a in heads}
    assert [point["temporal_from_static_rbf"]] == list(found)
    assert point["static_held_out_rbf"] == point["static_accuracy_rbf"]  # the attributes' mean
    # the attributes read from the temporal factor (and, linear, from its per-video means
    # and from it centred), each the mean over the attributes
    for key, get in (
        (
            "static_from_temporal_rbf",
            lambda a: a["disentanglement_rbf"]["static_acc_from_temporal"],
        ),
        ("static_from_temporal", lambda a: a["disentanglement"]["static_acc_from_temporal"]),
        ("static_in_temporal_video_mean", lambda a: a["static_in_temporal"]["video_mean"]),
        ("static_in_temporal_centred", lambda a: a["static_in_temporal"]["centred"]),
    ):
        assert point[key] == pytest.approx(sum(map(get, heads)) / 4), key
    assert "the field's protocol (judged)" in titles
    md = (tmp_path / "rep.md").read_text()
    assert "| step | frames (M) | action | IS | skin | hair | top | trousers |" in md
    assert "| swaps: action of the dynamics' clip | swaps: action of the static code's clip |" in md
    # a point scored before these columns existed has them in the report, from its eval
    old = {k: v for k, v in point.items() if k not in ("swap_action", "temporal_from_static_rbf")}
    (run / CURVE_FILES["json"]).write_text(json.dumps({**curve, "points": [old]}))
    report = curve_report(run, tmp_path / "rep2")
    assert report["points"][0]["swap_action"] == point["eval"]["swaps"]["action"]
    assert report["points"][0]["temporal_from_static_rbf"] == point["temporal_from_static_rbf"]
    # the whole field's table of the last point: both directions, chance, fallback, judge
    assert report["field"]["step"] == point["step"] and "static_set" not in report["field"]
    acc, fb = field["static_from_prior"]["action_accuracy"], field["fallback"]["reconstruction"]
    table = (tmp_path / "rep2.md").read_text().split("| clips judged |")[1].split("\n\n")[0]
    rows = table.splitlines()
    assert len(rows) == 2 + 1 + 4 + 5  # header rule, action, attributes, reconstructions
    assert rows[2].startswith(
        f"| static code from the prior | action | {acc['mean']:.3f} ± {acc['sd']:.3f} "
        f"| {field['chance']['action']:.3f} |"
    )
    recon = field["reconstruction"]["skin"]
    assert f"| reconstructions | skin | {recon:.3f} | {field['chance']['skin']:.3f} " in rows[-4]
    assert f"| {fb['skin']:.3f}" in rows[-4]
    # a baseline's division is chosen per attribute: no one temporal score to report
    for a in old["eval"]["attributes"].values():
        a["disentanglement_rbf"]["division"] = a["disentanglement"]["division"] = "best of 254"
    baseline = eval_scores(EvalResult.from_dict(old["eval"]))
    assert not {"temporal_from_static_rbf", "static_from_temporal_rbf"} & set(baseline)
    (run / CURVE_FILES["json"]).write_text(json.dumps(curve))
    # without --judge a judged curve is kept as it is; scored afresh, it has none of it
    assert curve_run(run, quiet=True) == curve
    (run / CURVE_FILES["json"]).unlink()
    plain = curve_run(run, quiet=True)
    assert "judge" not in plain and "field_action" not in plain["points"][0]


def test_the_report_sets_a_grids_runs_of_its_cell_beside_the_curve(scored, tmp_path, capsys):
    """`stvae curve --report --beside GRID.json`: the grid's runs of the run's beta and
    size join the report's tables with their own numbers (others are left out), the
    temporal factor's static knowledge gets its table, and a point scored before a
    headline key existed gets it from its evaluate result."""
    run, _, _ = scored
    curve_path = run / CURVE_FILES["json"]
    kept = curve_path.read_text()
    row = {
        "name": "vae-f4-beta1-seed0",
        "model": "vae",
        "beta": 1.0,
        "features": 4,
        "frames_seen": 614400,
        "d_score_rbf": 2.0944,
        "d_score": 2.6283,
        "static_accuracy_rbf": 0.9871,
        "static_accuracy": 0.907,
        "accuracies_rbf": {
            "static_acc_from_temporal": 0.226,
            "temporal_acc_from_static": 0.6456,
            "temporal_acc_from_temporal": 0.6401,
        },
        "accuracies": {"static_acc_from_temporal": 0.1306},
        "negative_elbo": 533.38,
        "static_in_temporal": {"centred": 0.1055, "video_mean": 0.1406},
    }
    other = {**row, "name": "vae-f4-beta2-seed0", "beta": 2.0}
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([row, other, {**row, "name": "vae-f8-beta1-seed0", "features": 8}]))
    old = json.loads(kept)  # as a curve scored before the leak's keys were headline keys
    for p in old["points"]:
        for key in ("static_in_temporal_video_mean", "static_in_temporal_centred"):
            p.pop(key)
    curve_path.write_text(json.dumps(old))
    try:
        stem = tmp_path / "rep"
        assert main(["curve", str(run), "--report", str(stem), "--beside", str(grid)]) == 0
    finally:
        curve_path.write_text(kept)
    report = json.loads(stem.with_suffix(".json").read_text())
    (mine,) = report["beside"]["runs"]
    assert report["beside"]["report"] == "grid.json"
    assert mine == {
        "name": "vae-f4-beta1-seed0",
        "model": "vae",
        "frames": 614400,
        "d_score_rbf": 2.0944,
        "d_score": 2.6283,
        "static_held_out_rbf": 0.9871,
        "static_accuracy": 0.907,
        "temporal_from_temporal_rbf": 0.6401,
        "temporal_from_static_rbf": 0.6456,
        "static_from_temporal_rbf": 0.226,
        "elbo_negative_elbo": 533.38,
        "static_from_temporal": 0.1306,
        "static_in_temporal_video_mean": 0.1406,
        "static_in_temporal_centred": 0.1055,
    }
    md = stem.with_suffix(".md").read_text()
    cells = "2.094 | 2.628 | — | 0.987 | 0.907 | 0.640 | 0.646 | 0.226 | 533.4"
    assert f"| vae-f4-beta1-seed0 | 0.61 | | {cells} |" in md
    assert "vae-f4-beta2-seed0" not in md and "vae-f8-beta1-seed0" not in md
    assert "| vae-f4-beta1-seed0 | 0.61 | 0.131 | 0.141 | 0.105 |" in md
    for p in report["points"]:  # the leak's split, from the point's own evaluate result
        point = next(q for q in json.loads(kept)["points"] if q["step"] == p["step"])
        leak = point["eval"]["static_in_temporal"]
        assert p["static_in_temporal_video_mean"] == leak["video_mean"]
        assert p["static_from_temporal"] == point["static_from_temporal"]
        assert (
            f"| {p['step']:,} | {p['frames'] / 1e6:.2f} | {p['static_from_temporal']:.3f} | "
            f"{leak['video_mean']:.3f} | {leak['centred']:.3f} |"
        ) in md
    # a file that is not a grid report is refused in one line, before any scoring
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    before = curve_path.stat().st_mtime_ns
    assert main(["curve", str(run), "--report", str(tmp_path / "b"), "--beside", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a grid report" in err
    assert main(["curve", str(run), "--beside", str(grid)]) == 2
    assert "--beside goes with --report" in capsys.readouterr().err
    assert curve_path.stat().st_mtime_ns == before and not (tmp_path / "b.md").exists()


def test_the_report_sets_another_runs_curve_beside_it_at_the_same_frames(
    scored, tmp_path, capsys, monkeypatch
):
    """`stvae curve --report --against CURVE.json`: another run's curve report on the same
    data joins the report as a table of both runs at the frames both were scored at, named
    by model kind, and as STEM-against.png; anything else is refused in one line before
    any scoring."""
    from stvae.curve import curve_report

    run, _, _ = scored
    mine = curve_report(run, tmp_path / "mine")
    other = json.loads((tmp_path / "mine.json").read_text())
    other["config"]["model"]["kind"] = "slow"
    other["run"] = "slow-run"
    for p in other["points"]:
        p["d_score_rbf"] += 1.0
        p.pop("static_from_temporal_rbf")  # a column one run lacks is left out
    other["points"] = other["points"][1:]  # one point fewer: only the frames both have
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(other))
    stem = tmp_path / "rep"
    assert main(["curve", str(run), "--report", str(stem), "--against", str(path)]) == 0
    report = json.loads(stem.with_suffix(".json").read_text())
    assert report["against"]["run"] == "slow-run" and report["against"]["model"] == "slow"
    assert report["points"] == mine["points"]
    md = stem.with_suffix(".md").read_text()
    assert "## Beside slow-run (slow, 4 features, beta 1)" in md
    assert "| eq 19, RBF: hierarchical | eq 19, RBF: slow | static, held-out (RBF): " in md
    assert "static from temporal (RBF): slow" not in md
    rows = [
        ln
        for ln in md.split("## Beside")[1].splitlines()
        if ln.startswith("| ") and ln[2].isdigit()
    ]
    assert len(rows) == len(mine["points"]) - 1
    for row, p in zip(rows, mine["points"][1:], strict=True):
        a, b = p["d_score_rbf"], p["d_score_rbf"] + 1.0
        held = p["static_held_out_rbf"]
        start = f"| {p['step']:,} | {p['frames'] / 1e6:.2f} | {a:.3f} | {b:.3f} | "
        assert row.startswith(start + f"{held:.3f} | {held:.3f} |"), row
    assert stem.with_name("rep-against.png").stat().st_size > 10_000
    # refused in one line, before any scoring: not a curve report, a run on other data,
    # and --against without --report
    curve_path = run / CURVE_FILES["json"]
    before = curve_path.stat().st_mtime_ns
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"name": "x"}]))
    chairs = tmp_path / "chairs.json"
    other["config"]["data"] = {"source": "chairs", "frames": 4}
    chairs.write_text(json.dumps(other))
    capsys.readouterr()
    monkeypatch.setattr(curve_module, "curve_run", lambda *a, **k: pytest.fail("scored first"))
    for bad, message in ((grid, "not a curve report"), (chairs, "a run on chairs, not on")):
        argv = ["curve", str(run), "--report", str(tmp_path / "b"), "--against", str(bad)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert main(["curve", str(run), "--against", str(path)]) == 2
    assert "--against goes with --report" in capsys.readouterr().err
    assert curve_path.stat().st_mtime_ns == before and not (tmp_path / "b.md").exists()
