"""The video VAE: per-frame encoder (eq 12), structured prior (eqs 6-8), beta-ELBO (eq 5).

The three model kinds differ only in which prior each block of latent features gets:

* ``hierarchical``: the first ``static_features`` features get the static prior (eq 7),
  the rest the random walk (eq 8) -- the paper's model;
* ``slow``: every feature gets the random walk (the probabilistic slow-feature baseline);
* ``vae``: every feature gets N(0, I) per frame (the VAE baseline).

A fourth kind, ``dsvae``, is the Disentangled Sequential Autoencoder of Li & Mandt (2018),
with posteriors and a learned prior of its own (:mod:`stvae.dsvae`); :func:`make_model`
builds whichever kind a config names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stvae import priors
from stvae.data import to_tensor
from stvae.errors import StvaeError
from stvae.nets import FRAME_SIZE, Decoder, Encoder

__all__ = ["ModelConfig", "VideoVAE", "MODEL_KINDS", "POSTERIORS", "encode_videos", "make_model"]

MODEL_KINDS = ("hierarchical", "slow", "vae", "dsvae")
CHANNELS = (None, 1, 3)  # grey or RGB frames; None: what the data has
POSTERIORS = ("factorized", "full")  # dsvae's dynamic posterior (Li & Mandt's two)
SPLIT_KINDS = ("hierarchical", "dsvae")  # kinds with a static/temporal division of their own


@dataclass(frozen=True)
class ModelConfig:
    # which prior blocks the latent features get (see module doc); flag --model
    kind: str = field(default="hierarchical", metadata={"flag": "model"})
    features: int = 4  # latent features per frame in total (Table 1: 4 for Bouncing MNIST)
    static_features: int | None = None  # hierarchical, dsvae; None means half of `features`
    beta: float = 1.0  # KL weight of eq 5
    sigma2: float = 0.01  # sigma_s^2 = sigma_t^2, the paper's only value (section 4.2)
    posterior: str = "factorized"  # dsvae: q(z_t | x_t) alone, or "full" (whole video and f)
    channels: int | None = None  # colour channels of a frame, 1 or 3; None: what the data
    # has (train() fixes it, so config.json always holds a number; 1 for a model without data)

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise StvaeError(
                f"unknown model kind {self.kind!r}; choose from {', '.join(MODEL_KINDS)}"
            )
        if self.features < 1:
            raise StvaeError(f"features must be at least 1; got {self.features}")
        if not self.beta > 0:
            raise StvaeError(f"beta must be positive; got {self.beta}")
        if not self.sigma2 > 0:
            raise StvaeError(f"sigma2 must be positive; got {self.sigma2}")
        if self.channels not in CHANNELS:
            raise StvaeError(f"channels must be 1 or 3; got {self.channels!r}")
        if self.posterior not in POSTERIORS:
            raise StvaeError(
                f"posterior must be one of {', '.join(POSTERIORS)}; got {self.posterior!r}"
            )
        if self.posterior != "factorized" and self.kind != "dsvae":
            raise StvaeError("posterior applies to the dsvae model only")
        if self.static_features is not None:
            if self.kind not in SPLIT_KINDS:
                raise StvaeError("static_features applies to the hierarchical and dsvae models")
            if not 0 < self.static_features < self.features:
                raise StvaeError(
                    f"static_features must be between 1 and features - 1 = {self.features - 1}; "
                    f"got {self.static_features}"
                )
        elif self.kind in SPLIT_KINDS and self.features < 2:
            raise StvaeError(f"the {self.kind} model needs at least 2 features")

    @property
    def in_channels(self) -> int:
        """The channels the networks take and give (``channels``, 1 when unresolved)."""
        return self.channels or 1

    @property
    def n_static(self) -> int:
        """Number of leading static latent features (0 for the baselines); for dsvae the
        size of f."""
        if self.kind not in SPLIT_KINDS:
            return 0
        return self.static_features if self.static_features is not None else self.features // 2

    def blocks(self) -> list[tuple[str, slice]]:
        """(prior name, feature slice) pairs covering all features, static block first."""
        if self.kind == "vae":
            return [("standard", slice(0, self.features))]
        if self.kind == "slow":
            return [("temporal", slice(0, self.features))]
        s = self.n_static
        return [("static", slice(0, s)), ("temporal", slice(s, self.features))]


class VideoVAE(nn.Module):
    """Encodes each frame independently and scores whole sequences under the structured prior.

    Videos are float tensors [B, N, C, 64, 64] in [0, 1] (Bernoulli targets, one per
    pixel and channel; C = ``config.in_channels``).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.features, channels=config.in_channels)
        self.decoder = Decoder(config.features, channels=config.in_channels)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of eq 12: x [B, N, C, 64, 64] -> (mu, logvar), each [B, N, F]."""
        b, n = x.shape[:2]
        mu, logvar = self.encoder(x.reshape(b * n, *x.shape[2:]))  # [B*N, F] each
        return mu.view(b, n, -1), logvar.view(b, n, -1)

    def decode(self, h: Tensor) -> Tensor:
        """Latents h [..., F] -> Bernoulli logits [..., C, 64, 64]."""
        return decode_frames(self.decoder, h)

    def kl_terms(self, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """KL of each prior block, mu, logvar: [B, N, F] -> {"kl_<prior>": [B]} (eqs 13-18)."""
        mu, logvar = mu.float(), logvar.float()  # the closed forms want full precision
        sigma2 = self.config.sigma2
        terms = {}
        for name, block in self.config.blocks():
            m, lv = mu[..., block], logvar[..., block]
            if name == "static":
                terms["kl_static"] = priors.kl_static(m, lv, sigma2)
            elif name == "temporal":
                terms["kl_temporal"] = priors.kl_temporal(m, lv, sigma2)
            else:
                terms["kl_standard"] = priors.kl_standard(m, lv)
        return terms

    def forward(
        self, x: Tensor, beta: float | None = None, eps: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Negative beta-ELBO of eq 5 per frame, with a single reparameterised sample.

        x: [B, N, C, 64, 64] in [0, 1]. Returns scalars: ``loss`` (what is minimised),
        ``reconstruction`` (Bernoulli negative log-likelihood, nats per frame), one
        ``kl_<prior>`` per prior block (nats per frame) and ``kl`` (their sum).
        All are averaged over the B*N frames of the batch, so models of every kind and
        sequence length are on one scale. ``beta`` overrides the config's (warm-up);
        ``eps`` [B, N, F] is the standard-normal noise of the sample (drawn here if None).
        """
        b, n = x.shape[:2]
        mu, logvar = self.encode(x)  # [B, N, F] each
        if eps is None:
            eps = torch.randn_like(mu)
        h = mu + eps.to(mu.dtype) * (0.5 * logvar).exp()  # [B, N, F]
        logits = self.decode(h)  # [B, N, C, 64, 64]
        recon = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="sum")
        frames = b * n
        out = {"reconstruction": recon / frames}
        for name, kl in self.kl_terms(mu, logvar).items():
            out[name] = kl.sum() / frames
        out["kl"] = sum(v for k, v in out.items() if k.startswith("kl_"))
        beta = self.config.beta if beta is None else beta
        out["loss"] = out["reconstruction"] + beta * out["kl"]
        return out


def decode_frames(decoder: Decoder, h: Tensor) -> Tensor:
    """Table 5 over any leading shape: latents h [..., F] -> logits [..., C, 64, 64]."""
    logits = decoder(h.reshape(-1, h.shape[-1]))  # [M, C, 64, 64]
    return logits.view(*h.shape[:-1], logits.shape[1], FRAME_SIZE, FRAME_SIZE)


def make_model(config: ModelConfig) -> nn.Module:
    """The model a config names: :class:`VideoVAE` or :class:`stvae.dsvae.DSVAE`."""
    if config.kind == "dsvae":
        from stvae.dsvae import DSVAE

        return DSVAE(config)
    return VideoVAE(config)


@torch.no_grad()
def encode_videos(
    model: VideoVAE, videos: np.ndarray, batch_videos: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of every frame: [V, N, 64, 64] or [V, N, 64, 64, 3]
    (converted to the model's channels by :func:`stvae.data.to_tensor`) -> 2 x float32
    [V, N, F].

    Runs in eval mode (batch-norm running statistics) on the model's device, in batches.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mus, logvars = [], []
    try:
        for start in range(0, len(videos), batch_videos):
            x = to_tensor(videos[start : start + batch_videos], device, model.config.in_channels)
            mu, logvar = model.encode(x)
            mus.append(mu.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(mus), np.concatenate(logvars)
