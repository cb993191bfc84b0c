"""Training batches made ahead of the loop, in a thread or in worker processes.

Video ``k`` of step ``s`` is a pure function of ``(seed, s, k)`` (:func:`make_batch`), so
batches can be made in any order, by any process, and a resumed or sharded run sees the
same stream. One thread is enough on a CPU, where the model is the bottleneck. A GPU eats
batches faster than one Python thread draws them (on an H200 the paper's step consumes
about 70k frames/s; one thread draws about 100k, and shares the GIL with the loop), so
with ``workers > 0`` processes draw ``2 * workers`` steps ahead.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import torch

from stvae.data import to_tensor

__all__ = ["make_batch", "Prefetch", "HostFeed", "RING"]

RING = 3  # pinned staging buffers of a CUDA run's host feed


def make_batch(source, seed: int, step: int, videos: range) -> np.ndarray:
    """Videos ``videos`` of step ``step`` of the stream ``seed``: [len(videos), N, 64, 64]."""
    return np.concatenate([source.batch(1, np.random.default_rng([seed, step, k])) for k in videos])


_SOURCE = None  # a worker process's copy of the source


def _start_worker(source) -> None:
    global _SOURCE
    _SOURCE = source
    # The parent decides when to stop (SIGTERM ends its run cleanly, Ctrl-C interrupts
    # it); a signal sent to the whole process group must not break the pool under it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_batch(seed: int, step: int, videos: range) -> np.ndarray:
    return make_batch(_SOURCE, seed, step, videos)


class Prefetch:
    """Batches of steps ``start``, ``start + 1``, ... up to ``stop`` (exclusive), made ahead.

    ``get(step)`` must be called with consecutive steps from ``start``. ``workers = 0``:
    one thread, one step ahead; else that many spawned processes (safe beside CUDA), each
    holding its own copy of ``source``.
    """

    def __init__(self, source, seed: int, videos: range, start: int, stop: int, workers: int):
        self.stop = stop
        self.next = start  # the next step to submit
        self.pending: deque[tuple[int, Future]] = deque()
        if workers > 0:
            self.pool: Executor = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(source,),
            )
            self.submit = lambda s: self.pool.submit(_worker_batch, seed, s, videos)
            self.depth = 2 * workers
        else:
            self.pool = ThreadPoolExecutor(max_workers=1)
            self.submit = lambda s: self.pool.submit(make_batch, source, seed, s, videos)
            self.depth = 1
        self._fill()

    def _fill(self) -> None:
        while len(self.pending) < self.depth and self.next < self.stop:
            self.pending.append((self.next, self.submit(self.next)))
            self.next += 1

    def extend(self, stop: int) -> None:
        """Makes batches up to ``stop`` (exclusive) from now on (a time budget's choice)."""
        self.stop = stop
        self._fill()

    def get(self, step: int) -> np.ndarray:
        s, future = self.pending.popleft()
        if s != step:
            raise ValueError(f"Prefetch.get({step}): the next prepared step is {s}")
        self._fill()
        return future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HostFeed:
    """Host-made batches (:class:`Prefetch`) as float32 [B, N, C, 64, 64] on ``device``.

    On CUDA each batch goes through one of :data:`RING` pinned staging buffers allocated
    once (no pinned allocation per batch) and is copied without blocking; a buffer is
    refilled only after its previous copy finished (a CUDA event), so the host runs at
    most ``RING`` batches ahead of the GPU and never waits for the step in flight.
    """

    def __init__(self, prefetch: Prefetch, device: torch.device, channels: int):
        self.prefetch, self.device, self.channels = prefetch, device, channels
        self.cuda = device.type == "cuda"
        self.slots: list[tuple[torch.Tensor, torch.cuda.Event] | None] = [None] * RING
        self.turn = 0

    def _stage(self, videos: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(np.ascontiguousarray(videos))
        slot = self.slots[self.turn]
        if slot is None or slot[0].shape != host.shape or slot[0].dtype != host.dtype:
            slot = (torch.empty_like(host).pin_memory(), torch.cuda.Event())
            self.slots[self.turn] = slot
        else:
            slot[1].synchronize()  # its last copy has left the buffer
        buffer, copied = slot
        buffer.copy_(host)
        on_device = buffer.to(self.device, non_blocking=True)
        copied.record()
        self.turn = (self.turn + 1) % RING
        return on_device

    def get(self, step: int) -> torch.Tensor:
        videos = self.prefetch.get(step)
        if self.cuda:
            return to_tensor(self._stage(videos), self.device, self.channels)
        return to_tensor(videos, self.device, self.channels)

    def extend(self, stop: int) -> None:
        self.prefetch.extend(stop)

    def close(self) -> None:
        self.prefetch.close()
