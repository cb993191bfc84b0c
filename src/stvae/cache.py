"""The on-disk cache of things that are slow to make and a pure function of the code that
makes them: rendered chair views, the sprites judge.

``$STVAE_CACHE`` (default ``~/.cache/stvae``; ``off`` keeps nothing) holds one folder per
kind of thing, named by a hash of the source files that make it, so that a change of
those files never reads what older code made. An unreadable or damaged entry is made
again; an unwritable cache is no error.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["cache_dir"]


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
