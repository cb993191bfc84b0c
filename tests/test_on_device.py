"""Bouncing MNIST drawn by torch ops on the training device (run here on the CPU device)."""

import numpy as np
import pytest
import torch

from stvae import StvaeError
from stvae import train as train_module
from stvae.checkpoint import read_json
from stvae.data import bouncing_mnist, chairs, registry
from stvae.data.digits import load_digits
from stvae.data.on_device import DeviceBouncingMNIST, DeviceChairs, _mix, _mul32, uniforms
from stvae.train import PRESETS, RUN_FILES, TrainConfig, load_run, resolve_data_on, train

ON_DEVICE = PRESETS["smoke"].replace(
    data_on="device",
    device="cpu",  # on a GPU machine too: bit-exact resume is the CPU's promise (docs/models.md)
)


@pytest.fixture(scope="module")
def digits():
    return load_digits("train")


@pytest.fixture(scope="module")
def made(digits):
    return DeviceBouncingMNIST(digits, frames=16)


def test_products_and_hash_are_exact_32_bit_arithmetic():
    """The split products equal Python's unbounded integers mod 2^32 (an independent
    oracle), and the hash is a bijection (no two of 2^20 words collide)."""
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**32, size=5000, dtype=np.uint64).astype(np.int64)
    for c in (0x7FEB352D, 0x846CA68B, 0xFFFFFFFF, 1):
        got = _mul32(torch.from_numpy(words), c).numpy()
        want = np.array([(int(w) * c) % 2**32 for w in words], dtype=np.int64)
        np.testing.assert_array_equal(got, want)
    assert [_mul32(int(w), 0x846CA68B) for w in words[:50]] == list(
        _mul32(torch.from_numpy(words[:50]), 0x846CA68B).tolist()
    )
    hashed = _mix(torch.arange(2**20, dtype=torch.int64))
    assert hashed.unique().numel() == 2**20 and hashed.min() >= 0 and hashed.max() < 2**32


def test_uniform_numbers_are_uniform_and_independent():
    u = uniforms(seed=3, step=7, videos=range(40_000), draws=5, device="cpu").numpy()
    assert u.min() >= 0 and u.max() < 1
    for j in range(5):  # chi-square over 20 bins, 19 degrees of freedom: 99.9% below 43.8
        counts = np.bincount((u[:, j] * 20).astype(int), minlength=20)
        expected = len(u) / 20
        assert ((counts - expected) ** 2 / expected).sum() < 43.8
    off = np.corrcoef(u.T)[~np.eye(5, dtype=bool)]
    assert np.abs(off).max() < 0.03  # draws of one video are uncorrelated
    neighbours = np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]  # consecutive videos
    nxt = uniforms(seed=3, step=8, videos=range(40_000), draws=1, device="cpu").numpy()[:, 0]
    assert abs(neighbours) < 0.03 and abs(np.corrcoef(u[:, 0], nxt)[0, 1]) < 0.03


def test_a_video_is_a_pure_function_of_seed_step_and_index(made):
    whole = made.sample(seed=1, step=4, videos=range(8))["videos"]
    part = made.sample(seed=1, step=4, videos=range(3, 6))["videos"]
    assert torch.equal(whole[3:6], part)  # any rank's shard draws the same videos
    assert torch.equal(whole, made.sample(seed=1, step=4, videos=range(8))["videos"])
    assert not torch.equal(whole, made.sample(seed=1, step=5, videos=range(8))["videos"])
    assert not torch.equal(whole, made.sample(seed=2, step=4, videos=range(8))["videos"])


def test_the_same_parameters_paint_the_same_pixels_and_labels_as_the_host_path(made, digits):
    pick, start, velocity = made.params(seed=0, step=11, videos=range(64))
    device = made.paint(pick, start, velocity)
    host = bouncing_mnist.paint(digits, pick.numpy(), start.numpy(), velocity.numpy(), 16)
    assert set(host) == set(device)
    for key, value in host.items():
        np.testing.assert_array_equal(device[key].numpy(), value, err_msg=key)


def test_parameters_follow_the_host_generators_distributions(made):
    """Uniform image, start and direction; the authors' constant 0.1 of the travel range."""
    pick, start, velocity = made.params(seed=0, step=0, videos=range(20_000))
    images = len(made.labels)
    assert pick.min() >= 0 and pick.max() < images
    assert pick.unique().numel() > 0.98 * images  # 20,000 draws over 4,500 images
    assert abs(start.mean().item() - 0.5) < 0.01 and abs(start.std().item() - 12**-0.5) < 0.01
    np.testing.assert_allclose(velocity.norm(dim=1).numpy(), 0.1, rtol=1e-12)
    angle = torch.atan2(velocity[:, 0], velocity[:, 1])
    counts = np.bincount(((angle.numpy() + np.pi) / (2 * np.pi) * 8).astype(int), minlength=8)
    assert counts.min() > 0.9 * 20_000 / 8  # the direction is uniform over the circle
    labels = made.sample(seed=0, step=0, videos=range(2000))["temporal_labels"].numpy()
    share = np.bincount(labels.ravel(), minlength=9) / labels.size
    assert share.min() > 0.08 and share.max() < 0.15  # the authors' near-balanced grid


def test_other_speeds_are_drawn_within_their_range(digits):
    made = DeviceBouncingMNIST(digits, 4, speed=(0.05, 0.2))
    _, _, velocity = made.params(seed=0, step=0, videos=range(5000))
    pace = velocity.norm(dim=1)
    assert pace.min() >= 0.05 and pace.max() <= 0.2 and pace.std() > 0.03


def test_auto_draws_on_the_device_only_on_cuda_and_only_bouncing_mnist():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_data_on(TrainConfig(), cpu) == "host"
    assert resolve_data_on(TrainConfig(), cuda) == "device"
    sprites = TrainConfig().replace(**{"data.source": "sprites"})
    assert resolve_data_on(sprites, cuda) == "host"
    chairs = TrainConfig().replace(**{"data.source": "chairs"})
    assert resolve_data_on(chairs, cuda) == "device"
    with pytest.raises(StvaeError, match="makes generated bouncing-mnist and chairs only"):
        resolve_data_on(sprites.replace(data_on="device"), cpu)


def test_a_bad_data_on_is_refused_before_a_run_directory_exists(tmp_path):
    with pytest.raises(StvaeError, match="data-on must be one of auto, host, device"):
        TrainConfig(data_on="gpu")
    config = ON_DEVICE.replace(**{"data.source": "sprites"})
    with pytest.raises(StvaeError, match="made on the host"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_training_on_device_data_records_it_and_resumes_exactly(tmp_path):
    straight = tmp_path / "straight"
    train(ON_DEVICE, straight)
    assert read_json(straight / RUN_FILES["config"])["data_on"] == "device"
    parted = tmp_path / "parted"
    train(ON_DEVICE.replace(steps=4), parted)
    train(ON_DEVICE, parted, resume=True)
    a, _ = load_run(straight)
    b, _ = load_run(parted)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


def test_the_loop_trains_on_exactly_the_device_generators_batches(tmp_path, monkeypatch):
    seen = []
    real = train_module._forward_backward

    def spy(forward, x, *rest):
        seen.append(x.clone())
        return real(forward, x, *rest)

    monkeypatch.setattr(train_module, "_forward_backward", spy)
    train(ON_DEVICE.replace(steps=2), tmp_path / "run")
    made = DeviceBouncingMNIST(load_digits("train"), 4)  # the loop's own copy of the split
    for step, x in enumerate(seen):
        want = made.sample(ON_DEVICE.seed, step, range(2))["videos"].float() / 255
        assert x.shape == (2, 4, 1, 64, 64) and torch.equal(x[:, :, 0], want)


@pytest.fixture(scope="module")
def chair_bank():
    return DeviceChairs(frames=16, identities=3)


def test_chairs_come_from_the_host_renderers_views(chair_bank):
    which, start, speed = chair_bank.params(seed=0, step=2, videos=range(40))
    made = chair_bank.paint(which, start, speed)
    views = np.mod(start.numpy()[:, None] + speed.numpy()[:, None] * np.arange(16), chairs.VIEWS)
    ids = chairs.TRAIN_OFFSET + which.numpy()
    want = np.stack([chairs._view_bank(int(i))[v] for i, v in zip(ids, views, strict=True)])
    np.testing.assert_array_equal(made["videos"].numpy(), want)
    np.testing.assert_array_equal(made["static_labels"].numpy(), ids)
    np.testing.assert_array_equal(made["temporal_labels"].numpy(), views * 8 // chairs.VIEWS)
    # the image ids of the host path: chair, then azimuth in half grid steps
    np.testing.assert_array_equal(made["image_ids"].numpy(), ids[:, None] * 144 + 2 * views)


def test_chair_draws_follow_the_host_paths_distributions(chair_bank):
    which, start, speed = chair_bank.params(seed=1, step=0, videos=range(6000))
    assert set(which.tolist()) == {0, 1, 2}
    assert start.min() == 0 and start.max() == chairs.VIEWS - 1
    counts = np.bincount(speed.numpy() + 3, minlength=7)  # -3..3
    assert counts[3] == 0 and (counts[[0, 1, 2, 4, 5, 6]] > 0.8 * 1000).all()
    again = chair_bank.sample(seed=1, step=0, videos=range(2, 5))["videos"]
    assert torch.equal(again, chair_bank.sample(seed=1, step=0, videos=range(6))["videos"][2:5])


def test_training_on_device_chairs(tmp_path, monkeypatch):
    made = []

    def few_chairs(frames, device, workers):  # 3 chairs: the 2,000-chair bank takes minutes
        made.append(DeviceChairs(frames, device, identities=3, workers=min(workers, 1)))
        return made[-1]

    monkeypatch.setattr(registry, "DeviceChairs", few_chairs)
    config = ON_DEVICE.replace(steps=2, **{"data.source": "chairs"})
    summary = train(config, tmp_path / "run")
    assert summary["step"] == 2 and len(made) == 1 and made[0].bank.shape == (3, 72, 64, 64)
    assert read_json(tmp_path / "run" / RUN_FILES["config"])["data_on"] == "device"


def test_a_colour_model_on_device_made_grey_frames_sees_them_repeated(tmp_path, monkeypatch):
    """--channels 3 on Bouncing MNIST: as on the host path, grey is repeated per channel."""
    seen = []
    real = train_module._forward_backward

    def spy(forward, x, *rest):
        seen.append(x.clone())
        return real(forward, x, *rest)

    monkeypatch.setattr(train_module, "_forward_backward", spy)
    train(ON_DEVICE.replace(steps=1, **{"model.channels": 3}), tmp_path / "run")
    (x,) = seen
    assert x.shape == (2, 4, 3, 64, 64)
    assert torch.equal(x[:, :, 0], x[:, :, 1]) and torch.equal(x[:, :, 0], x[:, :, 2])
