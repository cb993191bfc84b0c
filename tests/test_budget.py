"""Training to a time budget (stvae.budget) and the progress a person can follow."""

import json

import pytest
import torch

from stvae import StvaeError
from stvae.budget import UNTIL_CHOSEN, choose_steps, measured, parse_duration
from stvae.data import DataConfig
from stvae.model import ModelConfig
from stvae.runlog import MetricsLog
from stvae.train import RUN_FILES, TrainConfig, load_run, train

TINY = TrainConfig(
    model=ModelConfig(features=4), data=DataConfig(frames=4), batch_videos=2, log_every=5
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600), ("90s", 90), ("1.5h", 5400), ("600", 600), ("2min", 120)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "-5m", "0", "5d"])
def test_bad_durations_are_user_errors(text):
    with pytest.raises(StvaeError, match="time budget"):
        parse_duration(text)


def test_steps_fill_the_budget_and_the_schedule_scales_as_the_preset():
    # 600 s budget, 60 s spent (setup, compiling, timing) with 23 steps done, 4 steps/s
    c = choose_steps(600.0, 60.0, 23, 4.0, steps=2400, lr_decay_every=800)
    assert c.steps == 23 + 540 * 4 and c.fits
    assert c.lr_decay_every == round(c.steps / 3)  # the cpu preset decays every third
    # a budget already spent: no more steps, and no decay before a step already taken
    c = choose_steps(10.0, 30.0, 23, 4.0, steps=2400, lr_decay_every=800)
    assert c.steps == 23 and not c.fits and c.lr_decay_every >= 24
    assert measured(600.0, 20, 30.0) and not measured(600.0, 19, 30.0)
    assert not measured(600.0, 100, 29.0) and measured(60.0, 20, 3.0)  # 5% of a short budget


@pytest.mark.slow
def test_a_budget_run_records_its_steps_and_a_rerun_from_config_json_is_exact(tmp_path):
    cfg = TINY.replace(time_budget=4.0, steps=1000, lr_decay_every=300, checkpoint_every=1000)
    summary = train(cfg, tmp_path / "budget")
    saved = json.loads((tmp_path / "budget" / RUN_FILES["config"]).read_text())
    chosen = summary["budget"]
    assert saved["time_budget"] is None and saved["steps"] == summary["step"] == chosen["steps"]
    assert saved["lr_decay_every"] == chosen["lr_decay_every"]
    assert chosen["steps"] >= 23  # warm-up and timed steps at least
    rerun = TrainConfig.from_dict(saved)
    train(rerun, tmp_path / "rerun")
    a, _ = load_run(tmp_path / "budget")
    b, _ = load_run(tmp_path / "rerun")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_a_budget_run_stopped_before_it_chose_measures_again_on_resume(tmp_path, monkeypatch):
    import os
    import signal

    from stvae import budget

    def stop_instead(*args):  # SIGTERM arrives while the rate is being timed
        os.kill(os.getpid(), signal.SIGTERM)
        return False

    run = tmp_path / "budget"
    cfg = TINY.replace(time_budget=3.0, steps=1000, lr_decay_every=300, checkpoint_every=1000)
    with monkeypatch.context() as m:
        m.setattr(budget, "measured_on_every_rank", stop_instead)
        first = train(cfg, run)
    assert first["stopped"] and first["budget"] is None
    saved = json.loads((run / RUN_FILES["config"]).read_text())
    assert saved["time_budget"] == 3.0 and saved["steps"] == 1000  # nothing chosen yet
    resumed = train(TrainConfig.from_dict(saved), run, resume=True)
    chosen = resumed["budget"]
    saved = json.loads((run / RUN_FILES["config"]).read_text())
    assert chosen is not None and not resumed["stopped"]  # measured again, not 1000 steps
    assert saved["time_budget"] is None and saved["steps"] == resumed["step"] == chosen["steps"]
    assert first["step"] < chosen["steps"] < 1000


def test_progress_lines_come_at_the_first_record_and_about_every_5_percent(tmp_path, capsys):
    log = MetricsLog(tmp_path / "m.jsonl", 2400, 0, frames_per_step=256)
    for step in range(50, 2401, 50):
        row = {"step": step, "loss": 1.0, "reconstruction": 1.0, "kl": 0.0, "frames_per_s": 1000}
        log.record({**row, "final": step == 2400})
    log.close()
    lines = capsys.readouterr().out.strip().splitlines()
    steps = [int(line.split()[1].split("/")[0]) for line in lines]
    assert steps[0] == 50 and steps[-1] == 2400  # the first logged step, and the last
    assert 17 <= len(steps) <= 22  # about every 5% (120 steps), on the 50-step log grid
    assert all(b - a <= 150 for a, b in zip(steps, steps[1:], strict=False))
    assert all("left" in line and "frames/s" in line and "/2400" in line for line in lines)


def test_before_a_budget_chooses_the_steps_progress_says_it_is_timing(tmp_path, capsys):
    log = MetricsLog(tmp_path / "m.jsonl", UNTIL_CHOSEN, 0, frames_per_step=256)
    row = {"step": 50, "loss": 1.0, "reconstruction": 1.0, "kl": 0.0, "frames_per_s": 1000}
    log.record({**row, "final": False})
    log.set_total(600)
    log.record({**row, "step": 100, "final": False})
    log.close()
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first.startswith("step     50  loss") and "timing the rate" in first
    assert str(UNTIL_CHOSEN) not in first and "left" not in first
    assert second.startswith("step    100/600") and "left" in second


@pytest.mark.slow
def test_a_time_budget_never_raises_the_learning_rate_and_config_json_replays_it(tmp_path):
    # measuring takes at least 23 steps: with a decay every 10 the preset's schedule would
    # decay twice while measuring, and the schedule chosen after must not undo that
    cfg = TINY.replace(
        time_budget=5.0, steps=1000, lr_decay_every=10, log_every=1, checkpoint_every=1000
    )
    train(cfg, tmp_path / "budget")
    saved = TrainConfig.from_dict(json.loads((tmp_path / "budget" / "config.json").read_text()))
    lrs = [r["lr"] for r in _rows(tmp_path / "budget")]
    assert len(lrs) == saved.steps >= 23
    assert all(later <= before for before, later in zip(lrs, lrs[1:], strict=False)), lrs
    assert lrs == [saved.lr_at(step) for step in range(saved.steps)]  # the schedule recorded
    train(saved, tmp_path / "rerun")
    assert [r["lr"] for r in _rows(tmp_path / "rerun")] == lrs


def _rows(run):
    return [json.loads(line) for line in (run / RUN_FILES["metrics"]).read_text().splitlines()]
