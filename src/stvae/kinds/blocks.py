"""The paper's model and its two baselines: one network, a prior per block of features.

The three kinds differ only in which prior each block of latent features gets:

* ``hierarchical``: the first ``static_features`` features get the static prior (eq 7),
  the rest the random walk (eq 8) -- the paper's model;
* ``slow``: every feature gets the random walk (the probabilistic slow-feature baseline);
* ``vae``: every feature gets N(0, I) per frame (the VAE baseline).

A block's prior is an object (:class:`stvae.priors.BlockPrior`) that gives its KL and its
draws, so a kind with another prior lists its blocks and writes nothing else.

Each encodes every frame independently (eq 12) and scores whole sequences under its
structured prior with the exact KL of eqs 13-18 (:mod:`stvae.priors`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from stvae import priors
from stvae.elbo import NoOptions, SequenceVAE
from stvae.errors import StvaeError
from stvae.nets import Decoder, Encoder

__all__ = ["VideoVAE", "Hierarchical", "Slow", "Vae", "SplitOptions", "WalkOptions"]


def static_features_field():
    """The size of a kind's own static factor (shared by the kinds that have one)."""
    return field(
        default=None,
        metadata={"help": "how many leading features are static (default: half)"},
    )


@dataclass(frozen=True)
class WalkOptions:
    # sigma_s^2 = sigma_t^2, the paper's only value (section 4.2)
    sigma2: float = field(default=0.01, metadata={"help": "prior variance sigma_s^2 = sigma_t^2"})
    # eq 8's N(0, I) start at 1; below it a constant per video costs more in the walk than
    # in the static factor (docs/design.md, "Where a per-video constant goes")
    walk_start: float = field(
        default=1.0,
        metadata={
            "help": "variance of the random walk's first frame, p(h_1^t) = N(0, walk_start I); "
            "1 is eq 8 (the paper's)"
        },
    )
    # eq 8's steps h_i - h_{i-1} at 1; below it h_i - decay h_{i-1}, which charges a
    # constant per video at every frame (docs/design.md, "Where a per-video constant goes")
    walk_decay: float = field(
        default=1.0,
        metadata={
            "help": "decay lambda of the random walk, h_i^t = lambda h_{i-1}^t + N(0, sigma2 I) "
            "(section 2's slow feature analysis prior); 1 is eq 8 (the paper's)"
        },
    )


@dataclass(frozen=True)
class SplitOptions(WalkOptions):
    static_features: int | None = static_features_field()  # None: half of `features`


def _check_walk_variances(config) -> None:
    for name in ("sigma2", "walk_start"):
        value = getattr(config, name)
        if not (value > 0 and math.isfinite(value)):
            raise StvaeError(f"{name} must be a positive finite number; got {value}")
    if not 0 < config.walk_decay <= 1:
        raise StvaeError(f"walk_decay must be in (0, 1]; got {config.walk_decay}")


class VideoVAE(SequenceVAE):
    """Per-frame encoder and decoder (Tables 4-5), a prior per block of features.

    Videos are float tensors [B, N, C, 64, 64] in [0, 1] (Bernoulli targets, one per
    pixel and channel; C = ``config.in_channels``). Subclasses name the blocks.
    """

    def __init__(self, config):
        if type(self) is VideoVAE:  # its prior is its subclasses' (blocks)
            raise TypeError("VideoVAE is the kinds' base; build a model with make_model(config)")
        super().__init__(config)
        self.encoder = Encoder(config.features, channels=config.in_channels)
        self.decoder = Decoder(config.features, channels=config.in_channels)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of eq 12: x [B, N, C, 64, 64] -> (mu, logvar), each [B, N, F]."""
        b, n = x.shape[:2]
        mu, logvar = self.encoder(x.reshape(b * n, *x.shape[2:]))  # [B*N, F] each
        return mu.view(b, n, -1), logvar.view(b, n, -1)

    def latents(self, x: Tensor, eps: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """h = mu + eps * sigma per frame [B, N, F], and the KL of each prior block [B]."""
        mu, logvar = self.encode(x)  # [B, N, F] each
        if eps is None:
            eps = torch.randn_like(mu)
        h = mu + eps.to(mu.dtype) * (0.5 * logvar).exp()  # [B, N, F]
        return h, self.kl_terms(mu, logvar)


class Hierarchical(VideoVAE):
    summary = "the paper's model: static features (eq 7) and a random walk (eq 8)"
    split = True
    options = SplitOptions

    @classmethod
    def check(cls, config) -> None:
        _check_walk_variances(config)

    @classmethod
    def blocks(cls, config) -> list[tuple[priors.BlockPrior, slice]]:
        s = config.n_static
        return [
            (priors.StaticPrior(config.sigma2), slice(0, s)),
            (
                priors.WalkPrior(config.sigma2, config.walk_start, config.walk_decay),
                slice(s, config.features),
            ),
        ]


class Slow(VideoVAE):
    summary = "baseline: a random walk on every feature (probabilistic slow features)"
    options = WalkOptions

    @classmethod
    def check(cls, config) -> None:
        _check_walk_variances(config)

    @classmethod
    def blocks(cls, config) -> list[tuple[priors.BlockPrior, slice]]:
        return [
            (
                priors.WalkPrior(config.sigma2, config.walk_start, config.walk_decay),
                slice(0, config.features),
            )
        ]


class Vae(VideoVAE):
    summary = "baseline: N(0, I) on every feature of every frame"
    options = NoOptions
    min_frames = 1  # its frames are independent: one a clip trains the same model

    @classmethod
    def blocks(cls, config) -> list[tuple[priors.BlockPrior, slice]]:
        return [(priors.StandardPrior(), slice(0, config.features))]
