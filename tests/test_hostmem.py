"""stvae.hostmem: glibc keeps freed memory while a CPU run trains, and only then.

Counted in page faults (the process's own count, not a timing): a block larger than
glibc's largest mmap threshold (32 MiB) is a fresh mapping at every allocation by
default, so touching it again faults every page; kept, the same memory is reused.
"""

from __future__ import annotations

import resource

import pytest
import torch

from stvae.config import HOW_FIELDS, RESUMABLE, TrainConfig
from stvae.hostmem import can_keep_freed_memory, kept_freed_memory

pytestmark = pytest.mark.skipif(
    not can_keep_freed_memory(), reason="glibc only, and not with the user's GLIBC_TUNABLES"
)

PAGES = 64 * 2**20 // 4096  # a 64 MiB block's pages


def faults(times: int = 8) -> int:
    """Minor page faults of allocating, touching and freeing a 64 MiB tensor ``times``
    times (the first allocation warms either way, so it is left out)."""
    torch.ones(PAGES * 1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.ones(PAGES * 1024)  # 4-byte floats: 64 MiB, filled, then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_kept_memory_is_reused_and_the_default_comes_back():
    default = faults()
    assert default > 4 * PAGES  # each block a fresh mapping: every page faults again
    with kept_freed_memory() as kept:
        assert kept
        inside = faults()
    assert inside < PAGES  # the block's pages are reused: at most a few fault
    assert faults() > 4 * PAGES  # glibc's limits are back after the block


def test_off_changes_nothing():
    with kept_freed_memory(False) as kept:
        assert not kept
        assert faults() > 4 * PAGES


def test_the_users_glibc_setting_wins(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    with kept_freed_memory() as kept:
        assert not kept
        assert faults() > 4 * PAGES


def test_it_is_on_by_default_and_a_setting_of_how_a_run_trains():
    assert TrainConfig().keep_freed_memory
    assert "keep_freed_memory" in HOW_FIELDS and "keep_freed_memory" in RESUMABLE
    # a config.json from before the field reads it as on
    old = TrainConfig().to_dict()
    del old["keep_freed_memory"]
    assert TrainConfig.from_dict(old, "config.json").keep_freed_memory


def test_train_keeps_it_only_on_a_cpu_and_when_asked(monkeypatch, tmp_path):
    import stvae.train as train_module

    seen = []

    def record(enabled):
        seen.append(enabled)
        return kept_freed_memory(False)

    monkeypatch.setattr(train_module, "kept_freed_memory", record)
    base = {"steps": 1, "batch_videos": 2, "data.frames": 4, "model.features": 2}
    for keep in (True, False):
        config = TrainConfig().replace(device="cpu", keep_freed_memory=keep, **base)
        train_module.train(config, tmp_path / f"run-{keep}")
    assert seen == [True, False]
