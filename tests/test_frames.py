"""Users' videos: conversion to 64x64 grayscale, clips, folders of videos and of images."""

import numpy as np
import pytest
from PIL import Image

from stvae import StvaeError
from stvae.data import DataConfig, load_dataset, open_source
from stvae.data.frames import clips, load_folder, to_gray64

av = pytest.importorskip("av", reason="the optional video extra (PyAV) is not installed")


def write_video(path, frames: np.ndarray, codec="mpeg4", fps=10):
    """frames: uint8 [T, H, W, 3]."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def moving_square(t=20, h=96, w=128):
    v = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        v[i, 30:60, 10 + 3 * i : 40 + 3 * i] = 255
    return v


def test_gray_conversion_is_documented_luma_crop_and_resample():
    rgb = np.zeros((1, 64, 64, 3), np.uint8)
    rgb[..., 0] = 255
    assert to_gray64(rgb, "x")[0, 0, 0] == pytest.approx(0.299, abs=1e-6)
    # a centred square crop: the 40-pixel margins of a 128-wide frame are cut away
    wide = np.zeros((64, 128), np.float32)
    wide[:, :32] = 1.0
    out = to_gray64(wide[None], "x")[0]
    assert out.shape == (64, 64) and out.max() == 0.0
    # shrinking averages: a fine checkerboard becomes flat grey
    board = (np.indices((256, 256)).sum(0) % 2).astype(np.float32)
    np.testing.assert_allclose(to_gray64(board[None], "x"), 0.5, atol=5e-3)


def test_clips_with_stride():
    video = np.arange(10)[:, None, None] * np.ones((1, 64, 64))
    assert clips(video, 4, 4)[:, 0, 0, 0].tolist() == [0, 4]
    assert clips(video, 4, 3)[:, 0, 0, 0].tolist() == [0, 3, 6]
    assert clips(video, 11, 1).shape == (0, 11, 64, 64)


def test_folder_of_video_files(tmp_path):
    write_video(tmp_path / "a.mp4", moving_square(20))
    write_video(tmp_path / "b.avi", moving_square(9))
    frames = [Image.fromarray(f) for f in moving_square(8)]
    frames[0].save(tmp_path / "c.gif", save_all=True, append_images=frames[1:], duration=100)
    data = load_folder(tmp_path, frames=8, stride=4)
    assert data["videos"].shape[1:] == (8, 64, 64) and data["videos"].dtype == np.uint8
    # a.mp4: starts 0, 4, 8, 12; b.avi: 0; c.gif: 0
    assert data["clip_video"].tolist() == [0, 0, 0, 0, 1, 2]
    assert data["clip_start"].tolist() == [0, 4, 8, 12, 0, 0]
    # the square moves right over time: the column of its centre of mass grows
    cols = (data["videos"][0].astype(float) * np.arange(64)).sum((1, 2)) / data["videos"][0].sum(
        (1, 2)
    )
    assert (np.diff(cols) > 0).all()


def test_folder_of_image_folders_trains(tmp_path):
    for name in ("v1", "v2"):
        (tmp_path / name).mkdir()
        for i, f in enumerate(moving_square(6, 64, 64)):
            Image.fromarray(f).save(tmp_path / name / f"{i:03d}.png")
    data = load_dataset(tmp_path, frames=3)
    assert data["videos"].shape == (4, 3, 64, 64)
    src = open_source(DataConfig(source=str(tmp_path), frames=3))
    assert src.batch(2, np.random.default_rng(0)).shape == (2, 3, 64, 64)


def test_npy_of_colour_frames_of_another_size(tmp_path):
    arr = np.stack([moving_square(5, 48, 80)] * 2)  # [2, 5, 48, 80, 3]
    np.save(tmp_path / "c.npy", arr)
    data = load_dataset(tmp_path / "c.npy")
    assert data["videos"].shape == (2, 5, 64, 64) and data["videos"].dtype == np.uint8


BAD_FOLDERS = {
    "empty folder": (lambda d: None, "holds no video files"),
    "corrupt video": (
        lambda d: (d / "x.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 50),
        "cannot decode video",
    ),
    "truncated video": (
        lambda d: (
            write_video(d / "t.mp4", moving_square(20)),
            (d / "t.mp4").write_bytes((d / "t.mp4").read_bytes()[:300]),
        ),
        "t.mp4",
    ),
    "corrupt image": (
        lambda d: ((d / "v").mkdir(), (d / "v" / "0.png").write_bytes(b"\x89PNG junk")),
        "cannot read image",
    ),
    "image sizes differ": (
        lambda d: (
            (d / "v").mkdir(),
            Image.new("L", (10, 10)).save(d / "v" / "0.png"),
            Image.new("L", (12, 10)).save(d / "v" / "1.png"),
        ),
        "differs from",
    ),
    "too few frames": (
        lambda d: write_video(d / "s.mp4", moving_square(3)),
        "no video has the 16 frames",
    ),
    "no images in sub-folder": (
        lambda d: ((d / "v").mkdir(), (d / "v" / "a.txt").write_text("x")),
        "holds no frame images",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folders_are_user_errors(case, tmp_path):
    make, message = BAD_FOLDERS[case]
    make(tmp_path)
    with pytest.raises(StvaeError, match=message):
        load_folder(tmp_path, frames=16)


def test_worked_example_of_own_videos(tmp_path, monkeypatch):
    # docs/own-videos.md: the example script writes 12 colour videos of 64 frames (48 clips of
    # 16 frames without overlap; the document cuts them 4 frames apart)
    import runpy
    from pathlib import Path

    script = Path(__file__).parents[1] / "docs" / "examples" / "make_videos.py"
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    data = load_folder(tmp_path / "myvideos", frames=16, stride=16)
    assert data["videos"].shape == (48, 16, 64, 64, 3)  # colour kept
    assert data["clip_video"].tolist() == [v for v in range(12) for _ in range(4)]
    assert data["videos"].max() > 100  # the chairs survived encoding and conversion
    # each shape in three colours of about equal luminance: told apart in colour only
    lit = data["videos"].reshape(12, -1, 3).astype(float)
    mean = np.array([lit[v][lit[v].sum(-1) > 150].mean(0) for v in range(12)])  # [12, RGB]
    assert (mean[0::3].argmax(-1) == 0).all() and (mean[1::3].argmax(-1) == 1).all()
    assert (mean[2::3].argmax(-1) == 2).all()
    luma = (lit.mean(1) @ np.array([0.299, 0.587, 0.114])).reshape(4, 3)  # [shape, colour]
    assert (luma.max(1) - luma.min(1) < 0.03 * luma.mean(1)).all()
