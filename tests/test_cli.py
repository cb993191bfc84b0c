"""The command line: every subcommand answers --help, bad input is one line and exit 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from stvae.checkpoint import read_json
from stvae.cli import main
from stvae.data import load_dataset

SUBCOMMANDS = ["train", "dataset", "evaluate", "figures", "reproduce"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        main([sub, "--help"])
    assert e.value.code == 0
    assert "usage: stvae " + sub in capsys.readouterr().out


def run(argv):
    """main()'s exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--steps", "-5"], "must be at least 1"),
        (["train", "--steps", "ten"], "expected a whole number"),
        (["train", "--beta", "0"], "must be a positive finite number"),
        (["train", "--beta", "-1"], "must be a positive finite number"),
        (["train", "--lr", "fast"], "expected a number"),
        (["train", "--model", "lstm"], "invalid choice"),
        (["train", "--device", "tpu"], "invalid choice"),
        (["train", "--data-workers", "-2"], "data-workers must be -1 (auto) or more"),
        (["train", "--data", "nowhere.npz"], "nowhere.npz: no such file"),
        (["train", "--data", "clip.mp4"], "--data must be"),
        (["train", "--features", "4", "--static-features", "4"], "static_features must be between"),
        (["train", "--model", "vae", "--sigma2", "0.5"], "sigma2 applies to the hierarchical and"),
        (["train", "--resume"], "--resume needs --out"),
        (["train", "--speed", "0.3,0.1"], "speed must be 0 <= low <= high <= 1"),
        (["train", "--beta", "inf"], "beta must be a positive finite number"),
        (["train", "--lr", "nan"], "lr must be a positive number"),
        (["dataset", "bouncing-mnist", "--speed", "0.5,0.2", "--out", "x.npz"], "speed must be 0"),
        (["train", "--speed", "fast"], "expected a number or LOW,HIGH"),
        (["train", "--data", "sprites", "--speed", "0.2"], "speed is an option of bouncing-mnist"),
        (["dataset", "chairs", "--mnist-dir", "d", "--out", "x.npz"], "chairs takes no option"),
        (["train", "--time-budget", "ten"], "a time budget looks like 10m, 90s, 1.5h or 600"),
        (["train", "--time-budget", "0"], "a time budget must be positive"),
        (["train", "--resume", "--out", "r", "--time-budget", "5m"], "r: nothing to resume"),
        (["train", "--channels", "2"], "invalid choice"),
        (["evaluate", "run", "--field-dynamics", "mean"], "invalid choice"),
        (["reproduce", "--limit", "-1"], "must be at least 0, got -1"),
        (["train", "--channels", "1", "--grayscale"], "not allowed with argument"),
        (["dataset", "bouncing-mnist", "--split", "val", "--out", "x.npz"], "invalid choice"),
        (["dataset", "bouncing-mnist", "--out", "x.npy"], "end in .npz"),
        (["dataset", "bouncing-mnist", "--videos", "0", "--out", "x.npz"], "must be at least 1"),
        (["train", "--steps", "1", "--out", "/proc/stvae-x"], "/proc/stvae-x: could not be"),
        (["train", "--steps", "1", "--out", "x.npz/run"], "x.npz/run: could not be created"),
        (["train", "--seed", "-1", "--out", "run"], "seed must be a whole number, 0 or more"),
        (["dataset", "sprites", "--seed", "-1", "--out", "x.npz"], "must be at least 0, got -1"),
        (["evaluate", "run", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
        (["curve", "run", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
        (["figures", "run", "--seed", "-1", "--out", "figs"], "must be at least 0, got -1"),
        (["train", "--frames", "1", "--out", "run"], "frames must be at least 2 for the hier"),
        (["train", "--walk-decay", "1.5"], "walk_decay must be in (0, 1]; got 1.5"),
        (["train", "--walk-decay", "nan"], "walk_decay must be in (0, 1]; got nan"),
        (["train", "--model", "vae", "--walk-decay", "0.9"], "walk_decay applies to the hier"),
        (["train", "--stepz", "3"], "stvae train: error: unrecognized arguments: --stepz 3"),
        (["evaluate", "run", "extra"], "stvae evaluate: error: unrecognized arguments: extra"),
        (["trian", "--steps", "3"], "stvae: error: argument command: invalid choice: 'trian'"),
    ],
)
def test_bad_input_is_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "x.npz/run" in argv:  # a file where a folder would be
        (tmp_path / "x.npz").write_text("a file")
    assert run(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], err
    left = [p for p in tmp_path.iterdir() if p.name != "x.npz"]
    assert left == []  # no run directory, no output file


def test_an_unwritable_grid_folder_is_one_line(tmp_path, capsys):
    argv = ["reproduce", "--out", "/proc/stvae-x", "--report-dir", str(tmp_path / "docs")]
    assert run([*argv, "--only", "vae-f4-beta1-seed0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/proc/stvae-x/bouncing-mnist-cpu: could not be created" in err[0]


def test_reproduce_with_limit_0_renders_the_report_and_trains_nothing(tmp_path, capsys):
    """A committed report's rows (chairs, from before rows recorded their frames) written
    again as they are, with what each run saw filled in from the grid's schedule."""
    import json

    rows = json.loads((Path(__file__).parents[1] / "docs/results/chairs-cpu.json").read_text())
    for row in rows:
        row.pop("clip_frames", None), row.pop("frames_seen", None)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "chairs-cpu.json").write_text(json.dumps(rows))
    argv = ["reproduce", "--dataset", "chairs", "--limit", "0", "--report-dir", str(docs)]
    assert main([*argv, "--out", str(tmp_path / "runs")]) == 0
    again = json.loads((docs / "chairs-cpu.json").read_text())
    assert [r["name"] for r in again] == [r["name"] for r in rows]
    assert all(r["frames_seen"] == 2400 * 16 * 16 and r["clip_frames"] == 16 for r in again)
    assert "| 0.61 | 16 |" in (docs / "chairs-cpu.md").read_text()
    assert not any((tmp_path / "runs" / "chairs-cpu").iterdir())  # nothing trained


def test_a_config_json_that_is_not_an_object_is_one_line(tmp_path, capsys):
    for text in ("[1, 2]", '"hello"', "3"):
        (tmp_path / "config.json").write_text(text)
        assert run(["evaluate", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"stvae evaluate: error: {tmp_path}/config.json: not a TrainConfig "
                       "(a JSON object expected)"]  # fmt: skip


def test_a_seed_below_0_is_refused_by_every_library_call_that_takes_one(tmp_path):
    """numpy's generators take no negative seed: each entry point says so in our words
    before it reads or writes anything (figures: no output folder)."""
    from stvae import StvaeError
    from stvae.config import TrainConfig
    from stvae.curve import curve_run
    from stvae.data import generate
    from stvae.evaluate import evaluate_run
    from stvae.figures import make_figures

    run_dir = next((Path(__file__).resolve().parents[1] / "pretrained").iterdir())
    calls = [
        lambda: TrainConfig(seed=-1),
        lambda: generate("sprites", 2, 4, -1),
        lambda: generate("sprites", 2, 4, [3, -1]),
        lambda: generate("sprites", 2, 4, 1.5),
        lambda: evaluate_run(run_dir, seed=-1, out=tmp_path / "eval.json"),
        lambda: curve_run(tmp_path, seed=-2),
        lambda: make_figures(run_dir, out=tmp_path / "figs", seed=-1),
    ]
    for call in calls:
        with pytest.raises(StvaeError, match=r"seed must be a whole number, 0 or more; got "):
            call()
    assert list(tmp_path.iterdir()) == []
    assert generate("sprites", 2, 4, [3, 0])["videos"].shape[:2] == (2, 4)


def test_scoring_too_few_videos_says_so_in_one_line(tmp_path, capsys):
    pretrained = Path(__file__).resolve().parents[1] / "pretrained"
    run_dir = next(pretrained.iterdir())
    clips = tmp_path / "four.npz"
    assert run(["dataset", "bouncing-mnist", "--videos", "4", "--out", str(clips)]) == 0
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert run(["evaluate", str(run_dir), "--data", str(clips), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too few videos to score" in err[0], err
    assert not out.exists()


def test_corrupt_data_file_no_run_dir(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    out = tmp_path / "run"
    assert main(["train", "--data", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.npz" in err
    assert not out.exists()


def test_dataset_command(tmp_path, capsys):
    out = tmp_path / "d.npz"
    argv = ["dataset", "bouncing-mnist", "--videos", "5", "--frames", "3", "--seed", "1"]
    assert main([*argv, "--split", "test", "--out", str(out)]) == 0
    d = load_dataset(out)
    assert d["videos"].shape == (5, 3, 64, 64)
    assert "wrote" in capsys.readouterr().out
    colour = tmp_path / "s.npz"
    assert main(["dataset", "sprites", "--videos", "4", "--frames", "8", "--out", str(colour)]) == 0
    d = load_dataset(colour)
    assert d["videos"].shape == (4, 8, 64, 64, 3) and d["attributes"].shape == (4, 4)
    assert "videos [4, 8, 64, 64, 3] uint8" in capsys.readouterr().out
    field = tmp_path / "f.npz"  # the field design's own clip length when none is given
    assert main(["dataset", "sprites-field", "--videos", "2", "--out", str(field)]) == 0
    assert load_dataset(field)["videos"].shape == (2, 8, 64, 64, 3)
    plain = tmp_path / "p.npz"
    assert main(["dataset", "sprites", "--videos", "2", "--out", str(plain)]) == 0
    assert load_dataset(plain)["videos"].shape == (2, 16, 64, 64, 3)


def test_train_command_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--steps",
        "3",
        "--batch-videos",
        "2",
        "--frames",
        "4",
        "--no-compile",
        "--out",
        str(out),
    ]
    assert main([*argv, "--no-check"]) == 0
    text = capsys.readouterr().out
    assert f"run {out}: 3 steps" in text and "model.safetensors" in text
    # the killed command retried with its flags repeated: nothing differs, so it resumes
    assert main([*argv[:2], "5", *argv[3:], "--resume"]) == 0
    text = capsys.readouterr().out
    assert "5 steps" in text and "factor check" in text and "static label" in text
    # a finished run moved to a new machine without its final weights: resuming it writes
    # them, the same bytes, and says that no step was taken
    weights = load_file(out / "model.safetensors")
    (out / "model.safetensors").unlink()
    assert main([*argv[:2], "5", *argv[3:], "--resume", "--no-check"]) == 0
    text = capsys.readouterr().out
    assert "resumed at step 5, 5 steps" in text and "no step taken in this call" in text
    assert "final (nats/frame)" not in text
    again = load_file(out / "model.safetensors")
    assert again.keys() == weights.keys()
    assert all(torch.equal(again[k], weights[k]) for k in weights)
    assert main(["train", "--resume", "--out", str(out), "--beta", "2", "--frames", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("cannot change model.beta (run: 1.0, given: 2.0)"), err
    # --preset on resume: the run's own preset retried is accepted; another that would
    # train another model is refused, naming what differs, and the run is left as it was
    assert main([*argv[:2], "5", *argv[3:], "--resume", "--preset", "cpu", "--no-check"]) == 0
    assert "resumed at step 5" in capsys.readouterr().out
    kept = (out / "metrics.jsonl").read_bytes()
    assert main(["train", "--resume", "--out", str(out), "--preset", "paper"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "preset 'paper' differs from it in " in err, err
    assert "lr_decay_every (run: 800, preset: 10000)" in err and "steps" not in err, err
    assert (out / "metrics.jsonl").read_bytes() == kept


def test_a_run_on_relative_paths_is_read_from_any_folder(tmp_path, monkeypatch, capsys):
    """config.json records --data and --mnist-dir absolute: the run's evaluate, figures
    and --resume read them from another working folder; a recorded folder that is gone
    still lets the run load (encode --data), and reading it says that it is missing."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "clips").mkdir(parents=True)
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # a folder of videos, each a folder of frame images
        (here / "clips" / f"v{i}").mkdir()
        for t in range(8):
            frame = (rng.random((64, 64)) * 255).astype(np.uint8)
            Image.fromarray(frame).save(here / "clips" / f"v{i}" / f"{t:03d}.png")
    monkeypatch.chdir(here)
    argv = ["train", "--data", "clips", "--steps", "2", "--batch-videos", "2", "--frames", "4"]
    assert main([*argv, "--no-compile", "--no-check", "--out", "run"]) == 0
    data = read_json(here / "run" / "config.json")["data"]
    assert data["source"] == str(here / "clips")
    monkeypatch.chdir(elsewhere)
    run_dir = str(here / "run")
    assert main(["evaluate", run_dir]) == 0, capsys.readouterr().err
    assert main(["train", "--resume", "--out", run_dir, "--steps", "3", "--no-check"]) == 0
    assert "3 steps" in capsys.readouterr().out
    (here / "clips").rename(here / "moved")
    npz = here / "clips.npz"
    np.savez(npz, videos=rng.random((2, 4, 64, 64), dtype=np.float32))
    assert main(["encode", run_dir, "--data", str(npz), "--out", "f.npz"]) == 0
    assert (elsewhere / "f.npz").is_file()
    capsys.readouterr()
    assert main(["evaluate", run_dir]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{here / 'clips'}: no such file")
    # the digits' folder too (checked here without IDX files: only what is recorded)
    from stvae.data import DataConfig

    assert DataConfig(mnist_dir="mnist").mnist_dir == str(elsewhere / "mnist")


def test_a_relative_data_path_recorded_before_is_refused_naming_the_file(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", "--steps", "1", "--batch-videos", "2", "--frames", "4", "--no-compile"]
    assert main([*argv, "--no-check", "--out", str(run_dir)]) == 0
    config = read_json(run_dir / "config.json")
    config["data"]["source"] = "clips-of-another-folder"  # as 0.5 recorded `--data clips`
    (run_dir / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"stvae evaluate: error: {run_dir / 'config.json'}: --data must be")


def test_a_budgeted_command_retried_with_resume_is_not_refused(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--time-budget", "2s", "--batch-videos", "2", "--frames", "4"]
    argv += ["--no-compile", "--no-check", "--out", str(out)]
    assert main(argv) == 0
    chosen = read_json(out / "config.json")["steps"]
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert f"{chosen} steps" in capsys.readouterr().out
    assert read_json(out / "config.json")["steps"] == chosen


def test_npz_that_is_not_a_zip_archive_says_so(tmp_path, capsys):
    bad = tmp_path / "text.npz"
    bad.write_text("videos,labels\n1,2\n")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "not a zip archive" in err and "pickled" not in err


@pytest.mark.parametrize("module", [pytest.param("stvae.cli", marks=pytest.mark.slow), "stvae"])
def test_entry_point_has_no_traceback(tmp_path, module):
    proc = subprocess.run(
        [sys.executable, "-m", module, "train", "--data", str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"stvae train: error: {tmp_path / 'x.npy'}: no such file"
    np.testing.assert_equal(list(tmp_path.iterdir()), [])


def test_evaluate_and_encode_commands(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = [
        "train",
        "--steps",
        "2",
        "--batch-videos",
        "2",
        "--frames",
        "4",
        "--no-check",
        "--no-compile",
    ]
    assert main([*argv, "--out", str(run_dir)]) == 0
    data = tmp_path / "d.npz"
    assert (
        main(
            [
                "dataset",
                "bouncing-mnist",
                "--videos",
                "12",
                "--frames",
                "4",
                "--split",
                "test",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "d-score (eq 19)" in out and "static accuracy (Tables 2-3)" in out
    assert "static target from the temporal features centred per video" in out
    assert (run_dir / "eval.json").is_file()
    feats = tmp_path / "f.npz"
    assert main(["encode", str(run_dir), "--data", str(data), "--out", str(feats)]) == 0
    with np.load(feats) as f:
        assert f["mu"].shape == f["logvar"].shape == (12, 4, 4)
        assert int(f["static_features"]) == 2 and f["static_labels"].shape == (12,)
    assert run(["encode", str(run_dir), "--data", str(data), "--out", str(tmp_path / "f.txt")]) == 2
    assert run(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_every_training_field_has_its_flag_and_every_flag_its_field():
    import argparse

    from stvae.cli import build_parser
    from stvae.config import train_fields, train_flags

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest for a in sub.choices["train"]._actions} - {"help"}
    flags = train_flags()
    assert set(flags.values()) == set(train_fields())  # one flag per field, none left out
    assert set(flags) <= dests
    assert dests - set(flags) == {"preset", "out", "resume", "no_check"}  # not config fields
    # each flag is made from its field's metadata: its help, and its choices where it has them
    by_option = {o: a for a in sub.choices["train"]._actions for o in a.option_strings}
    for dest, name in flags.items():
        meta = train_fields()[name].metadata
        action = by_option[f"--{dest.replace('_', '-')}"]
        text = meta["help"]() if callable(meta["help"]) else meta["help"]
        assert action.help.endswith(text), name
        if "choices" in meta:
            choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
            assert tuple(action.choices) == tuple(choices), name
    assert by_option["--grayscale"].const == 1 and by_option["--grayscale"].dest == "channels"


def test_resume_takes_the_original_command_with_data_on_auto(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--steps", "2", "--batch-videos", "2", "--frames", "4", "--no-compile"]
    argv += ["--data-on", "auto", "--no-check", "--out", str(out)]
    assert main(argv) == 0
    assert read_json(out / "config.json")["data_on"] == "host"  # auto on a CPU, recorded
    capsys.readouterr()
    assert main([*argv, "--resume", "--steps", "3"]) == 0, capsys.readouterr().err
    assert "resumed at step 2, 3 steps" in capsys.readouterr().out
    assert main([*argv, "--resume", "--data-on", "device"]) == 2  # another stream: refused
    assert "cannot change data_on (run: 'host', given: 'device')" in capsys.readouterr().err
