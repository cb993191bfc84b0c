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
from stvae.model import ModelConfig, VideoVAE


@pytest.fixture
def trained():
    torch.manual_seed(0)
    model = VideoVAE(ModelConfig(features=4))
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
    fresh = VideoVAE(ModelConfig(features=4))
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
        load_checkpoint(path, VideoVAE(ModelConfig(features=4)))


def test_altered_checkpoint_fails_its_checksum(tmp_path, trained):
    model, opt = trained
    path = tmp_path / "w.safetensors"
    save_weights(path, model, {})
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(StvaeError, match="checksum mismatch"):
        load_weights(path, VideoVAE(ModelConfig(features=4)))


class _Exploit:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['PWNED'], 'w').write('x')",))


def test_a_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(marker))
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(StvaeError, match="corrupt or truncated"):
        load_checkpoint(path, VideoVAE(ModelConfig(features=4)))
    # the same bytes saved the way torch.save would are refused too
    torch.save({"x": _Exploit()}, path)
    with pytest.raises(StvaeError):
        load_checkpoint(path, VideoVAE(ModelConfig(features=4)))
    assert not marker.exists()


def test_weights_of_another_model_are_a_clear_error(tmp_path, trained):
    model, _ = trained
    path = tmp_path / "w.safetensors"
    save_weights(path, model, {})
    with pytest.raises(StvaeError, match="do not fit this model"):
        load_weights(path, VideoVAE(ModelConfig(features=8)))


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
