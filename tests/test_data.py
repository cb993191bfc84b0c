"""Bouncing MNIST generation, digit splits, and the dataset file format."""

import gzip
import struct

import numpy as np
import pytest

from stvae import StvaeError
from stvae.data import ClipSource, generate, load_dataset, save_dataset
from stvae.data.bouncing_mnist import _bounce, location_class
from stvae.data.digits import load_digits


@pytest.fixture(scope="module")
def data():
    return generate("bouncing-mnist", 40, 20, seed=3)


def test_format(data):
    assert data["videos"].shape == (40, 20, 64, 64) and data["videos"].dtype == np.uint8
    assert data["static_labels"].shape == (40,)
    assert data["temporal_labels"].shape == (40, 20)
    assert data["positions"].shape == (40, 20, 2)


def test_deterministic_given_seed(data):
    again = generate("bouncing-mnist", 40, 20, seed=3)
    for k in data:
        np.testing.assert_array_equal(data[k], again[k])
    other = generate("bouncing-mnist", 40, 20, seed=4)
    assert not np.array_equal(data["videos"], other["videos"])


def test_one_whole_digit_per_frame_at_the_labelled_position(data):
    train = load_digits("train")
    ink = {int(lab): set() for lab in range(10)}
    for img, lab in zip(train.images, train.labels, strict=True):
        ink[int(lab)].add(img.tobytes())
    for v in range(len(data["videos"])):
        for t in range(20):
            r, c = (data["positions"][v, t] - 14).astype(int)
            frame = data["videos"][v, t]
            crop = frame[r : r + 28, c : c + 28]
            assert int(frame.astype(np.int64).sum()) == int(crop.astype(np.int64).sum())
            assert crop.tobytes() in ink[int(data["static_labels"][v])]


def test_temporal_label_is_the_authors_cell_of_the_travel_range(data):
    top_left = data["positions"] - 14
    assert top_left.min() >= 0 and top_left.max() <= 36
    x = top_left / 36  # the corner's position in [0, 1] over its travel range
    cell = np.minimum((3 * x).astype(int), 2)  # int(3x), the far wall kept in the last third
    np.testing.assert_array_equal(data["temporal_labels"], cell[..., 0] * 3 + cell[..., 1])
    assert str(data["temporal_definition"]) == "travel-thirds"


@pytest.mark.parametrize(
    ("row", "col", "cell"),
    [(0, 0, 0), (0, 36, 2), (36, 0, 6), (36, 36, 8), (18, 18, 4), (11, 12, 1), (24, 23, 7)],
)
def test_a_digit_at_a_known_corner_lands_in_the_known_cell(row, col, cell):
    """Pixels, not the formula: place a digit by its top-left corner and read the cell."""
    frame = np.zeros((64, 64), np.uint8)
    frame[row : row + 28, col : col + 28] = 255
    rows, cols = np.nonzero(frame)
    corner = np.array([rows.min(), cols.min()])
    assert location_class(corner) == cell


def test_location_classes_are_near_balanced():
    d = generate("bouncing-mnist", 2000, 16, seed=5)
    share = np.bincount(d["temporal_labels"].ravel(), minlength=9) / d["temporal_labels"].size
    assert share.min() > 0.08 and share.max() < 0.15  # 1/9 = 0.111; frame thirds gave 1/3
    # thirds of the 64-pixel frame by the centre put about a third of frames in one cell
    centre_cell = np.minimum((d["positions"] * 3 // 64).astype(int), 2)
    old = np.bincount((centre_cell[..., 0] * 3 + centre_cell[..., 1]).ravel(), minlength=9)
    assert old.max() / old.sum() > 0.25


def test_motion_is_constant_speed_with_bounces():
    rng = np.random.default_rng(0)
    start, angle = rng.uniform(0, 1, (200, 2)), rng.uniform(0, 2 * np.pi, 200)
    velocity = 0.1 * np.stack([np.sin(angle), np.cos(angle)], 1)
    path = _bounce(start, velocity, 30)  # [V, T, 2] in [0, 1]
    assert path.min() >= 0 and path.max() <= 1
    # per axis the distance moved a frame is |v| away from walls, and never more
    moved = np.abs(np.diff(path, axis=1))
    assert (moved <= np.abs(velocity)[:, None] + 1e-12).all()
    straight = np.isclose(moved, np.abs(velocity)[:, None]).all(axis=2)
    assert straight.mean() > 0.8
    np.testing.assert_allclose(np.hypot(*np.diff(path, axis=1)[straight].T), 0.1)
    # bounces happen: some axis reverses direction
    signs = np.sign(np.diff(path[..., 1], axis=1))
    assert ((signs[:, 1:] * signs[:, :-1]) < 0).any()


def test_rendered_motion_is_3_6_pixels_a_frame(data):
    step = np.diff(data["positions"], axis=1)  # [V, T-1, 2] in pixels, rounded positions
    speed = np.hypot(step[..., 0], step[..., 1])
    assert speed.max() <= 3.6 + np.sqrt(2) + 1e-6  # the speed plus rounding
    assert abs(np.median(speed) - 3.6) < 0.5
    assert (speed.sum(axis=1) > 0).all()


def test_other_speeds_by_flag():
    slow = generate("bouncing-mnist", 50, 10, seed=1, speed=(0.0, 0.0))
    assert (np.diff(slow["positions"], axis=1) == 0).all()
    fast = generate("bouncing-mnist", 50, 10, seed=1, speed=(0.2, 0.3))
    step = np.hypot(*np.diff(fast["positions"], axis=1).transpose(2, 0, 1))
    assert np.median(step) > 6


def test_digit_splits_are_disjoint_and_complete():
    train, test = load_digits("train"), load_digits("test")
    assert len(train.labels) == 4500 and len(test.labels) == 500
    assert set(np.unique(test.labels)) == set(range(10)) == set(np.unique(train.labels))
    train_set = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in train_set for im in test.images)


def test_held_out_halves_share_no_image_and_hold_every_digit():
    test = load_digits("test")
    fit, score = load_digits("test-fit"), load_digits("test-score")
    assert len(fit.ids) == len(score.ids) == 250
    assert not set(fit.ids) & set(score.ids)
    assert set(fit.ids) | set(score.ids) == set(test.ids)
    assert (np.bincount(fit.labels) == 25).all() and (np.bincount(score.labels) == 25).all()
    assert not set(load_digits("train").ids) & set(test.ids)
    d = generate("bouncing-mnist", 30, 2, seed=0, split="test-score")
    assert set(d["image_ids"]) <= set(score.ids)
    # by pixels too, not only by the ids the renderer reports: the halves share no
    # bitmap, and each test-score video shows a bitmap of its half, the one its id names
    fit_pixels = {im.tobytes() for im in fit.images}
    assert not any(im.tobytes() in fit_pixels for im in score.images)
    by_id = dict(zip(score.ids.tolist(), score.images, strict=True))
    for v in range(30):
        r, c = (d["positions"][v, 0] - 14).astype(int)
        assert np.array_equal(d["videos"][v, 0, r : r + 28, c : c + 28], by_id[d["image_ids"][v]])


def test_test_split_videos_use_only_held_out_digits():
    test = load_digits("test")
    held = {im.tobytes() for im in test.images}
    d = generate("bouncing-mnist", 10, 2, seed=0, split="test")
    for v in range(10):
        r, c = (d["positions"][v, 0] - 14).astype(int)
        assert d["videos"][v, 0, r : r + 28, c : c + 28].tobytes() in held


def _write_idx(path, arr, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(
        struct.pack(">I", s) for s in arr.shape
    )
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_full_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(30, 28, 28))
    labels = np.arange(30) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, gz=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:10])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:10])
    train = load_digits("train", tmp_path)
    np.testing.assert_array_equal(train.images, imgs)
    np.testing.assert_array_equal(load_digits("test", tmp_path).labels, labels[:10])
    d = generate("bouncing-mnist", 3, 4, seed=0, mnist_dir=str(tmp_path))
    assert d["videos"].shape == (3, 4, 64, 64)


def test_truncated_idx_is_a_user_error(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28)))
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(StvaeError, match="truncated"):
        load_digits("train", tmp_path)
    with pytest.raises(StvaeError, match="not a directory"):
        load_digits("train", tmp_path / "nope")


def test_roundtrip_file(tmp_path, data):
    path = save_dataset(data, tmp_path / "d.npz")
    back = load_dataset(path)
    for k in data:
        np.testing.assert_array_equal(back[k], data[k])
    assert not list(tmp_path.glob(".tmp-*"))


def test_npy_float_array(tmp_path):
    arr = np.random.default_rng(0).random((3, 8, 64, 64)).astype(np.float64)
    np.save(tmp_path / "v.npy", arr)
    back = load_dataset(tmp_path / "v.npy")
    assert back["videos"].dtype == np.float32 and set(back) == {"videos"}


def _bad(tmp_path, name, make):
    path = tmp_path / name
    make(path)
    return path


BAD_FILES = [
    ("missing.npz", lambda p: None, "no such file"),
    ("empty.npz", lambda p: p.write_bytes(b""), "empty"),
    ("corrupt.npz", lambda p: p.write_bytes(b"PK\x03\x04garbage"), "cannot read"),
    ("corrupt.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00garbage"), "cannot read"),
    ("shape.npy", lambda p: np.save(p, np.zeros((4, 64, 64), np.uint8)), r"\[V, T, H, W\]"),
    (
        "channels.npy",
        lambda p: np.save(p, np.zeros((2, 4, 9, 9, 7), np.uint8)),
        r"\[V, T, H, W, C\]",
    ),
    ("nan.npy", lambda p: np.save(p, np.full((1, 2, 64, 64), np.nan)), "NaN"),
    ("range.npy", lambda p: np.save(p, np.full((1, 2, 64, 64), 3.0)), r"\[0, 1\]"),
    ("int.npy", lambda p: np.save(p, np.zeros((1, 2, 64, 64), np.int32)), "uint8 or float"),
    ("novideos.npz", lambda p: np.savez(p, x=np.zeros(3)), "no 'videos'"),
    (
        "labels.npz",
        lambda p: np.savez(
            p, videos=np.zeros((3, 2, 64, 64), np.uint8), static_labels=np.zeros(2, int)
        ),
        "static_labels must have shape",
    ),
    ("video.txt", lambda p: p.write_text("hello"), "unsupported file type"),
    ("pickle.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "cannot read"),
]


@pytest.mark.parametrize("name, make, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_user_errors_naming_the_file(tmp_path, name, make, message):
    path = _bad(tmp_path, name, make)
    with pytest.raises(StvaeError, match=message) as info:
        load_dataset(path)
    assert name in str(info.value)


def test_clip_source_needs_enough_frames():
    with pytest.raises(StvaeError, match="fewer than the 16"):
        ClipSource(np.zeros((2, 8, 64, 64), np.uint8), 16, "x.npy")
    src = ClipSource(np.arange(2 * 20).reshape(2, 20, 1, 1).repeat(64, 2).repeat(64, 3), 5, "x")
    clip = src.batch(4, np.random.default_rng(0))
    assert clip.shape == (4, 5, 64, 64)
    first = clip[:, :, 0, 0]
    assert (np.diff(first, axis=1) == 1).all()  # consecutive frames of one video


def test_speed_is_config_data_and_old_configs_keep_their_speed():
    from stvae.data import DataConfig
    from stvae.data.bouncing_mnist import LEGACY_SPEED, SPEED
    from stvae.train import TrainConfig

    assert DataConfig().speed == SPEED == (0.1, 0.1)
    cfg = TrainConfig(data=DataConfig(speed=[0.05, 0.1]))
    back = TrainConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.data.speed == (0.05, 0.1)
    old = cfg.to_dict()
    del old["data"]["speed"]  # a config.json written before 0.2
    assert TrainConfig.from_dict(old).data.speed == LEGACY_SPEED
    for bad in ([0.2, 0.1], [-0.1, 0.1], [0.1], "fast"):
        with pytest.raises(StvaeError, match="speed"):
            DataConfig(speed=bad)
    # the speed is Bouncing MNIST's own: other data keep its default or are refused
    assert DataConfig(source="sprites").options is None
    with pytest.raises(StvaeError, match="speed is an option of bouncing-mnist; --data chairs"):
        DataConfig(source="chairs", speed=(0.2, 0.2))
    sprites = cfg.replace(**{"data.source": "sprites", "data.speed": (0.1, 0.1)}).to_dict()
    del sprites["data"]["speed"]  # an old config.json of other data gets no legacy speed
    assert TrainConfig.from_dict(sprites).data.speed == SPEED


@pytest.mark.slow
def test_a_dataset_write_past_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    import subprocess
    import sys

    limited = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
        "from stvae.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    out = tmp_path / "d.npz"
    cmd = [sys.executable, "-c", limited, "dataset", "bouncing-mnist", "--videos", "50"]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "could not be written (File too large" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind
