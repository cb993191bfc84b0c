"""The paper's model and its two baselines: one network, a prior per block of features.

The three kinds differ only in which prior each block of latent features gets:

* ``hierarchical``: the first ``static_features`` features get the static prior (eq 7),
  the rest the random walk (eq 8) -- the paper's model;
* ``slow``: every feature gets the random walk (the probabilistic slow-feature baseline);
* ``vae``: every feature gets N(0, I) per frame (the VAE baseline).

Each encodes every frame independently (eq 12) and scores whole sequences under its
structured prior with the exact KL of eqs 13-18 (:mod:`stvae.priors`).
"""

from __future__ import annotations

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
        metadata={"help": "how many leading features are static (default: half)", "min": 1},
    )


@dataclass(frozen=True)
class WalkOptions:
    # sigma_s^2 = sigma_t^2, the paper's only value (section 4.2)
    sigma2: float = field(default=0.01, metadata={"help": "prior variance sigma_s^2 = sigma_t^2"})


@dataclass(frozen=True)
class SplitOptions(WalkOptions):
    static_features: int | None = static_features_field()  # None: half of `features`


def _check_sigma2(config) -> None:
    if not config.sigma2 > 0:
        raise StvaeError(f"sigma2 must be positive; got {config.sigma2}")


class VideoVAE(SequenceVAE):
    """Per-frame encoder and decoder (Tables 4-5), a prior per block of features.

    Videos are float tensors [B, N, C, 64, 64] in [0, 1] (Bernoulli targets, one per
    pixel and channel; C = ``config.in_channels``). Subclasses name the blocks.
    """

    def __init__(self, config):
        super().__init__(config)
        self.encoder = Encoder(config.features, channels=config.in_channels)
        self.decoder = Decoder(config.features, channels=config.in_channels)

    @classmethod
    def blocks(cls, config) -> list[tuple[str, slice]]:
        """(prior name, feature slice) pairs covering all features, static block first."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of eq 12: x [B, N, C, 64, 64] -> (mu, logvar), each [B, N, F]."""
        b, n = x.shape[:2]
        mu, logvar = self.encoder(x.reshape(b * n, *x.shape[2:]))  # [B*N, F] each
        return mu.view(b, n, -1), logvar.view(b, n, -1)

    def kl_terms(self, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """KL of each prior block, mu, logvar: [B, N, F] -> {"kl_<prior>": [B]} (eqs 13-18)."""
        mu, logvar = mu.float(), logvar.float()  # the closed forms want full precision
        terms = {}
        for name, block in self.config.blocks():  # the blocks of the config's kind
            m, lv = mu[..., block], logvar[..., block]
            if name == "static":
                terms["kl_static"] = priors.kl_static(m, lv, self.config.sigma2)
            elif name == "temporal":
                terms["kl_temporal"] = priors.kl_temporal(m, lv, self.config.sigma2)
            else:
                terms["kl_standard"] = priors.kl_standard(m, lv)
        return terms

    @torch.no_grad()
    def prior_sample(self, videos: int, frames: int, generator=None) -> Tensor:
        """h [V, N, F] from the prior of each block, the priors whose KLs eqs 13-18 give:
        static (eq 7) h_0 ~ N(0, 1) per video and h_i = h_0 + N(0, sigma2) per frame;
        temporal (eq 8) a random walk from N(0, 1) with steps N(0, sigma2); standard
        N(0, 1) per frame. Every feature is drawn on its own."""
        device = next(self.parameters()).device
        f = self.config.features
        noise = torch.randn(videos, frames + 1, f, generator=generator).to(device)
        h = torch.empty(videos, frames, f, device=device)
        for name, block in self.config.blocks():
            start, step = noise[:, :1, block], noise[:, 1:, block]  # [V, 1, k], [V, N, k]
            if name == "static":
                h[..., block] = start + self.config.sigma2**0.5 * step
            elif name == "temporal":
                walk = torch.cat([torch.zeros_like(start), step[:, 1:]], 1).cumsum(1)
                h[..., block] = start + self.config.sigma2**0.5 * walk
            else:
                h[..., block] = step
        return h

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
        _check_sigma2(config)

    @classmethod
    def blocks(cls, config) -> list[tuple[str, slice]]:
        s = config.n_static
        return [("static", slice(0, s)), ("temporal", slice(s, config.features))]


class Slow(VideoVAE):
    summary = "baseline: a random walk on every feature (probabilistic slow features)"
    options = WalkOptions

    @classmethod
    def check(cls, config) -> None:
        _check_sigma2(config)

    @classmethod
    def blocks(cls, config) -> list[tuple[str, slice]]:
        return [("temporal", slice(0, config.features))]


class Vae(VideoVAE):
    summary = "baseline: N(0, I) on every feature of every frame"
    options = NoOptions

    @classmethod
    def blocks(cls, config) -> list[tuple[str, slice]]:
        return [("standard", slice(0, config.features))]
