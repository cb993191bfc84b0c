"""Contract of every registered model kind (stvae.kinds.KINDS), and a toy kind registered
in one place that trains, evaluates and draws its figures like the others."""

import dataclasses
import subprocess
import sys

import pytest
import torch
from torch import nn

from stvae import StvaeError, priors
from stvae.checkpoint import load_weights, save_weights
from stvae.data import DataConfig, generate
from stvae.elbo import SequenceVAE
from stvae.evaluate import evaluate_run
from stvae.figures import make_figures
from stvae.kinds import KINDS
from stvae.model import COMMON_FIELDS, ModelConfig, encode_videos, make_model
from stvae.rundir import load_run
from stvae.train import TrainConfig, train


def config(kind: str, channels: int = 1, features: int = 4) -> ModelConfig:
    return ModelConfig(kind=kind, features=features, beta=2.5, channels=channels)


def video(b=2, n=3, c=1, seed=0):
    return torch.rand(b, n, c, 64, 64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_the_shapes_of_the_contract(kind, channels):
    model = make_model(config(kind, channels)).eval()
    assert isinstance(model, SequenceVAE) and isinstance(model, KINDS[kind])
    x = video(c=channels)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 3, 4)
    h, kls = model.latents(x, torch.zeros(2, 3, 4))
    assert h.shape == (2, 3, 4) and kls and all(v.shape == (2,) for v in kls.values())
    assert model.decode(h).shape == (2, 3, channels, 64, 64)
    assert model.config.n_static == (2 if KINDS[kind].split else 0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kinds_loss_terms_add_up_to_its_loss(kind):
    model = make_model(config(kind)).eval()
    eps = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    out = model(video(), eps=eps)
    kls = [v for k, v in out.items() if k.startswith("kl_")]
    assert len(kls) >= 1
    torch.testing.assert_close(out["kl"], sum(kls))
    torch.testing.assert_close(out["loss"], out["reconstruction"] + 2.5 * out["kl"])
    torch.testing.assert_close(model(video(), beta=1.0, eps=eps)["kl"], out["kl"])
    # the same noise gives the same loss; the sample is made from the noise it is given
    torch.testing.assert_close(model(video(), eps=eps)["loss"], out["loss"])
    h, _ = model.latents(video(), eps)
    assert (model.latents(video(), eps + 1)[0] - h).abs().min() > 0.1


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_saves_loads_and_encodes_the_same(kind, tmp_path):
    model = make_model(config(kind))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_weights(tmp_path / "w.safetensors", model, {})
    again = make_model(config(kind))
    load_weights(tmp_path / "w.safetensors", again)
    videos = generate("bouncing-mnist", 3, 4, seed=0)["videos"]
    for a, b in zip(encode_videos(model, videos), encode_videos(again, videos), strict=True):
        assert a.shape == (3, 4, 4)
        assert (a == b).all()


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_trains_a_few_steps_and_loads_as_itself(kind, tmp_path):
    cfg = TrainConfig(
        model=config(kind), data=DataConfig(frames=4), steps=3, batch_videos=2, log_every=1
    )
    summary = train(cfg, tmp_path / kind)
    assert summary["step"] == 3 and torch.isfinite(torch.tensor(summary["final"]["loss"]))
    model, loaded = load_run(tmp_path / kind)
    assert type(model) is KINDS[kind] and loaded.model == cfg.model.__class__(
        **{**dataclasses.asdict(cfg.model), "channels": 1}
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_samples_its_prior(kind):
    """The field's protocol decodes prior samples: [V, N, F], finite, a function of the
    generator alone; a static factor of its own is one value per video when its prior
    says so (dsvae's f)."""
    model = make_model(ModelConfig(kind=kind, features=4)).eval()
    a = model.prior_sample(6, 5, torch.Generator().manual_seed(1))
    b = model.prior_sample(6, 5, torch.Generator().manual_seed(1))
    assert a.shape == (6, 5, 4) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, model.prior_sample(6, 5, torch.Generator().manual_seed(2)))
    logits = model.decode(a)
    assert logits.shape == (6, 5, 1, 64, 64)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_kind_refuses_the_hyperparameters_of_other_kinds(kind):
    own = {f.name for f in dataclasses.fields(KINDS[kind].options)}
    others = [f for f in dataclasses.fields(ModelConfig) if f.name not in own | COMMON_FIELDS]
    for f in others:
        value = {"sigma2": 0.5, "static_features": 1, "posterior": "full"}[f.name]
        with pytest.raises(StvaeError, match=f"{f.name} applies to the"):
            ModelConfig(kind=kind, features=4, **{f.name: value})


def test_the_cli_offers_every_kind_with_its_summary():
    out = subprocess.run(
        [sys.executable, "-m", "stvae.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "400", "PATH": ""},
    ).stdout
    for name, kind in KINDS.items():
        assert f"{name}: {kind.summary}" in " ".join(out.split())


class Toy(SequenceVAE):
    """A kind made of two linear maps: static first half, N(0, I) on every feature."""

    summary = "a toy: linear encoder and decoder"
    split = True

    def __init__(self, config):
        super().__init__(config)
        pixels = config.in_channels * 64 * 64
        self.enc = nn.Linear(pixels, 2 * config.features)
        self.dec = nn.Linear(config.features, pixels)

    def encode(self, x):
        mu, logvar = self.enc(x.flatten(2)).chunk(2, -1)  # [B, N, F] each
        return mu, logvar.clamp(-6, 6)

    def latents(self, x, eps):
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps.to(mu.dtype)
        return mu + eps * (0.5 * logvar).exp(), {"kl_standard": priors.kl_standard(mu, logvar)}

    def decode(self, h):
        return self.dec(h).unflatten(-1, (self.config.in_channels, 64, 64))


def test_a_toy_kind_registered_in_one_place_trains_evaluates_and_draws(tmp_path, monkeypatch):
    monkeypatch.setitem(KINDS, "toy", Toy)  # the one place
    cfg = TrainConfig(
        model=ModelConfig(kind="toy", features=4),
        data=DataConfig(frames=4),
        steps=4,
        batch_videos=2,
        log_every=1,
        compile=False,
    )
    train(cfg, tmp_path / "toy")
    data = generate("bouncing-mnist", 24, 4, seed=3, split="test")
    ev = evaluate_run(tmp_path / "toy", data, probe="linear")
    assert ev.model == "toy" and ev.static_features == 2
    assert 0 <= ev.static_accuracy("linear") <= 1 and ev.d_score("linear") > 0
    made = make_figures(tmp_path / "toy", out=tmp_path / "figs")
    assert "fig2_swap.png" in made and (tmp_path / "figs" / "index.html").is_file()
