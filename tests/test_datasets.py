"""Contract of every registered generated dataset (stvae.data.registry.DATASETS), and a toy
dataset registered in one place that trains, evaluates and draws like the others."""

import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from stvae.data import DataConfig, GeneratedSource, generate, registry
from stvae.data.on_device import DeviceChairs
from stvae.data.spec import SPLITS, DatasetSpec
from stvae.errors import StvaeError
from stvae.evaluate import evaluate_run
from stvae.figures import make_figures
from stvae.model import ModelConfig
from stvae.train import TrainConfig, train

DATASETS = registry.DATASETS


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_draws_labelled_videos_of_its_channels(name):
    spec = DATASETS[name]
    for split in SPLITS:
        d = generate(name, 5, 4, seed=1, split=split)
        shape = (5, 4, 64, 64) if spec.channels == 1 else (5, 4, 64, 64, 3)
        assert d["videos"].shape == shape and d["videos"].dtype == np.uint8
        assert d["temporal_labels"].shape == (5, 4)
        assert "static_labels" in d or "attributes" in d
        assert len(d["image_ids"]) == 5
    again = generate(name, 5, 4, seed=1, split="train")
    assert (again["videos"] == generate(name, 5, 4, seed=1, split="train")["videos"]).all()
    assert GeneratedSource(4, "train", name=name).channels == spec.channels
    assert pickle.loads(pickle.dumps(spec)).name == name  # data worker processes receive it


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "chairs" else n for n in DATASETS]
)  # chairs: rendering 3-D chairs is seconds
def test_every_datasets_splits_share_no_image(name):
    """By the ids the renderer reports, and where a dataset has static attributes (a
    sprite's colours, checked against its pixels in test_sprites.py) by those too; Bouncing
    MNIST's digit bitmaps are compared pixel by pixel in test_data.py."""
    drawn = {s: generate(name, 64, 2, seed=2, split=s) for s in SPLITS}
    ids = {s: set(d["image_ids"].ravel()) for s, d in drawn.items()}
    assert not ids["train"] & ids["test"]
    assert not ids["test-fit"] & ids["test-score"]
    if "attributes" in drawn["train"]:
        looks = {s: {tuple(a) for a in d["attributes"]} for s, d in drawn.items()}
        assert not looks["train"] & looks["test"]
        assert not looks["test-fit"] & looks["test-score"]


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.on_device is not None])
def test_every_device_path_draws_what_the_host_path_draws(name, monkeypatch):
    """The same keys, shapes and dtypes, and the same distribution: 64 videos of each
    path agree on the frames' brightness, ink and motion, the temporal classes' shares
    and the ranges of every other value (the paths draw from different generators, so
    no value is compared one to one)."""
    monkeypatch.setattr(  # 3 chairs: the 2,000-chair bank takes minutes
        registry, "DeviceChairs", lambda f, d, workers: DeviceChairs(f, d, 3, workers=0)
    )
    spec = DATASETS[name]
    source = GeneratedSource(4, "train", name=name)
    made = spec.on_device(source.context, 4, source.options, "cpu")
    device = {k: v.numpy() for k, v in made.sample(0, 0, range(64)).items()}
    host = source.sample(64, np.random.default_rng(0))
    assert set(device) <= set(host)  # the host's may carry metadata (temporal_definition)
    for key, value in device.items():
        assert value.shape == host[key].shape and value.dtype == host[key].dtype, key
    dv, hv = device["videos"].astype(float), host["videos"].astype(float)  # [64, 4, 64, 64]
    for what, stat in {
        "brightness": lambda v: v.mean(),
        "ink": lambda v: (v > 0).mean(),
        "motion": lambda v: np.abs(np.diff(v, axis=1)).mean(),
    }.items():
        assert stat(dv) == pytest.approx(stat(hv), rel=0.2), what
    labels = [d["temporal_labels"].ravel() for d in (device, host)]
    shares = [np.bincount(y, minlength=9) / y.size for y in labels]
    assert 0.5 * np.abs(shares[0] - shares[1]).sum() < 0.2  # total variation
    for key in set(device) - {"videos", "temporal_labels"}:  # the labels, ids, positions,
        lo, hi = host[key].min(), host[key].max()  # angles: of the split, in the same range
        margin = 0.1 * (hi - lo)
        assert lo - margin <= device[key].min() and device[key].max() <= hi + margin, key


@dataclass(frozen=True)
class SquareOptions:
    """The toy's own setting: how much each size class adds to the square's side."""

    grow: int = 6

    def __post_init__(self):
        if not 1 <= self.grow <= 8:
            raise StvaeError(f"grow must be between 1 and 8; got {self.grow}")


def _squares(context, videos, frames, rng, split, options: SquareOptions) -> dict:
    """A toy: a square whose size is the static class, sliding right a column a frame."""
    size = rng.integers(0, 3, size=videos)  # [V]
    start = rng.integers(0, 30, size=videos)
    x = (start[:, None] + 4 * np.arange(frames)) % 48  # [V, N]
    out = np.zeros((videos, frames, 64, 64), np.uint8)
    for v in range(videos):
        side = 8 + options.grow * size[v]
        for t in range(frames):
            out[v, t, 20 : 20 + side, x[v, t] : x[v, t] + side] = 255
    offset = {"train": 0, "test": 1, "test-fit": 1, "test-score": 2}[split] * 10**6
    return {
        "videos": out,
        "static_labels": size,
        "temporal_labels": np.minimum(x // 16, 2),
        "image_ids": offset + rng.integers(0, 10**6, size=videos),
    }


def test_a_toy_dataset_registered_in_one_place_trains_evaluates_and_draws(
    tmp_path, monkeypatch, small_probe_sets
):
    """A dataset with an option of its own and a one-cell grid, registered in one place:
    its option reaches its renderer, and it trains, evaluates, draws its figures and its
    learning curve, and runs as a grid with its report. (Its option is not a field of a
    DataConfig made before it was registered, so runs here keep its default; a dataset in
    the registry at import has its options as fields and flags, as Bouncing MNIST's.)"""
    from stvae import reproduce as rep
    from stvae.curve import curve_run
    from stvae.data.spec import GridSpec

    toy = DatasetSpec(
        name="squares",
        channels=1,
        render=_squares,
        statics="sizes",
        describe={"images": "squares", "held": "held-out squares, half {}"},
        options=SquareOptions,
        grid=GridSpec(
            table1_features=4,
            paper_table1={},
            static_table="Table 2",
            static_columns=(),
            paper_static={},
            targets=("size", "column"),
            kinds=("hierarchical",),
        ),
    )
    monkeypatch.setitem(DATASETS, "squares", toy)  # the one place
    # its option is its own: taken by its name, checked by its dataclass, refused elsewhere
    wide, narrow = (generate("squares", 6, 2, 0, grow=g) for g in (6, 2))
    assert np.array_equal(wide["static_labels"], narrow["static_labels"])
    ink = [d["videos"].reshape(6, -1).astype(bool).sum(1) for d in (wide, narrow)]
    assert (ink[0] >= ink[1]).all() and (ink[0] > ink[1]).any()
    with pytest.raises(StvaeError, match="grow must be between 1 and 8"):
        generate("squares", 2, 2, 0, grow=0)
    with pytest.raises(StvaeError, match="dataset squares takes no option speed"):
        generate("squares", 2, 2, 0, speed=(0.1, 0.1))
    with pytest.raises(StvaeError, match="dataset chairs takes no option grow"):
        generate("chairs", 2, 2, 0, grow=2)
    cfg = TrainConfig(
        model=ModelConfig(kind="hierarchical", features=4),
        data=DataConfig(source="squares", frames=4),
        steps=4,
        batch_videos=2,
        log_every=1,
        snapshot_every=2,
        compile=False,
    )
    assert train(cfg, tmp_path / "run")["step"] == 4
    ev = evaluate_run(tmp_path / "run", probe="linear")
    assert ev.data == "held-out squares"
    assert ev.probe_sets["linear"]["fit"] == "held-out squares, half A"
    assert ev.probe_sets["linear"]["image_overlap"] == 0.0
    scores = ev.first("linear")
    assert scores.static_chance > 0 and 0 <= scores.static_accuracy <= 1 and scores.d_score > 0
    made = make_figures(tmp_path / "run", out=tmp_path / "figs")
    assert "fig2_swap.png" in made
    curve = curve_run(tmp_path / "run", probe="linear", quiet=True)
    assert [p["step"] for p in curve["points"]] == [2, 4]
    monkeypatch.setitem(rep.PRESETS, "cpu", cfg.replace(snapshot_every=0))
    out = {"out": tmp_path / "runs", "report_dir": tmp_path / "docs", "log": lambda s: None}
    (row,) = rep.reproduce("squares", only=["hierarchical-f4-beta1-seed0"], **out)
    assert row["model"] == "hierarchical" and row["d_score_rbf"] > 0
    assert "| hierarchical | 1 | " in (tmp_path / "docs" / "squares-cpu.md").read_text()


def test_a_spec_without_the_words_its_probe_sets_need_is_refused_when_made():
    with pytest.raises(ValueError, match=r"describe must have the keys \['held', 'images'\]"):
        DatasetSpec(name="x", channels=1, render=_squares, statics="s", describe={"fit": "?"})
    chairs_like = {"fit": "views on the grid", "score": "views off it"}
    DatasetSpec("y", 1, _squares, "s", training_images=False, describe=chairs_like)


@pytest.mark.parametrize("name", list(DATASETS))
def test_a_config_read_back_from_json_equals_the_one_written(name):
    """config.json round trip for every dataset: JSON gives lists where flags give tuples
    (Bouncing MNIST's speed, a default of every other dataset's config too); a grid cell
    compares its config with the run directory's to resume it, and a list against a tuple
    refused every chairs and sprites cell's run directory."""
    import json

    from stvae.config import TrainConfig, preset_config

    config = preset_config("cpu", {"data.source": name})
    back = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config
