"""bench/offset_cost.py: what a model's prior blocks pay for their per-video means."""

import numpy as np
import pytest
import torch

from stvae.model import ModelConfig, make_model


@pytest.fixture(scope="module")
def offset_cost(bench_module):
    return bench_module("offset_cost").offset_cost


def test_a_constant_per_video_offset_is_priced_by_each_blocks_prior(offset_cost):
    """Posterior means that move within each video plus a constant per video and feature:
    taking the constants out leaves the centred KL, and the difference is what eq 7 and
    eq 8 charge for them (docs/design.md): N c^2 / (2 (sigma2 + N)) a static feature, and
    for a temporal feature c^2 / 2 plus the cross term with the walk's start."""
    model = make_model(ModelConfig(kind="hierarchical", features=4, sigma2=0.01))
    rng = np.random.default_rng(0)
    v, n = 64, 16
    moving = rng.normal(0, 0.1, (v, n, 4))
    moving -= moving.mean(axis=1, keepdims=True)  # centred per video
    offsets = rng.normal(0, 0.5, (v, 1, 4))
    logvar = np.full((v, n, 4), -4.0)
    found = offset_cost(model, (moving + offsets).astype(np.float32), logvar.astype(np.float32))
    assert [b["prior"] for b in found] == ["static", "temporal"]
    static, temporal = found
    c2 = offsets[:, 0] ** 2  # [V, 4]
    static_cost = (n * c2[:, :2] / (2 * (0.01 + n))).sum(1).mean()
    assert static["kl"] - static["kl_centred"] == pytest.approx(static_cost, rel=1e-4)
    # the walk's precision applied to a constant reaches only the start: c^2 / 2 + c x_1
    start = moving[:, 0, 2:]
    temporal_cost = (c2[:, 2:] / 2 + offsets[:, 0, 2:] * start).sum(1).mean()
    assert temporal["kl"] - temporal["kl_centred"] == pytest.approx(temporal_cost, rel=1e-3)
    for b in found:  # the offsets hold most of each feature's spread here
        assert all(0.8 < f["video_mean_share"] <= 1.0 for f in b["features"])


def test_what_the_offsets_buy_is_measured_by_moving_only_them(bench_module):
    """The reconstruction the per-video means buy: zero when a block has no offsets to
    move; with a label of its own for every video, the label's part is all of them; with
    one label for all, it is nothing. Moving a block leaves the other block as encoded."""
    gain = bench_module("offset_cost").offset_gain
    torch.manual_seed(0)
    model = make_model(ModelConfig(kind="hierarchical", features=4))
    with torch.no_grad():  # batch-norm statistics of its own latents: a decoder that responds
        for layer in model.decoder.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                layer.momentum = None  # the plain mean over the passes
        model.train().decode(torch.randn(256, 4))
    rng = np.random.default_rng(1)
    v, n = 6, 3
    videos = rng.random((v, n, 64, 64)).astype(np.float32)
    mu = rng.normal(0, 1, (v, n, 4)).astype(np.float32)
    own = gain(model, videos, mu, np.arange(v))
    for block in ("static", "temporal"):
        assert own[block]["label"] == pytest.approx(own[block]["all"], rel=1e-5, abs=1e-3)
        assert abs(own[block]["all"]) > 1.0  # random offsets do change the reconstruction
    shared = gain(model, videos, mu, np.zeros(v, dtype=int))
    assert all(abs(b["label"]) < 1e-3 for b in shared.values())
    flat = mu.copy()
    flat[..., 2:] -= flat[..., 2:].mean(axis=1, keepdims=True)  # no temporal offsets
    found = gain(model, videos, flat)
    assert abs(found["temporal"]["all"]) < 1e-3 and abs(found["static"]["all"]) > 1.0
    assert set(found["temporal"]) == {"all"}  # no labels, no label's part


def test_a_model_without_prior_blocks_is_skipped_in_one_line(bench_module, capsys, monkeypatch):
    """dsvae's dynamics prior is learned, not a block of eqs 13-18: nothing to price, so
    its run is named and skipped (the runs after it still printed), not a traceback."""
    from pathlib import Path
    from types import SimpleNamespace

    module = bench_module("offset_cost")
    model = make_model(ModelConfig(kind="dsvae", features=4))
    config = SimpleNamespace(model=SimpleNamespace(kind="dsvae"))
    found = [(Path("runs/a"), model, config, 4, 0, None, None, None)]
    monkeypatch.setattr(module, "held_out_encodings", lambda _: iter(found))
    module.main()
    assert capsys.readouterr().out.strip() == (
        "a: dsvae: DSVAE has no prior of independent blocks; nothing to price, skipped"
    )
