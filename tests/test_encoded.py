"""bench/encoded.py: the command line that bench/offset_cost.py and bench/feature_usage.py
share reads a run's final weights or, with --step, one of its snapshots."""

import sys

import pytest
import torch

from stvae.checkpoint import load_weights
from stvae.model import make_model
from stvae.rundir import snapshot_path
from stvae.train import TrainConfig, train

TINY = TrainConfig(steps=4, batch_videos=2, snapshot_every=2).replace(
    **{"model.features": 4, "data.frames": 4}
)


def test_step_reads_the_snapshot_and_a_missing_one_is_one_line(
    bench_module, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    train(TINY, run)
    encodings = bench_module("encoded").held_out_encodings
    snapshot = make_model(TINY.model)
    load_weights(snapshot_path(run, 2), snapshot)

    def weights(argv: list[str]) -> dict:
        monkeypatch.setattr(sys, "argv", ["x", str(run), "--videos", "2", *argv])
        ((_, model, *_),) = list(encodings("d"))
        return model.state_dict()

    at_2, final = weights(["--step", "2"]), weights([])
    for name, value in snapshot.state_dict().items():
        assert torch.equal(at_2[name], value), name
    assert any(not torch.equal(final[k], at_2[k]) for k in final)  # 4 steps, not 2
    with pytest.raises(SystemExit) as e:
        weights(["--step", "3"])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"{snapshot_path(run, 3)}: no such snapshot\n"
