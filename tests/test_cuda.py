"""The CUDA paths of issue 15 (skipped without a GPU; bench/gpu_grid.sh runs them there)."""

import numpy as np
import pytest
import torch

from stvae import StvaeError
from stvae.data import GeneratedSource, to_tensor
from stvae.data.digits import load_digits
from stvae.data.on_device import DeviceBouncingMNIST, DeviceChairs
from stvae.model import ModelConfig, VideoVAE
from stvae.prefetch import RING, HostFeed, Prefetch
from stvae.train import TrainConfig, load_run, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TINY = TrainConfig(
    model=ModelConfig(features=4),
    steps=8,
    batch_videos=4,
    checkpoint_every=4,
    log_every=4,
    device="cuda",
)


def test_device_data_on_cuda_equals_the_cpu_device():
    digits = load_digits("train")
    cpu, cuda = DeviceBouncingMNIST(digits, 16), DeviceBouncingMNIST(digits, 16, device="cuda")
    a, b = cpu.sample(0, 3, range(64)), cuda.sample(0, 3, range(64))
    for key in a:
        assert torch.equal(a[key], b[key].cpu()), key
    chairs_cpu, chairs_cuda = DeviceChairs(16, identities=3), DeviceChairs(16, "cuda", 3)
    assert torch.equal(
        chairs_cpu.sample(0, 1, range(8))["videos"],
        chairs_cuda.sample(0, 1, range(8))["videos"].cpu(),
    )


def test_the_pinned_ring_hands_over_each_batch_intact():
    source = GeneratedSource(4)
    feed = HostFeed(Prefetch(source, 0, range(3), 0, 3 * RING, 0), torch.device("cuda"), 1)
    plain = Prefetch(source, 0, range(3), 0, 3 * RING, 0)
    try:
        for step in range(3 * RING):  # every buffer refilled twice
            got = feed.get(step)
            assert got.is_cuda and torch.equal(got.cpu(), to_tensor(plain.get(step)))
    finally:
        feed.close()
        plain.close()


@pytest.mark.parametrize("graphs", [False, True])
def test_compiled_training_on_device_data(tmp_path, graphs):
    config = TINY.replace(compile=True, cuda_graphs=graphs, precision="bf16")
    summary = train(config, tmp_path / "run")
    assert summary["step"] == 8 and summary["compiled"]
    assert np.isfinite(summary["final"]["loss"])
    model, saved = load_run(tmp_path / "run")
    assert saved.data_on == "device" and isinstance(model, VideoVAE)


def test_a_non_finite_step_on_cuda_is_skipped_and_reported(tmp_path, monkeypatch):
    forward = VideoVAE.forward
    calls = {"n": 0}

    def poisoned(self, x, beta=None, eps=None):
        out = forward(self, x, beta, eps)
        calls["n"] += 1
        if calls["n"] == 6:  # step 5
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(VideoVAE, "forward", poisoned)
    with pytest.raises(StvaeError, match="loss became non-finite at step 5 "):
        train(TINY, tmp_path / "run")
    model, _ = load_run(tmp_path / "run")  # the step-4 checkpoint
    assert all(torch.isfinite(p).all() for p in model.parameters())
