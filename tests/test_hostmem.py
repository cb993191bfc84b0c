"""stvae.hostmem: glibc keeps freed memory while a CPU run trains, and only then.

Counted in page faults (a process's own count, not a timing), each case in a fresh
process so that no earlier test's heap is reused: a block larger than glibc's largest
mmap threshold (32 MiB) is by default a fresh mapping at every allocation, so each one
faults all its pages again (4 KiB pages, or 2 MiB ones where transparent huge pages are
always on); kept, the heap's freed blocks serve the next ones once it has grown to fit
(a few allocations). Counts are compared with the default measured the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stvae.config import HOW_FIELDS, RESUMABLE, TrainConfig
from stvae.hostmem import can_keep_freed_memory, kept_freed_memory

pytestmark = pytest.mark.skipif(
    not can_keep_freed_memory(), reason="glibc only, and not with the user's GLIBC_TUNABLES"
)

COUNT = """
import resource, sys, torch
from stvae.hostmem import kept_freed_memory
with kept_freed_memory(sys.argv[1] == "on") as kept:
    for _ in range(16):  # the heap grows to fit (kept) or nothing is kept (default)
        torch.ones(2**24)  # 64 MiB of float32, filled, then freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        torch.ones(2**24)
    print(int(kept), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(keep: bool, **env) -> tuple[bool, int]:
    """(whether glibc kept freed memory, page faults of 8 more 64 MiB tensors) in a fresh
    process after 16 of them."""
    run = subprocess.run(
        [sys.executable, "-c", COUNT, "on" if keep else "off"],
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    kept, count = run.stdout.split()
    return kept == "1", int(count)


def test_kept_memory_is_reused_and_off_or_the_users_setting_changes_nothing():
    kept, default = faults(False)
    assert not kept and default >= 8 * 32  # fresh mappings: at least their 2 MiB pages fault
    kept, inside = faults(True)
    assert kept and inside * 8 < default  # the heap's freed blocks are reused
    # a malloc setting of the user's (here glibc's default, said explicitly) wins
    kept, users = faults(True, GLIBC_TUNABLES="glibc.malloc.hugetlb=0")
    assert not kept and users * 2 > default


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


class _Libc:
    """Records the calls glibc would get."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))


def test_nested_blocks_change_glibcs_limits_once_and_restore_them_at_the_last(monkeypatch):
    import stvae.hostmem as hostmem

    libc = _Libc()
    monkeypatch.setattr(hostmem, "_glibc", lambda: libc)
    with kept_freed_memory() as outer:
        set_at_first = list(libc.calls)
        with kept_freed_memory() as inner:
            pass
        after_inner = list(libc.calls)
    assert outer and inner
    never_map = ("mallopt", hostmem._M_MMAP_MAX, 0)
    assert set_at_first == [never_map, ("mallopt", hostmem._M_TRIM_THRESHOLD, 2**31 - 1)]
    assert after_inner == set_at_first  # the inner block's end leaves the outer's setting
    restored = libc.calls[len(set_at_first) :]
    assert ("mallopt", hostmem._M_MMAP_MAX, 65536) in restored and restored[-1][0] == "malloc_trim"
    with kept_freed_memory():  # and a later block sets them again
        assert libc.calls[-2:] == set_at_first


def test_the_judge_trains_with_freed_memory_kept(monkeypatch):
    import stvae.judge as judge_module

    seen = []
    real = judge_module.kept_freed_memory

    def record(*args):
        seen.append(args)
        return real(*args)

    monkeypatch.setattr(judge_module, "kept_freed_memory", record)
    judge_module._train(5, 4, 2, 2)
    assert seen == [()]


def test_scoring_a_model_keeps_freed_memory_while_it_runs(monkeypatch, tmp_path):
    import stvae.hostmem as hostmem
    from stvae import curve, evaluate
    from stvae.train import train

    config = TrainConfig().replace(
        device="cpu",
        compile=False,
        steps=1,
        batch_videos=2,
        **{"data.frames": 4, "model.features": 2},
    )
    train(config, tmp_path / "run")
    libc = _Libc()
    monkeypatch.setattr(hostmem, "_glibc", lambda: libc)
    inside = []
    real = evaluate.encode_videos

    def encode(*args, **kwargs):
        inside.append(hostmem._held)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "encode_videos", encode)
    evaluate.evaluate_run(tmp_path / "run", videos=16, probe="linear")
    assert inside and all(held >= 1 for held in inside)  # every encoding inside a block
    assert hostmem._held == 0 and libc.calls[-1][0] == "malloc_trim"  # and all closed
    kept = hostmem.keeps_freed_memory(len).__code__
    for fn in (evaluate.encode_run, evaluate.evaluate_model, curve.curve_run, curve.probe_spread):
        assert fn.__code__ is kept, fn.__name__
