"""Training videos drawn on the training device by torch ops (no host processes, no copies).

A GPU trains the paper's network faster than host processes draw Bouncing MNIST and
copy it over (on an H200 the data was the bottleneck: docs/results/performance.md).
Here the split's digit images live on the training device and each batch is made there:
per video five uniform numbers, the bouncing path of its top-left corner [V, T, 2], the
location labels, and the frames painted by one indexed write. Rotating chairs come from a
bank of every training chair's rendered views held on the device, one gather a batch
(:class:`DeviceChairs`). The host only launches.

**Random numbers** come from a counter-based stream: number ``j`` of video ``k`` of step
``s`` of stream ``seed`` is a chain of 32-bit integer hashes (lowbias32, a bijection on
32-bit words) of (seed, s, k, j), divided by 2^32 into [0, 1). So every video is a pure
function of (seed, step, video), as on the host path: a resumed run needs no generator
state and any number of ranks split the same global batch. The hash is integer arithmetic
(products split into 16-bit halves, so int64 never overflows), identical on every device.

**Equivalence with the host generator** (:func:`stvae.data.bouncing_mnist.render`): the
parameters have the same distributions (the digit image uniform over the split's images,
the start uniform over the travel range, the direction uniform over the circle, the pace
uniform over ``speed``), and the same parameters give the same pixels and labels on both
paths (float64 motion, tested against :func:`stvae.data.bouncing_mnist.paint`). The
numbers themselves come from this stream, not numpy's, so a seed draws other videos than
on the host path; a run records the path it drew from (``TrainConfig.data_on``) and a
resume keeps it.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from torch import Tensor

from stvae.data import chairs
from stvae.data.bouncing_mnist import DIGIT, FRAME, SPEED, TRAVEL, location_class
from stvae.data.digits import Digits
from stvae.layout import to_tensor

__all__ = ["uniforms", "DeviceBouncingMNIST", "DeviceChairs", "DeviceFeed"]

MASK = 0xFFFFFFFF
_VIDEO, _DRAW, _SEED, _STEP = 0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F  # one per word


def _mul32(x, c: int):
    """x * c mod 2^32 for words x in [0, 2^32) (int or int64 tensor) without overflowing
    int64: the constant is applied in 16-bit halves."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & MASK


def _mix(x):
    """lowbias32: a bijective avalanche hash of 32-bit words (int or int64 tensor)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _absorb(h, word, salt: int):
    return _mix(h ^ _mix((word + salt) & MASK))


def uniforms(seed: int, step: int, videos: range, draws: int, device) -> Tensor:
    """Uniform numbers in [0, 1) of videos ``videos`` of step ``step``: float64 [V, draws].

    A pure function of (seed, step, video, draw); the (seed, step) part is hashed on the
    host as Python integers, the rest on ``device``."""
    key = _absorb(_absorb(0, seed & MASK, _SEED), (seed >> 32) & MASK, _SEED)
    key = _absorb(key, step & MASK, _STEP)
    video = torch.arange(videos.start, videos.stop, dtype=torch.int64, device=device)
    draw = torch.arange(draws, dtype=torch.int64, device=device)
    h = _absorb(torch.full_like(video, key), video & MASK, _VIDEO)  # [V]
    h = _absorb(h[:, None], draw[None, :], _DRAW)  # [V, draws]
    return h.double() / 2.0**32


def _bounce(start: Tensor, velocity: Tensor, frames: int) -> Tensor:
    """:func:`stvae.data.bouncing_mnist._bounce` in torch: [V, 2], [V, 2] -> [V, T, 2]."""
    t = torch.arange(frames, dtype=torch.float64, device=start.device)[None, :, None]
    free = start[:, None, :] + velocity[:, None, :] * t
    return 1.0 - (torch.remainder(free, 2.0) - 1.0).abs()


class DeviceBouncingMNIST:
    """Bouncing MNIST made on ``device`` from ``digits`` (one split's images, held there).

    :meth:`params` draws a batch's parameters, :meth:`sample` paints it with its labels.
    """

    def __init__(self, digits: Digits, frames: int, speed=SPEED, device="cpu"):
        self.device = torch.device(device)
        self.images = torch.as_tensor(digits.images, device=self.device)  # uint8 [D, 28, 28]
        self.labels = torch.as_tensor(digits.labels, device=self.device)  # int64 [D]
        self.ids = torch.as_tensor(digits.ids, device=self.device)  # int64 [D]
        self.frames, self.speed = frames, (float(speed[0]), float(speed[1]))
        self._offs = torch.arange(DIGIT, device=self.device)

    def params(self, seed: int, step: int, videos: range) -> tuple[Tensor, Tensor, Tensor]:
        """pick int64 [V] (rows of the image bank), start float64 [V, 2] (row, col in [0, 1]
        of the travel range), velocity float64 [V, 2] (travel range per frame)."""
        u = uniforms(seed, step, videos, 5, self.device)
        count = len(self.labels)
        pick = (u[:, 0] * count).long().clamp_(max=count - 1)
        angle = u[:, 3] * (2 * math.pi)
        low, high = self.speed
        pace = low + (high - low) * u[:, 4]
        velocity = pace[:, None] * torch.stack([angle.sin(), angle.cos()], dim=1)
        return pick, u[:, 1:3], velocity

    def paint(self, pick: Tensor, start: Tensor, velocity: Tensor) -> dict[str, Tensor]:
        """The videos uint8 [V, T, 64, 64] and labels of given parameters (as
        :func:`stvae.data.bouncing_mnist.paint`, on the device)."""
        videos, frames = len(pick), self.frames
        top_left = torch.round(_bounce(start, velocity, frames) * TRAVEL).long()  # [V, T, 2]
        out = torch.zeros(videos, frames, FRAME, FRAME, dtype=torch.uint8, device=self.device)
        rows = (top_left[..., 0, None] + self._offs)[..., :, None]  # [V, T, 28, 1]
        cols = (top_left[..., 1, None] + self._offs)[..., None, :]  # [V, T, 1, 28]
        v_idx = torch.arange(videos, device=self.device)[:, None, None, None]
        t_idx = torch.arange(frames, device=self.device)[None, :, None, None]
        out[v_idx, t_idx, rows, cols] = self.images[pick][:, None]
        return {
            "videos": out,
            "static_labels": self.labels[pick],
            "temporal_labels": location_class(top_left),
            "positions": (top_left + DIGIT / 2).float(),
            "image_ids": self.ids[pick],
        }

    def sample(self, seed: int, step: int, videos: range) -> dict[str, Tensor]:
        """Videos ``videos`` of step ``step`` of stream ``seed``, with their labels."""
        return self.paint(*self.params(seed, step, videos))


def _bank(identity: int) -> np.ndarray:
    return chairs._view_bank(identity)


class DeviceChairs:
    """Rotating chairs (:mod:`stvae.data.chairs`, training split) made on ``device``.

    Every training chair's views on the 5-degree grid are rendered once, up front, on the
    host (``workers`` processes; 0: this one) into a bank held on the device, uint8
    [I, 72, 64, 64] (I x 295 KB: 590 MB for the 2,000 training chairs). A video is then one
    gather from the bank: per video a chair uniform over the I, a start view uniform over
    the 72, 1-3 grid steps a frame in either direction, as the host path draws them (the
    same views for the same draws: tested), from this module's counter-based stream.
    """

    def __init__(self, frames: int, device="cpu", identities: int = 2000, workers: int = 0):
        self.device, self.frames = torch.device(device), frames
        ids = chairs.TRAIN_OFFSET + np.arange(identities)
        if workers > 0:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                views = list(pool.map(_bank, ids.tolist(), chunksize=8))
        else:
            views = [_bank(int(i)) for i in ids]
        self.bank = torch.as_tensor(np.stack(views), device=self.device)  # [I, 72, 64, 64]
        self.ids = torch.as_tensor(ids, device=self.device)

    def params(self, seed: int, step: int, videos: range) -> tuple[Tensor, Tensor, Tensor]:
        """chair int64 [V] (rows of the bank), start int64 [V] (a view), speed int64 [V]
        (grid steps a frame, signed: +-1 to +-3)."""
        u = uniforms(seed, step, videos, 4, self.device)
        count = len(self.ids)
        which = (u[:, 0] * count).long().clamp_(max=count - 1)
        start = (u[:, 1] * chairs.VIEWS).long().clamp_(max=chairs.VIEWS - 1)
        pace = (u[:, 2] * chairs.MAX_STEP).long().clamp_(max=chairs.MAX_STEP - 1) + 1
        return which, start, torch.where(u[:, 3] < 0.5, -pace, pace)

    def paint(self, which: Tensor, start: Tensor, speed: Tensor) -> dict[str, Tensor]:
        """Videos uint8 [V, T, 64, 64] and the labels of :func:`stvae.data.chairs.render`."""
        t = torch.arange(self.frames, device=self.device)
        steps = torch.remainder(start[:, None] + speed[:, None] * t, chairs.VIEWS)  # [V, T]
        return {
            "videos": self.bank[which[:, None], steps],
            "static_labels": self.ids[which],
            "temporal_labels": steps * chairs.AZIMUTH_BINS // chairs.VIEWS,
            "angles": (steps * (2 * math.pi / chairs.VIEWS)).float(),
            "image_ids": self.ids[which][:, None] * (2 * chairs.VIEWS) + 2 * steps,
        }

    def sample(self, seed: int, step: int, videos: range) -> dict[str, Tensor]:
        """Videos ``videos`` of step ``step`` of stream ``seed``, with their labels."""
        return self.paint(*self.params(seed, step, videos))


class DeviceFeed:
    """Training batches made on the device, in the loop's order: ``get(step)`` returns
    float32 [B, N, C, 64, 64] in [0, 1], grey frames given the ``channels`` the model
    sees by :func:`stvae.data.to_tensor` (the interface of the host path's feed)."""

    def __init__(
        self,
        source: DeviceBouncingMNIST | DeviceChairs,
        seed: int,
        videos: range,
        channels: int = 1,
    ):
        self.source, self.seed, self.videos, self.channels = source, seed, videos, channels

    def get(self, step: int) -> Tensor:
        frames = self.source.sample(self.seed, step, self.videos)["videos"]
        return to_tensor(frames, frames.device, self.channels)

    def extend(self, stop: int) -> None:
        """Nothing is made ahead: any step can be drawn at any time."""

    def close(self) -> None:
        pass
