"""Checkpoints: atomic, checksummed, and never a way to run code."""

import pickle

import pytest
import torch

from stvae import StvaeError
from stvae.checkpoint import (
    atomic_write,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from stvae.model import ModelConfig, make_model


@pytest.fixture
def trained():
    torch.manual_seed(0)
    model = make_model(ModelConfig(features=4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, 1, 64, 64))["loss"].backward()
    opt.step()
    return model, opt


def test_roundtrip_restores_model_optimiser_and_rng(tmp_path, trained):
    model, opt = trained
    path = tmp_path / "c.safetensors"
    torch.manual_seed(123)
    save_checkpoint(path, model, opt, step=7, config={"a": 1})
    expected_noise = torch.rand(3)
    fresh = make_model(ModelConfig(features=4))
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=5.0)
    assert load_checkpoint(path, fresh, fresh_opt) == 7
    assert torch.equal(torch.rand(3), expected_noise)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    sa, sb = opt.state_dict(), fresh_opt.state_dict()
    assert sb["param_groups"][0]["lr"] == 1e-3
    for k in sa["state"]:
        for key in sa["state"][k]:
            assert torch.equal(torch.as_tensor(sa["state"][k][key]), sb["state"][k][key])


def test_truncated_checkpoint_is_detected(tmp_path, trained):
    model, opt = trained
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, opt, 1, {})
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(StvaeError, match="c.safetensors: corrupt or truncated"):
        load_checkpoint(path, make_model(ModelConfig(features=4)))


def test_altered_checkpoint_fails_its_checksum(tmp_path, trained):
    model, opt = trained
    path = tmp_path / "w.safetensors"
    save_weights(path, model, {})
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(StvaeError, match="checksum mismatch"):
        load_weights(path, make_model(ModelConfig(features=4)))


class _Exploit:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['PWNED'], 'w').write('x')",))


def test_a_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(marker))
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(StvaeError, match="corrupt or truncated"):
        load_checkpoint(path, make_model(ModelConfig(features=4)))
    # the same bytes saved the way torch.save would are refused too
    torch.save({"x": _Exploit()}, path)
    with pytest.raises(StvaeError):
        load_checkpoint(path, make_model(ModelConfig(features=4)))
    assert not marker.exists()


def test_weights_of_another_model_are_a_clear_error(tmp_path, trained):
    model, _ = trained
    path = tmp_path / "w.safetensors"
    save_weights(path, model, {})
    with pytest.raises(StvaeError, match="do not fit this model"):
        load_weights(path, make_model(ModelConfig(features=8)))


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def half(p):
        p.write_text("new but")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def _rewrite(path, **metadata_changes):
    """The file again with some metadata entries changed and its digest kept."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    metadata.update(metadata_changes)
    metadata = {k: v for k, v in metadata.items() if v is not None}
    save_file(tensors, str(path), metadata=metadata)
    return tensors, metadata


def test_the_checksum_covers_the_step_the_optimiser_and_the_config(tmp_path, trained):
    model, opt = trained
    for i, change in enumerate(({"step": "70"}, {"config": '{"a": 2}'}, {"param_groups": "[]"})):
        path = tmp_path / f"c{i}.safetensors"  # no previous checkpoint to fall back to
        save_checkpoint(path, model, opt, 7, {"a": 1})
        _rewrite(path, **change)
        with pytest.raises(StvaeError, match="checksum mismatch"):
            load_checkpoint(path, make_model(ModelConfig(features=4)), opt)


def test_files_of_earlier_versions_whose_digest_covers_the_tensors_still_load(tmp_path, trained):
    from stvae.checkpoint import _sha256

    model, opt = trained
    path = tmp_path / "old.safetensors"
    save_checkpoint(path, model, opt, 7, {"a": 1})
    tensors, _ = _rewrite(path, covers=None)  # as stvae 0.4 wrote it: no "covers" ...
    _rewrite(path, covers=None, sha256=_sha256(tensors))  # ... and a digest of the tensors
    assert load_checkpoint(path, make_model(ModelConfig(features=4)), opt) == 7


def test_a_damaged_checkpoint_is_never_rotated_over_a_good_previous_one(tmp_path, trained):
    from stvae.checkpoint import previous

    model, opt = trained
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, opt, 2, {})
    save_checkpoint(path, model, opt, 4, {})  # step 2 is now the previous one
    path.write_bytes(path.read_bytes()[:-1000])  # the newest damaged
    fresh = make_model(ModelConfig(features=4))
    assert load_checkpoint(path, fresh) == 2  # resume falls back to it
    save_checkpoint(path, model, opt, 3, {})  # the resumed run's next checkpoint
    assert load_checkpoint(previous(path), fresh) == 2  # the good one is still there
    assert load_checkpoint(path, fresh) == 3
    save_checkpoint(path, model, opt, 4, {})  # a good newest rotates as before
    assert load_checkpoint(previous(path), fresh) == 3


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_take_the_mode_the_umask_gives(tmp_path, trained, umask):
    """Text files, and weights and checkpoints through the real safetensors (whose
    save_file replaces our temporary file with its own, 0600), a rotated checkpoint and
    a training run's snapshot and final weights among them."""
    import os

    from stvae.checkpoint import previous
    from stvae.data import DataConfig
    from stvae.train import TrainConfig, train

    model, opt = trained
    before = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.json", lambda p: p.write_text("{}"))
        save_weights(tmp_path / "w.safetensors", model, {})
        save_checkpoint(tmp_path / "c.safetensors", model, opt, 1, {})
        save_checkpoint(tmp_path / "c.safetensors", model, opt, 2, {})
        run = tmp_path / "run"
        tiny = TrainConfig(model=ModelConfig(features=4), data=DataConfig(frames=4), steps=2)
        train(tiny.replace(batch_videos=2, snapshot_every=1), run)
        written = [tmp_path / "f.json", tmp_path / "w.safetensors", tmp_path / "c.safetensors"]
        written += [previous(tmp_path / "c.safetensors"), *run.rglob("*.safetensors")]
        assert len(written) == 4 + 4  # checkpoint, model and two snapshots of the run
        for path in written:
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    finally:
        os.umask(before)
