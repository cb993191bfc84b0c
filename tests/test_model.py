"""The video VAE: one code path, three priors, the per-frame negative beta-ELBO of eq 5."""

import pytest
import torch
import torch.nn.functional as F

from stvae import StvaeError
from stvae.model import ModelConfig, encode_videos, make_model
from stvae.priors import StaticPrior, WalkPrior, kl_standard, kl_static, kl_temporal


def video(b=2, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, n, 1, 64, 64, generator=g) > 0.8).float()


@pytest.mark.parametrize(
    "kind, names",
    [
        ("hierarchical", {"kl_static", "kl_temporal"}),
        ("slow", {"kl_temporal"}),
        ("vae", {"kl_standard"}),
    ],
)
def test_each_kind_gets_its_priors(kind, names):
    out = make_model(ModelConfig(kind=kind, features=4))(video())
    assert {k for k in out if k.startswith("kl_")} == names
    assert set(out) == names | {"loss", "reconstruction", "kl"}


@pytest.mark.parametrize("kind", ["hierarchical", "slow", "vae"])
@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_loss_is_negative_beta_elbo_per_frame(kind, beta):
    own = {"hierarchical": {"static_features": 2, "sigma2": 0.05}, "slow": {"sigma2": 0.05}}
    cfg = ModelConfig(kind=kind, features=6, beta=beta, **own.get(kind, {}))
    model = make_model(cfg).eval()
    x = video(3, 4)
    torch.manual_seed(7)
    out = model(x)
    # independent recomputation with the same noise
    mu, logvar = model.encode(x)
    torch.manual_seed(7)
    h = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    recon = F.binary_cross_entropy_with_logits(model.decode(h), x, reduction="sum") / 12
    if kind == "hierarchical":
        kl = kl_static(mu[..., :2], logvar[..., :2], 0.05) + kl_temporal(
            mu[..., 2:], logvar[..., 2:], 0.05
        )
    elif kind == "slow":
        kl = kl_temporal(mu, logvar, 0.05)
    else:
        kl = kl_standard(mu, logvar)
    kl = kl.sum() / 12
    torch.testing.assert_close(out["reconstruction"], recon)
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["loss"], recon + beta * kl)


def test_static_split_defaults_to_half_and_can_change():
    assert ModelConfig(features=4).n_static == 2
    config = ModelConfig(features=8, static_features=3)
    assert make_model(config).blocks(config) == [
        (StaticPrior(0.01), slice(0, 3)),
        (WalkPrior(0.01), slice(3, 8)),
    ]
    assert ModelConfig(kind="slow", features=4).n_static == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "gru"}, "unknown model kind"),
        ({"features": 0}, "at least 1"),
        ({"beta": 0.0}, "beta must be a positive finite number"),
        ({"beta": float("inf")}, "beta must be a positive finite number"),
        ({"beta": -1.0}, "beta must be a positive finite number"),
        ({"sigma2": 0.0}, "sigma2"),
        ({"features": 4, "static_features": 4}, "between 1 and"),
        ({"kind": "vae", "static_features": 1}, "hierarchical and dsvae models"),
        ({"kind": "slow", "posterior": "full"}, "posterior applies to the dsvae model only"),
        ({"kind": "dsvae", "posterior": "lstm"}, "posterior must be one of factorized, full"),
        ({"kind": "dsvae", "features": 1}, "the dsvae model needs at least 2 features"),
        ({"features": 1}, "at least 2 features"),
    ],
)
def test_bad_configs_are_user_errors(kwargs, message):
    with pytest.raises(StvaeError, match=message):
        ModelConfig(**kwargs)


def test_every_parameter_gets_a_gradient():
    model = make_model(ModelConfig())
    model(video())["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_beta_override_for_warmup():
    model = make_model(ModelConfig(beta=4.0)).eval()
    x = video()
    torch.manual_seed(0)
    a = model(x, beta=0.5)
    assert torch.allclose(a["loss"], a["reconstruction"] + 0.5 * a["kl"])


def test_encode_videos_matches_encode_in_eval_mode():
    model = make_model(ModelConfig(features=4))
    videos = (torch.rand(5, 3, 64, 64) * 255).to(torch.uint8).numpy()
    mu, logvar = encode_videos(model, videos, batch_videos=2)
    assert mu.shape == logvar.shape == (5, 3, 4)
    assert model.training  # restored
    with torch.no_grad():
        ref, _ = model.eval().encode(torch.from_numpy(videos).float().div(255).unsqueeze(2))
    torch.testing.assert_close(torch.from_numpy(mu), ref, rtol=1e-4, atol=1e-5)
