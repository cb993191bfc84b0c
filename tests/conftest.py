"""Suite-wide settings."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def chair_cache(tmp_path_factory):
    """Rendered chair views go to a folder of this test session, not the user's cache (and
    every test that meets a chair renders it once); subprocesses inherit it."""
    before = os.environ.get("STVAE_CACHE")
    os.environ["STVAE_CACHE"] = str(tmp_path_factory.mktemp("stvae-cache"))
    yield
    if before is None:
        os.environ.pop("STVAE_CACHE", None)
    else:
        os.environ["STVAE_CACHE"] = before


@pytest.fixture
def small_probe_sets(monkeypatch):
    """Probe sets of 64 videos instead of 256, for tests of what evaluation writes and how
    it is reported (not of the scores' values), where encoding 256 videos of 64 x 64 RGB
    frames is most of the time."""
    from stvae import evaluate

    monkeypatch.setattr(evaluate, "PROBE_VIDEOS", 64)
