"""Users' own videos: frame conversion, folders of video files or of frame images, clips.

Every frame becomes 64x64 the same way, whatever its source:

1. colour stays colour (RGB; an alpha channel is dropped); one channel, or RGB whose three
   channels differ nowhere by more than 3 levels of 255 (grey content, decoded from a
   lossy video), is grey; grey from RGB (or asked for, ``gray=True``) is the luminance
   with the ITU-R BT.601 weights 0.299 R + 0.587 G + 0.114 B, taken first (a model's
   ``channels`` = 1 applies the same weights later, :func:`stvae.data.to_tensor`);
2. the largest centred square is cropped (no stretching);
3. the square is resampled to 64x64 with antialiased bilinear interpolation
   (``torch.nn.functional.interpolate(..., mode="bilinear", antialias=True)``), each
   channel on its own, which averages over the source pixels when shrinking.

Videos longer than one clip are cut into clips of ``frames`` consecutive frames whose
starts are ``stride`` frames apart (default: ``frames``, so clips do not overlap); a tail
shorter than a clip is dropped. Video files are decoded with PyAV (``pip install
stvae[video]``); frame images with Pillow, in the sorted order of their file names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stvae.errors import StvaeError
from stvae.layout import LUMA

__all__ = ["to_frames64", "to_gray64", "clips", "load_folder", "VIDEO_SUFFIXES", "IMAGE_SUFFIXES"]

FRAME = 64
# RGB whose channels differ by at most this everywhere is grey (3 levels of 255: the
# chroma rounding of a grey video decoded from YUV 4:2:0)
GREY_TOLERANCE = 3.5 / 255
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def to_frames64(frames: np.ndarray, where: str, gray: bool = False) -> np.ndarray:
    """[..., H, W] or [..., H, W, C] frames (uint8, or float in [0, 1]) -> float32
    [..., 64, 64] (grey) or [..., 64, 64, 3] (colour).

    Colour stays colour unless ``gray`` or the channels are equal to within
    ``GREY_TOLERANCE`` everywhere; see the module doc for the exact conversion.
    """
    x = frames.astype(np.float32)
    if frames.dtype == np.uint8:
        x = x / 255.0
    channelled = frames.ndim >= 3 and frames.shape[-1] in (1, 3, 4) and frames.shape[-2] > 4
    rgb_out = False
    if channelled:
        rgb = x[..., :3]  # alpha dropped
        if x.shape[-1] == 1:
            x = rgb[..., 0]
        elif gray or np.abs(rgb - rgb[..., :1]).max() <= GREY_TOLERANCE:
            x = rgb @ np.asarray(LUMA, dtype=np.float32)  # asked for, or grey stored as RGB
        else:
            x = np.moveaxis(rgb, -1, -3)  # [..., 3, H, W] while cropping and resizing
            rgb_out = True
    h, w = x.shape[-2:]
    if h < 2 or w < 2:
        raise StvaeError(f"{where}: frames of {h}x{w} pixels are too small")
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if side != FRAME:
        lead = x.shape[:-2]
        t = torch.from_numpy(np.ascontiguousarray(x)).reshape(-1, 1, side, side)
        t = F.interpolate(
            t, size=(FRAME, FRAME), mode="bilinear", antialias=True, align_corners=False
        )
        x = t.clamp_(0.0, 1.0).reshape(*lead, FRAME, FRAME).numpy()
    if rgb_out:  # [..., 3, 64, 64]: channels last again
        x = np.ascontiguousarray(np.moveaxis(x, -3, -1))
    return x


def to_gray64(frames: np.ndarray, where: str) -> np.ndarray:
    """:func:`to_frames64` to grey: float32 [..., 64, 64]."""
    return to_frames64(frames, where, gray=True)


def clips(video: np.ndarray, frames: int, stride: int) -> np.ndarray:
    """Cuts one video [T, 64, 64] into clips [K, frames, 64, 64], starts ``stride`` apart."""
    starts = range(0, video.shape[0] - frames + 1, stride)
    if not starts:
        return np.empty((0, frames, *video.shape[1:]), dtype=video.dtype)
    return np.stack([video[s : s + frames] for s in starts])


def _decode_video(path: Path) -> np.ndarray:
    try:
        import av
    except ImportError:
        raise StvaeError(
            f"{path}: reading video files needs PyAV; install it with pip install 'stvae[video]'"
        ) from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise StvaeError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except StvaeError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise StvaeError(f"{path}: cannot decode video ({str(e).splitlines()[0]})") from None
    if not frames:
        raise StvaeError(f"{path}: video has no decodable frames")
    return np.stack(frames)  # uint8 [T, H, W, 3]


def _read_images(folder: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise StvaeError(f"{folder}: holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
    frames, size = [], None
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                arr = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise StvaeError(f"{p}: cannot read image ({str(e).splitlines()[0]})") from None
        if size is not None and arr.shape != size:
            raise StvaeError(
                f"{p}: {arr.shape[1]}x{arr.shape[0]} differs from the folder's "
                f"{size[1]}x{size[0]} frames"
            )
        size = arr.shape
        frames.append(arr)
    return np.stack(frames)  # uint8 [T, H, W, 3]


def load_folder(
    folder: str | Path, frames: int, stride: int | None = None
) -> dict[str, np.ndarray]:
    """Clips of every video in ``folder``: video files, or sub-folders of frame images.

    Returns ``videos`` uint8 [K, frames, 64, 64] (or [K, frames, 64, 64, 3] when a video is
    in colour: grey videos are then repeated to RGB), ``clip_video`` [K] (which video, in
    sorted file-name order) and ``clip_start`` [K] (first frame of the clip in that video).
    """
    folder = Path(folder)
    stride = stride or frames
    if not folder.is_dir():
        raise StvaeError(f"{folder}: no such folder")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    sources = [p for p in entries if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES]
    if not sources:
        raise StvaeError(f"{folder}: holds no video files or folders of frame images")
    out, which, start, lengths = [], [], [], []
    for i, src in enumerate(sources):
        raw = _read_images(src) if src.is_dir() else _decode_video(src)
        video = np.rint(to_frames64(raw, str(src)) * 255).astype(np.uint8)
        lengths.append(len(video))
        cut = clips(video, frames, stride)
        out.append(cut)
        which += [i] * len(cut)
        start += list(range(0, len(cut) * stride, stride))
    if any(c.ndim == 5 for c in out):  # some video is in colour: grey ones repeat to RGB
        out = [c if c.ndim == 5 else np.repeat(c[..., None], 3, -1) for c in out]
    videos = np.concatenate(out)
    if len(videos) == 0:
        raise StvaeError(
            f"{folder}: no video has the {frames} frames of one clip (longest: {max(lengths)})"
        )
    return {
        "videos": videos,
        "clip_video": np.asarray(which, dtype=np.int64),
        "clip_start": np.asarray(start, dtype=np.int64),
    }
