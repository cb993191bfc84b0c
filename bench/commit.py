"""The commit a bench script's report names: ``git rev-parse --short HEAD`` of this
checkout (empty outside one). Imported by the scripts of this folder, which run with it
on their path (``python bench/<script>.py``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def short_commit() -> str:
    """This checkout's HEAD, abbreviated as git abbreviates it."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
