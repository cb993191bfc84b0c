"""The procedural rotating-chairs dataset."""

import math

import numpy as np
import pytest

from stvae.data import chairs, generate
from stvae.data.chairs import (
    AZIMUTH_BINS,
    HELD_OUT,
    TRAIN_OFFSET,
    VIEWS,
    chair_boxes,
    render_views,
)


def test_identities_are_deterministic_and_different():
    a = render_views(3, np.array([0.4]))
    np.testing.assert_array_equal(a, render_views(3, np.array([0.4])))
    views = [render_views(i, np.array([0.4]))[0] for i in range(12)]
    for i in range(12):
        for j in range(i):
            assert np.abs(views[i] - views[j]).mean() > 0.005, (i, j)
    assert len({len(chair_boxes(i)) for i in range(50)}) >= 4  # several structures


def test_frames_show_a_shaded_chair_on_black():
    img = render_views(TRAIN_OFFSET, np.linspace(0, 2 * math.pi, 8, endpoint=False))
    assert img.shape == (8, 64, 64) and img.dtype == np.float32
    for frame in img:
        covered = (frame > 0).mean()
        assert 0.05 < covered < 0.6  # a chair, not an empty or full frame
        assert frame[0].max() == 0 and frame[:, 0].max() == 0  # it fits inside the frame
        assert len(np.unique(np.round(frame[frame > 0], 3))) >= 3  # several shaded faces


def test_rotation_is_about_the_vertical_axis():
    full = render_views(5, np.array([0.3, 0.3 + 2 * math.pi]))
    np.testing.assert_allclose(full[0], full[1], atol=1e-5)
    # quarter turn changes the view; the silhouette's vertical extent stays the same
    quarter = render_views(5, np.array([0.3, 0.3 + math.pi / 2]))
    assert np.abs(quarter[0] - quarter[1]).mean() > 0.01
    rows = [np.flatnonzero(q.max(1) > 0) for q in quarter]
    assert abs(rows[0].min() - rows[1].min()) <= 4 and abs(rows[0].max() - rows[1].max()) <= 4


def test_videos_rotate_with_labels():
    d = generate("chairs", 6, 16, seed=1)
    assert d["videos"].shape == (6, 16, 64, 64) and d["videos"].dtype == np.uint8
    assert (d["static_labels"] >= TRAIN_OFFSET).all()
    steps = np.angle(np.exp(1j * np.diff(d["angles"], axis=1)))  # wrapped differences
    assert np.allclose(steps, steps[:, :1], atol=1e-4)  # constant speed per video
    assert (np.abs(steps) >= math.radians(5) - 1e-4).all() and (
        np.abs(steps) <= math.radians(15) + 1e-4
    ).all()
    grid = np.rint(d["angles"] / (2 * math.pi / VIEWS)).astype(int)
    np.testing.assert_array_equal(d["temporal_labels"], grid * AZIMUTH_BINS // VIEWS)


def test_held_out_chairs_are_the_ten_test_identities():
    d = generate("chairs", 40, 2, seed=0, split="test")
    assert set(d["static_labels"]) <= set(range(HELD_OUT))
    assert len(set(d["static_labels"])) == HELD_OUT


@pytest.mark.parametrize("seed", [0, 1])
def test_generation_is_deterministic(seed):
    a, b = generate("chairs", 2, 3, seed=seed), generate("chairs", 2, 3, seed=seed)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_score_split_shows_the_held_out_chairs_between_the_fit_views():
    fit = generate("chairs", 20, 16, seed=0, split="test-fit")
    score = generate("chairs", 20, 16, seed=0, split="test-score")
    assert set(score["static_labels"]) <= set(range(HELD_OUT))
    assert not set(fit["image_ids"].ravel()) & set(score["image_ids"].ravel())
    half_step = math.pi / VIEWS  # 2.5 degrees
    off_grid = np.mod(score["angles"] + 1e-5, 2 * half_step) - 1e-5
    np.testing.assert_allclose(off_grid, half_step, atol=1e-4)
    # the same chair, the same motion: images differ, but only slightly (a 2.5-degree turn)
    same = generate("chairs", 20, 16, seed=0, split="test")
    np.testing.assert_array_equal(same["videos"], fit["videos"])
    diff = np.abs(score["videos"].astype(int) - fit["videos"].astype(int)).mean()
    assert 0 < diff < 10


def test_rendered_views_are_kept_on_disk_and_damaged_files_rendered_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STVAE_CACHE", "off")
    chairs._view_bank.cache_clear()
    fresh = chairs._view_bank(1003)
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv("STVAE_CACHE", str(tmp_path))
    chairs._view_bank.cache_clear()
    assert np.array_equal(chairs._view_bank(1003), fresh)
    (kept,) = chairs.cache_dir().glob("1003-*.npy")
    assert np.array_equal(np.load(kept), fresh) and not list(chairs.cache_dir().glob(".*tmp"))
    chairs._view_bank.cache_clear()
    kept.write_bytes(np.zeros(10, np.uint8).tobytes())  # damaged: not an .npy any more
    assert np.array_equal(chairs._view_bank(1003), fresh)
    assert np.array_equal(np.load(kept), fresh)  # replaced by a whole file
    chairs._view_bank.cache_clear()
    kept.unlink()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("STVAE_CACHE", str(blocked))
    assert np.array_equal(chairs._view_bank(1003), fresh)  # rendered, not an error
    chairs._view_bank.cache_clear()


def test_the_cache_folder_is_named_by_the_renderers_source(tmp_path, monkeypatch):
    import hashlib

    from stvae.cache import cache_dir

    digest = hashlib.sha256(open(chairs.__file__, "rb").read()).hexdigest()[:12]
    assert chairs.cache_dir().name == f"chairs-{digest}"
    # another source, another folder: what older code made is never read
    other = tmp_path / "renderer.py"
    other.write_text("# another renderer\n")
    assert cache_dir("chairs", other).name != chairs.cache_dir().name
    monkeypatch.setenv("STVAE_CACHE", "off")
    assert chairs.cache_dir() is None
