"""The project's dataset file format, and reading users' arrays.

A dataset file is an ``.npz`` holding

* ``videos``: uint8 [V, T, 64, 64] (0-255), or float [V, T, 64, 64] in [0, 1]; colour
  videos [V, T, 64, 64, 3] (RGB) the same;
* optionally ``static_labels`` int [V], ``temporal_labels`` int [V, T] and
  ``positions`` float [V, T, 2] (or any other per-video / per-frame ground truth);
  several static targets as ``attributes`` int [V, A] with ``attribute_names`` str [A]
  (evaluate scores each).

A bare ``.npy`` array [V, T, H, W] or [V, T, H, W, C] (uint8, or float in [0, 1]) is read
as ``videos`` alone; frames of another size are converted to 64x64 as
:mod:`stvae.data.frames` documents (colour kept, an alpha channel dropped). A folder of
video files or of folders of frame images is cut into clips. Every check raises
:class:`StvaeError` naming the file, and nothing is unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from stvae.checkpoint import atomic_write
from stvae.data.frames import load_folder, to_frames64
from stvae.data.released import is_released, load_released
from stvae.errors import StvaeError

__all__ = ["load_dataset", "save_dataset", "check_videos"]

FRAME = 64


def check_videos(videos: np.ndarray, where: str) -> np.ndarray:
    """Validates a video array [V, T, H, W] or [V, T, H, W, C] and returns it as uint8 or
    float32 [V, T, 64, 64] (grey) or [V, T, 64, 64, 3] (colour); other shapes go through
    :func:`stvae.data.frames.to_frames64`."""
    shaped = videos.ndim == 4 or (videos.ndim == 5 and videos.shape[-1] in (1, 3, 4))
    if not shaped:
        raise StvaeError(
            f"{where}: videos must be [V, T, H, W] or [V, T, H, W, C]; "
            f"got shape {list(videos.shape)}"
        )
    if videos.shape[0] < 1 or videos.shape[1] < 1:
        raise StvaeError(f"{where}: holds no frames (shape {list(videos.shape)})")
    if videos.dtype != np.uint8:
        if not np.issubdtype(videos.dtype, np.floating):
            raise StvaeError(f"{where}: videos must be uint8 or float; got {videos.dtype}")
        videos = videos.astype(np.float32, copy=False)
        if not np.isfinite(videos).all():
            raise StvaeError(f"{where}: videos contain NaN or infinite values")
        lo, hi = float(videos.min()), float(videos.max())
        if lo < 0.0 or hi > 1.0:
            raise StvaeError(f"{where}: float videos must lie in [0, 1]; found [{lo:g}, {hi:g}]")
    if videos.shape[2:] in ((FRAME, FRAME), (FRAME, FRAME, 3)):
        return videos
    frames = to_frames64(videos, where)
    return np.rint(frames * 255).astype(np.uint8) if videos.dtype == np.uint8 else frames


def _check_labels(data: dict[str, np.ndarray], where: str) -> None:
    v, t = data["videos"].shape[:2]
    expected = {
        "static_labels": (v,),
        "temporal_labels": (v, t),
        "positions": (v, t, 2),
        "angles": (v, t),
    }
    for key, shape in expected.items():
        if key not in data:
            continue
        arr = data[key]
        if arr.shape != shape:
            raise StvaeError(f"{where}: {key} must have shape {list(shape)}; got {list(arr.shape)}")
        real = key in ("positions", "angles")
        if not real and not np.issubdtype(arr.dtype, np.integer):
            raise StvaeError(f"{where}: {key} must be integers; got {arr.dtype}")
        if real and not np.isfinite(arr).all():
            raise StvaeError(f"{where}: {key} contain NaN or infinite values")
    if "attributes" in data:
        attrs = data["attributes"]
        if attrs.ndim != 2 or attrs.shape[0] != v or not np.issubdtype(attrs.dtype, np.integer):
            raise StvaeError(
                f"{where}: attributes must be integers [V, A] with V = {v}; "
                f"got {attrs.dtype} {list(attrs.shape)}"
            )
        names = data.get("attribute_names")
        if names is not None and names.shape != (attrs.shape[1],):
            raise StvaeError(
                f"{where}: attribute_names must name the {attrs.shape[1]} attributes; "
                f"got shape {list(names.shape)}"
            )


def load_dataset(
    path: str | Path, frames: int = 16, stride: int | None = None, split: str = "train"
) -> dict[str, np.ndarray]:
    """Reads a dataset ``.npz``, a bare ``.npy`` video array, or a folder of videos.

    ``frames`` and ``stride`` cut a folder's videos into clips (see
    :mod:`stvae.data.frames`); arrays are taken as they are. A folder of the field's
    Sprites arrays (:mod:`stvae.data.released`) gives its ``split``: "train", or the
    test arrays for any held-out split; other sources are one set for every split.
    """
    path = Path(path)
    if not path.exists():
        raise StvaeError(f"{path}: no such file")
    if path.is_dir():
        if is_released(path):
            return load_released(path, split)
        return load_folder(path, frames, stride)
    if not path.is_file():
        raise StvaeError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise StvaeError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            data = {"videos": np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            if not zipfile.is_zipfile(path):  # else numpy calls any other bytes pickled data
                raise StvaeError(
                    f"{path}: cannot read as .npz (not a zip archive, as .npz files are)"
                )
            with np.load(path, allow_pickle=False) as archive:
                data = {key: archive[key] for key in archive.files}
        else:
            raise StvaeError(
                f"{path}: unsupported file type {suffix or '(none)'}; use .npz or .npy"
            )
    except StvaeError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise StvaeError(f"{path}: cannot read as {suffix} ({str(e).splitlines()[0]})") from None
    if "videos" not in data:
        raise StvaeError(f"{path}: no 'videos' array (found: {', '.join(data) or 'nothing'})")
    data["videos"] = check_videos(data["videos"], str(path))
    _check_labels(data, str(path))
    return data


def save_dataset(data: dict[str, np.ndarray], path: str | Path) -> Path:
    """Writes a dataset ``.npz`` atomically (:func:`stvae.checkpoint.atomic_write`)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise StvaeError(f"{path}: dataset files end in .npz")
    check_videos(data["videos"], str(path))
    _check_labels(data, str(path))
    if not path.parent.is_dir():
        raise StvaeError(f"{path.parent}: output folder does not exist")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **data)

    atomic_write(path, write)  # flushed, renamed; a full disk is one StvaeError
    return path
