"""How a batch of videos is laid out: numpy arrays as stored, tensors as the networks take.

Videos are stored as uint8 (0-255) or float ([0, 1]) arrays [B, N, 64, 64] (grey) or
[B, N, 64, 64, 3] (RGB); the networks take float32 [B, N, C, 64, 64]. This module sits
below both the data package and the models (neither imports the other for it).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["LUMA", "channels_of", "to_tensor"]

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B in grey


def channels_of(videos: np.ndarray) -> int:
    """Colour channels of a video array: 1 for [..., 64, 64], 3 for [..., 64, 64, 3]."""
    return 3 if videos.ndim >= 3 and videos.shape[-1] == 3 and videos.shape[-2] == 64 else 1


def to_tensor(
    videos: np.ndarray | torch.Tensor,
    device: str | torch.device = "cpu",
    channels: int | None = None,
) -> torch.Tensor:
    """uint8 (0-255) or float ([0, 1]) videos [B, N, 64, 64] (grey) or [B, N, 64, 64, 3]
    (RGB) -> float32 [B, N, C, 64, 64] in [0, 1].

    ``channels`` C (None: what the videos have) converts between the two: RGB to grey is
    the luminance 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as :mod:`stvae.data.frames`),
    grey to RGB repeats the grey value. Grey videos with C = 1 take exactly the path they
    took before colour existed. The uint8 -> float conversion happens on ``device``, so a
    GPU receives 4x fewer bytes. A tensor already on ``device`` is used as it is.
    """
    if isinstance(videos, torch.Tensor):
        t = videos.to(device)
    else:
        t = torch.from_numpy(np.ascontiguousarray(videos))
        if device != "cpu" and torch.device(device).type == "cuda":
            t = t.pin_memory().to(device, non_blocking=True)
    t = t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()
    has = channels_of(videos)
    if has == 1:
        t = t.unsqueeze(2)  # [B, N, 1, 64, 64]
        return t if channels in (None, 1) else t.expand(-1, -1, channels, -1, -1).contiguous()
    t = t.permute(0, 1, 4, 2, 3)  # [B, N, 3, 64, 64]
    if channels == 1:
        # weighted sum of the three planes: no weight tensor copied from the host per batch
        r, g, b = t.unbind(2)
        return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(2)
    return t.contiguous()
