"""Suite-wide settings."""

import importlib.util
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def chair_cache(tmp_path_factory):
    """Rendered chair views and the sprites judge go to a folder of this test session, not
    the user's cache (each chair is rendered once, the judge trained once); subprocesses
    inherit it, and the workers of `pytest -n` share it (stvae.cache makes an entry once)."""
    before = os.environ.get("STVAE_CACHE")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's folder is in the session's
        folder = tmp_path_factory.getbasetemp().parent / "stvae-cache"
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp("stvae-cache")
    os.environ["STVAE_CACHE"] = str(folder)
    yield
    if before is None:
        os.environ.pop("STVAE_CACHE", None)
    else:
        os.environ["STVAE_CACHE"] = before


@pytest.fixture
def small_probe_sets(monkeypatch):
    """Probe sets of 64 videos instead of 256 (and the field's set of sprites of 8
    characters), for tests of what evaluation writes and how it is reported (not of the
    scores' values), where encoding videos of 64 x 64 RGB frames is most of the time."""
    from stvae import evaluate, judge

    monkeypatch.setattr(evaluate, "PROBE_VIDEOS", 64)
    monkeypatch.setattr(judge, "FIELD_CHARACTERS", 8)  # the field's set: 72 clips, not 729


@pytest.fixture(scope="session")
def bench_module():
    """Loads a script of bench/ as ``python bench/NAME.py`` runs it (bench/ first on
    sys.path while it imports, for its sibling modules): ``bench_module("offset_cost")``."""
    bench = Path(__file__).resolve().parents[1] / "bench"

    def load(name: str):
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(bench))
            spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return module

    return load
