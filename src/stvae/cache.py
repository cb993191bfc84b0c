"""The on-disk cache of things that are slow to make and a pure function of the code that
makes them: rendered chair views, the sprites judge.

``$STVAE_CACHE`` (default ``~/.cache/stvae``; ``off`` keeps nothing) holds one folder per
kind of thing, named by a hash of the source files that make it, so that a change of
those files never reads what older code made. An unreadable or damaged entry is made
again; an unwritable cache is no error. An entry that takes long to make is made under
:func:`one_maker`, so that processes wanting it at once (parallel runs evaluating on
sprites, test workers) make it once and the others read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: each process makes its own
    fcntl = None

__all__ = ["cache_dir", "one_maker"]


def cache_dir(name: str, *sources: str | Path) -> Path | None:
    """``$STVAE_CACHE/<name>-<hash of the sources' bytes>`` (not created here); None when
    ``STVAE_CACHE=off``."""
    where = os.environ.get("STVAE_CACHE", str(Path.home() / ".cache" / "stvae"))
    if where == "off":
        return None
    digest = hashlib.sha256()
    for source in sources:
        digest.update(Path(source).read_bytes())
    return Path(where) / f"{name}-{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def one_maker(folder: Path | None, name: str) -> Iterator[None]:
    """Hold ``folder/.<name>.lock`` while the body looks for the entry ``name`` and makes
    it when absent: a second process asking for it meanwhile waits here, then finds it
    made. No lock (and no error) when the cache is off, unwritable or not POSIX."""
    handle = None
    if folder is not None and fcntl is not None:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / f".{name}.lock", "a")  # noqa: SIM115 (closed below)
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield
