"""Contract of every registered model kind (stvae.kinds.KINDS), and a toy kind registered
in one place that trains, evaluates and draws its figures like the others."""

import dataclasses
import math
import subprocess
import sys
from dataclasses import fields
from typing import ClassVar

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
def test_every_kind_trains_on_its_fewest_frames_and_refuses_fewer(kind, tmp_path):
    """``min_frames``: clips that short train; shorter ones are refused in one line before
    the run directory exists (a prior that ties frames together learns nothing of time
    from one frame). The VAE's frames are independent, so one a clip is its fewest."""
    fewest = KINDS[kind].min_frames
    assert fewest >= 1

    def cfg(frames):
        data = DataConfig(frames=frames)
        return TrainConfig(model=config(kind), data=data, steps=1, batch_videos=2)

    assert train(cfg(fewest), tmp_path / "fewest")["step"] == 1
    if fewest > 1:
        with pytest.raises(StvaeError, match=f"frames must be at least {fewest} for the {kind}"):
            train(cfg(fewest - 1), tmp_path / "fewer")
        assert not (tmp_path / "fewer").exists()


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
        value = {
            "sigma2": 0.5,
            "walk_start": 0.5,
            "walk_decay": 0.5,
            "static_features": 1,
            "posterior": "full",
        }[f.name]
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


@dataclasses.dataclass(frozen=True)
class WidePrior(priors.BlockPrior):
    """N(0, scale^2) on every feature of every frame: a prior no registered kind has.
    ``drawn`` is the scale its draws use (another value: a sampler that is wrong)."""

    scale: float = 2.0
    drawn: float = 2.0
    name: ClassVar[str] = "wide"

    def kl(self, mu, logvar):
        s2 = self.scale**2
        return 0.5 * ((logvar.exp() + mu.square()) / s2 - 1 - logvar + math.log(s2)).sum((1, 2))

    def draw(self, noise):
        return self.drawn * noise[:, 1:]


class Toy(SequenceVAE):
    """A kind made of two linear maps and a prior of its own (:class:`WidePrior`), its
    first half of features static."""

    summary = "a toy: linear encoder and decoder"
    split = True
    prior = WidePrior()

    def __init__(self, config):
        super().__init__(config)
        pixels = config.in_channels * 64 * 64
        self.enc = nn.Linear(pixels, 2 * config.features)
        self.dec = nn.Linear(config.features, pixels)

    @classmethod
    def blocks(cls, config):
        return [(cls.prior, slice(0, config.features))]

    def encode(self, x):
        mu, logvar = self.enc(x.flatten(2)).chunk(2, -1)  # [B, N, F] each
        return mu, logvar.clamp(-6, 6)

    def latents(self, x, eps):
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps.to(mu.dtype)
        return mu + eps * (0.5 * logvar).exp(), self.kl_terms(mu, logvar)

    def decode(self, h):
        return self.dec(h).unflatten(-1, (self.config.in_channels, 64, 64))


def stein(model, videos: int = 10_000, frames: int = 4) -> torch.Tensor:
    """E[g h^T] over draws h of the model's prior_sample, g the gradient in mu of the KL
    the model trains with (prior_kl) from a posterior N(h, e^-20) at h: g is minus the
    score of the prior its KL assumes, so by Stein's identity E[g h^T] is the identity on
    the coordinates the prior has a density on (those where g is not 0; dsvae's f has
    one per video, at frame 0) when the draws come from that prior, and not otherwise.
    Float64. -> [K, K], K such coordinates."""
    model = model.double().eval()
    h = model.prior_sample(videos, frames, torch.Generator().manual_seed(0)).double()
    mu = h.clone().requires_grad_(True)
    kl = model.prior_kl(mu, torch.full_like(h, -20.0))  # [V]
    (g,) = torch.autograd.grad(kl.sum(), mu)  # [V, N, F]
    free = g.abs().sum(0) > 0  # [N, F]
    return g[:, free].T @ h[:, free] / videos


@pytest.mark.parametrize("kind", [*KINDS, "toy"])
def test_every_kinds_prior_draws_have_the_density_its_kl_assumes(kind, monkeypatch):
    """A kind's prior_sample and the KL it trains with describe one prior (Stein's
    identity, :func:`stein`), for every registered kind and a new kind's own prior."""
    monkeypatch.setitem(KINDS, "toy", Toy)
    options = {"sigma2": 0.3} if "sigma2" in {f.name for f in fields(KINDS[kind].options)} else {}
    torch.manual_seed(0)
    model = make_model(ModelConfig(kind=kind, features=4, **options))
    m = stein(model)
    assert m.shape[0] >= 8, m.shape
    torch.testing.assert_close(m, torch.eye(len(m), dtype=m.dtype), atol=0.12, rtol=0)


def test_a_prior_sample_that_draws_from_another_prior_fails_the_contract(monkeypatch):
    monkeypatch.setattr(Toy, "prior", WidePrior(drawn=1.5))  # the KL still assumes 2
    m = stein(make_model_of(Toy, monkeypatch))
    assert (m.diagonal() - (1.5 / 2) ** 2).abs().max() < 0.1  # E[g h] = drawn^2 / scale^2
    walk = make_model(ModelConfig(kind="slow", features=4, sigma2=0.3))
    monkeypatch.setattr(priors.WalkPrior, "draw", lambda self, noise: noise[:, 1:].cumsum(1))
    assert (stein(walk).diagonal() - 1).abs().max() > 0.5  # steps N(0, 1), not N(0, 0.3)


def make_model_of(kind: type, monkeypatch) -> SequenceVAE:
    monkeypatch.setitem(KINDS, "toy", kind)
    torch.manual_seed(0)
    return make_model(ModelConfig(kind="toy", features=4))


def test_a_toy_kind_registered_in_one_place_trains_evaluates_and_draws(
    tmp_path, monkeypatch, small_probe_sets
):
    """Train, evaluate, figures, a learning curve and a one-cell grid of a kind with a
    prior of its own, registered in one place and nowhere else."""
    from stvae import reproduce as rep
    from stvae.curve import curve_run

    monkeypatch.setitem(KINDS, "toy", Toy)  # the one place
    cfg = TrainConfig(
        model=ModelConfig(kind="toy", features=4),
        data=DataConfig(frames=4),
        steps=4,
        batch_videos=2,
        log_every=1,
        snapshot_every=2,
        compile=False,
    )
    train(cfg, tmp_path / "toy")
    data = generate("bouncing-mnist", 24, 4, seed=3, split="test")
    ev = evaluate_run(tmp_path / "toy", data, probe="linear")
    assert ev.model == "toy" and ev.static_features == 2
    assert 0 <= ev.static_accuracy("linear") <= 1 and ev.d_score("linear") > 0
    made = make_figures(tmp_path / "toy", out=tmp_path / "figs")
    assert "fig2_swap.png" in made and (tmp_path / "figs" / "index.html").is_file()
    curve = curve_run(tmp_path / "toy", quiet=True)
    assert [p["step"] for p in curve["points"]] == [2, 4]
    monkeypatch.setitem(rep.PRESETS, "cpu", cfg.replace(snapshot_every=0))
    out = {"out": tmp_path / "runs", "report_dir": tmp_path / "docs", "log": lambda s: None}
    (row,) = rep.reproduce(kinds=["toy"], only=["toy-f4-beta1-seed0"], **out)
    assert row["model"] == "toy" and row["d_score_rbf"] > 0
    assert "| toy | 1 | " in (tmp_path / "docs" / "bouncing-mnist-cpu.md").read_text()
