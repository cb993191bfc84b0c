"""How the host's allocator treats the memory a training step frees (glibc on Linux).

glibc's ``malloc`` serves a large block (over its mmap threshold, at most 32 MiB) with a
fresh ``mmap`` and gives it back with ``munmap`` when it is freed, and trims the top of
its heap once more than a threshold there is free. A training step on a CPU allocates
and frees the same activations every step, so each step's first touch of every page of
them is a page fault that the kernel answers by zeroing the page. At the ``paper``
preset's batch (64 videos of 16 frames) that can be a large share of the step; the
throughput and the system time's share with and without it are measured by
``bench/train_speed.py --batch-videos 64`` (docs/results/performance.md).
:func:`kept_freed_memory` tells glibc to keep freed memory for the next step instead:
no ``mmap`` for large blocks (they come from the heap, which grows with ``brk``) and no
trimming. The price is resident memory: the heap keeps its peak, and the holes freed
blocks leave in it are reused only where they fit.

``stvae train`` does this on a CPU (``TrainConfig.keep_freed_memory``, on by default;
``--no-keep-freed-memory`` turns it off), and so do the sprites judge's training
(:mod:`stvae.judge`, always on a CPU) and scoring a model (``evaluate_run``,
``evaluate_model``, ``encode_run``, ``curve_run``, ``probe_spread``:
:func:`keeps_freed_memory`). It is a setting of the whole process, made for the
duration of the call and undone after it. Where the user has
chosen glibc's malloc settings (``GLIBC_TUNABLES`` names one), or the C library is not
glibc, nothing is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
import threading
from collections.abc import Callable, Iterator
from functools import cache
from typing import ParamSpec, TypeVar

__all__ = ["kept_freed_memory", "keeps_freed_memory", "can_keep_freed_memory"]

# mallopt's parameters and glibc's defaults for them (malloc.h, glibc's malloc.c)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int: the largest trim threshold it can say
_P, _R = ParamSpec("_P"), TypeVar("_R")
_held = 0  # blocks of kept_freed_memory open now (nested, or in several threads)
_lock = threading.Lock()


@cache
def _glibc():
    """glibc's ``libc`` as a ctypes library, or None where the C library is another
    (``platform.libc_ver`` reads the Python binary: once a process)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def can_keep_freed_memory() -> bool:
    """Whether :func:`kept_freed_memory` changes anything here: glibc, and no malloc
    setting of the user's in ``GLIBC_TUNABLES``."""
    return "glibc.malloc." not in os.environ.get("GLIBC_TUNABLES", "") and _glibc() is not None


@contextlib.contextmanager
def kept_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Within the block, glibc keeps freed memory for reuse (see the module's text);
    yields whether it does. Blocks nest (a judge trained inside a run's evaluation,
    say): glibc's limits change when the first opens and come back when the last
    closes, with the free memory at the heap's top returned (``malloc_trim``); the
    threshold for ``mmap`` stays where it was, no longer adjusted as blocks are freed
    (glibc stops adjusting it once a limit is set by hand)."""
    global _held
    libc = _glibc() if enabled and can_keep_freed_memory() else None
    if libc is None:
        yield False
        return
    with _lock:
        if _held == 0:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
        _held += 1
    try:
        yield True
    finally:
        with _lock:
            _held -= 1
            if _held == 0:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)


def keeps_freed_memory(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn``, each call of it run within :func:`kept_freed_memory` (scoring a model:
    its encodings, fits and ELBO terms allocate and free alike batch after batch)."""

    @functools.wraps(fn)
    def kept(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with kept_freed_memory():
            return fn(*args, **kwargs)

    return kept
