"""Colour frames (C = 3) end to end: networks, conversion, model, dataset files, folders."""

import numpy as np
import pytest
import torch
from torch import nn

from stvae.data import channels_of, load_dataset, save_dataset, to_tensor
from stvae.data.frames import LUMA, load_folder, to_frames64
from stvae.model import ModelConfig, encode_videos, make_model
from stvae.nets import Decoder, Encoder


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_colour_changes_only_the_first_and_last_layer():
    # first conv 3x3x3x16 (no bias) instead of 3x3x1x16; output layer 3x3x16x3 + 3 biases
    assert count(Encoder(4, channels=3)) - count(Encoder(4)) == 9 * 16 * 2
    assert count(Decoder(4, channels=3)) - count(Decoder(4)) == 9 * 16 * 2 + 2
    assert Decoder(4, channels=3)(torch.zeros(5, 4)).shape == (5, 3, 64, 64)


def test_grey_model_is_unchanged_by_the_channels_field():
    # default (unresolved), explicit 1: the same weights from the same seed, so a grey run
    # trains as it did before colour existed
    torch.manual_seed(0)
    a = make_model(ModelConfig())
    torch.manual_seed(0)
    b = make_model(ModelConfig(channels=1))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_to_tensor_converts_between_grey_and_rgb():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    rgb = rng.integers(0, 256, (2, 3, 64, 64, 3), dtype=np.uint8)
    assert channels_of(grey) == 1 and channels_of(rgb) == 3
    g = to_tensor(grey)
    assert g.shape == (2, 3, 1, 64, 64)
    torch.testing.assert_close(to_tensor(grey, channels=1), g, rtol=0, atol=0)
    g3 = to_tensor(grey, channels=3)
    assert g3.shape == (2, 3, 3, 64, 64)
    assert all(torch.equal(g3[:, :, c], g[:, :, 0]) for c in range(3))
    c = to_tensor(rgb)
    assert c.shape == (2, 3, 3, 64, 64)
    assert torch.equal(c[1, 2, 0], torch.from_numpy(rgb[1, 2, ..., 0]).float() / 255)
    luma = to_tensor(rgb, channels=1)
    expect = (rgb.astype(np.float64) / 255) @ np.asarray(LUMA)
    np.testing.assert_allclose(luma[:, :, 0].numpy(), expect, atol=1e-6)


def test_colour_model_on_grey_input_is_its_grey_twin():
    """A colour model whose first layer spreads the grey model's weights over the three
    channels (a third each) and whose output layer repeats the grey output reads grey
    videos repeated to RGB exactly as the grey model reads them, and writes three copies
    of the grey logits: its Bernoulli loss is three times the grey one."""
    cfg = ModelConfig(features=4, channels=1)
    torch.manual_seed(0)
    grey = make_model(cfg).eval()
    colour = make_model(ModelConfig(features=4, channels=3)).eval()
    sd = grey.state_dict()
    first = "encoder.convs.0.0.weight"  # [16, 1, 3, 3]
    sd_c = dict(sd)
    sd_c[first] = sd[first].repeat(1, 3, 1, 1) / 3
    sd_c["decoder.out.weight"] = sd["decoder.out.weight"].repeat(1, 3, 1, 1)  # [16, C, 3, 3]
    sd_c["decoder.out.bias"] = sd["decoder.out.bias"].repeat(3)
    colour.load_state_dict(sd_c)
    videos = np.random.default_rng(1).integers(0, 256, (2, 4, 64, 64), dtype=np.uint8)
    mu_g, _ = encode_videos(grey, videos)
    mu_c, _ = encode_videos(colour, videos)  # grey input repeated to RGB by to_tensor
    np.testing.assert_allclose(mu_c, mu_g, rtol=1e-4, atol=1e-5)
    h = torch.from_numpy(mu_g)
    with torch.no_grad():
        lg, lc = grey.decode(h), colour.decode(h)
    assert lc.shape == (2, 4, 3, 64, 64)
    for c in range(3):
        torch.testing.assert_close(lc[:, :, c], lg[:, :, 0], rtol=1e-5, atol=1e-5)
    eps = torch.zeros(2, 4, 4)
    with torch.no_grad():
        out_g = grey(to_tensor(videos), eps=eps)
        out_c = colour(to_tensor(videos, channels=3), eps=eps)
    recon_c, recon_g = out_c["reconstruction"], out_g["reconstruction"]
    torch.testing.assert_close(recon_c, 3 * recon_g, rtol=1e-4, atol=0)
    torch.testing.assert_close(out_c["kl"], out_g["kl"], rtol=1e-4, atol=1e-5)


def test_colour_dataset_file_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    videos = rng.integers(0, 256, (3, 5, 64, 64, 3), dtype=np.uint8)
    path = save_dataset({"videos": videos, "static_labels": np.arange(3)}, tmp_path / "c.npz")
    back = load_dataset(path)
    assert back["videos"].dtype == np.uint8 and np.array_equal(back["videos"], videos)


def test_frames_keep_colour_and_resize_each_channel():
    frames = np.zeros((2, 128, 160, 4), dtype=np.uint8)  # RGBA, wider than tall
    frames[..., 0] = 255  # pure red, alpha ignored
    frames[..., 3] = 7
    out = to_frames64(frames, "x")
    assert out.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(out[..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1:], 0.0, atol=1e-6)
    grey_rgb = np.repeat(np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(1, 64, 64, 1), 3, -1)
    grey_rgb[..., 0] += 2 / 255  # within the tolerance of a decoded grey video
    assert to_frames64(grey_rgb, "x").shape == (1, 64, 64)  # equal channels: grey
    assert to_frames64(frames, "x", gray=True).shape == (2, 64, 64)
    np.testing.assert_allclose(to_frames64(frames, "x", gray=True), LUMA[0], atol=1e-6)


def test_folder_of_colour_frames_keeps_colour(tmp_path):
    from PIL import Image

    for name, colour in (("red", (200, 0, 0)), ("grey", (90, 90, 90))):
        d = tmp_path / name
        d.mkdir()
        for t in range(4):
            Image.new("RGB", (80, 80), colour).save(d / f"{t:03d}.png")
    data = load_folder(tmp_path, frames=4)
    v = data["videos"]
    assert v.shape == (2, 4, 64, 64, 3)  # the grey video repeated to RGB beside the red one
    grey_clip = v[data["clip_video"] == 0][0]  # "grey" sorts first
    assert (grey_clip == 90).all()
    red_clip = v[data["clip_video"] == 1][0]
    assert (red_clip[..., 0] == 200).all() and (red_clip[..., 1:] == 0).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_config_records_the_channels_and_old_configs_read_as_grey(channels):
    from stvae.config import TrainConfig

    cfg = TrainConfig(model=ModelConfig(channels=channels))
    assert TrainConfig.from_dict(cfg.to_dict()).model.channels == channels
    old = cfg.to_dict()
    del old["model"]["channels"]
    assert TrainConfig.from_dict(old).model.channels == 1
    with pytest.raises(Exception, match="channels must be 1 or 3"):
        ModelConfig(channels=2)


def test_grey_frames_of_any_size_stay_grey():
    wide = np.zeros((2, 64, 128), np.float32)  # [T, H, W], no channel axis
    assert to_frames64(wide, "x").shape == (2, 64, 64)
    tall = np.zeros((2, 96, 64, 1), np.uint8)  # one channel
    assert to_frames64(tall, "x").shape == (2, 64, 64)
