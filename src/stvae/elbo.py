"""The base of every model kind: the negative beta-ELBO of eq 5, written once.

A kind is a subclass of :class:`SequenceVAE` registered in :data:`stvae.kinds.KINDS`. It
builds its networks in ``__init__`` and overrides two methods:

* ``encode(x)``: the posterior as probes and figures see it, x [B, N, C, 64, 64] ->
  (mu, logvar) [B, N, F], its static features (if it has a division of its own) first;
* ``latents(x, eps)``: one reparameterised sample h [B, N, F] and the KL of each of its
  latent blocks per video ({"kl_<name>": [B]}).

Its prior is a class method ``blocks(config)``: one :class:`stvae.priors.BlockPrior` per
block of features, each giving its KL and its draws; from it the base gives
``kl_terms`` (for ``latents``), ``prior_kl`` and ``prior_sample`` (h [V, N, F] from p(h),
every feature independent of the others a priori). A kind whose prior is not of
independent blocks (dsvae's learned one) overrides ``prior_kl`` and ``prior_sample`` and
computes its latents' KL terms its own way.

The base turns them into the loss: decode h, the reconstruction term, the KL terms per
frame, beta. Class attributes say the rest: ``summary`` (the CLI's help), ``split``
(whether the first features are a static factor of its own: :attr:`ModelConfig.n_static`),
``options`` (a dataclass of its own hyperparameters, which join ``ModelConfig``),
``min_frames`` (the fewest frames a training clip may have: 2 where the prior ties frames
together, since one frame leaves nothing to tell time from content) and ``check`` (its own
validation of a config). How to add a kind: docs/design.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stvae.nets import FRAME_SIZE, Decoder
from stvae.priors import BlockPrior

__all__ = ["SequenceVAE", "NoOptions", "decode_frames"]


@dataclass(frozen=True)
class NoOptions:
    """A kind with no hyperparameters of its own."""


class SequenceVAE(nn.Module):
    """Videos [B, N, C, 64, 64] in [0, 1] -> the loss terms of eq 5 (see the module doc).

    Subclasses set ``self.decoder`` (a Table 5 :class:`Decoder` of ``config.features``
    inputs) or override :meth:`decode`.
    """

    summary: ClassVar[str] = ""
    split: ClassVar[bool] = False
    options: ClassVar[type] = NoOptions
    min_frames: ClassVar[int] = 2

    def __init__(self, config):
        super().__init__()
        self.config = config
        if getattr(config, "likelihood", "bernoulli") == "gaussian":
            # log sigma per channel of p(x | h) = N(sigmoid(logits), sigma^2), learned;
            # starts at sigma = 0.1 (a tenth of the pixel range)
            self.log_sigma = nn.Parameter(torch.full((config.in_channels,), math.log(0.1)))

    @classmethod
    def check(cls, config) -> None:
        """Raises :class:`StvaeError` for a config this kind cannot train (none here)."""

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def latents(self, x: Tensor, eps: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    @classmethod
    def blocks(cls, config) -> list[tuple[BlockPrior, slice]]:
        """(prior, feature slice) pairs covering all features, static block first: the
        kind's prior, when it is one :class:`stvae.priors.BlockPrior` per block of
        features (then the three methods below need nothing else)."""
        raise NotImplementedError(f"{cls.__name__} has no prior of independent blocks")

    def kl_terms(self, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """KL of each prior block, mu, logvar: [B, N, F] -> {"kl_<prior>": [B]} (eqs 13-18)."""
        mu, logvar = mu.float(), logvar.float()  # the closed forms want full precision
        return {
            f"kl_{prior.name}": prior.kl(mu[..., block], logvar[..., block])
            for prior, block in self.blocks(self.config)
        }

    def prior_kl(self, mu: Tensor, logvar: Tensor, h: Tensor | None = None) -> Tensor:
        """The KL of a posterior given as :meth:`encode` gives it, mu, logvar [B, N, F],
        to the whole prior [B]; ``h`` [B, N, F] is a sample from it, for a prior whose KL
        is estimated at one (the blocks' KLs are in closed form and need none)."""
        return sum(self.kl_terms(mu, logvar).values())

    @torch.no_grad()
    def prior_sample(self, videos: int, frames: int, generator=None, means: bool = False) -> Tensor:
        """h [V, N, F] from p(h), each block from its prior (:meth:`blocks`), every feature
        drawn on its own from one standard-normal draw [V, N + 1, F] of ``generator`` (a
        CPU generator); with ``means``, the conditional means E[h_t | h_<t] along the
        path the same draw takes (:meth:`stvae.priors.BlockPrior.means`). The field's
        protocol of :mod:`stvae.field` resamples one factor and keeps the other; a kind
        with no prior to sample raises NotImplementedError (the protocol is then not
        applicable)."""
        blocks = self.blocks(self.config)
        weight = next(self.parameters())
        like = {"device": weight.device, "dtype": weight.dtype}
        f = self.config.features
        noise = torch.randn(videos, frames + 1, f, generator=generator).to(**like)
        h = torch.empty(videos, frames, f, **like)
        for prior, block in blocks:
            h[..., block] = (prior.means if means else prior.draw)(noise[..., block])
        return h

    def decode(self, h: Tensor) -> Tensor:
        """Latents h [..., F] -> Bernoulli logits [..., C, 64, 64]."""
        return decode_frames(self.decoder, h)

    def reconstruction(self, logits: Tensor, x: Tensor) -> Tensor:
        """Negative log-likelihood of x [B, N, C, 64, 64] given the decoder's logits (same
        shape), summed (nats) []: Bernoulli (eq 5's, the default), or with ``likelihood``
        gaussian N(sigmoid(logits), sigma_c^2) with a learned sigma per channel (a
        density: the term can be negative)."""
        if not hasattr(self, "log_sigma"):
            return F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="sum")
        mean = torch.sigmoid(logits.float())
        log_sigma = self.log_sigma.float().view(-1, 1, 1)  # [C, 1, 1]
        z = (x.float() - mean) * torch.exp(-log_sigma)
        per = 0.5 * z.square() + log_sigma + 0.5 * math.log(2 * math.pi)
        return per.sum()

    def forward(
        self, x: Tensor, beta: float | None = None, eps: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Negative beta-ELBO of eq 5 per frame, with a single reparameterised sample.

        x: [B, N, C, 64, 64] in [0, 1]. Returns scalars: ``loss`` (what is minimised),
        ``reconstruction`` (nats per frame), one ``kl_<name>`` per latent block (nats per
        frame) and ``kl`` (their sum). All are averaged over the B*N frames of the batch,
        so models of every kind and sequence length are on one scale. ``beta`` overrides
        the config's (warm-up); ``eps`` [B, N, F] is the standard-normal noise of the
        sample (drawn by the kind if None).
        """
        b, n = x.shape[:2]
        h, kls = self.latents(x, eps)  # [B, N, F], {"kl_<name>": [B]}
        frames = b * n
        out = {"reconstruction": self.reconstruction(self.decode(h), x) / frames}
        for name, kl in kls.items():
            out[name] = kl.sum() / frames
        out["kl"] = sum(v for k, v in out.items() if k.startswith("kl_"))
        beta = self.config.beta if beta is None else beta
        out["loss"] = out["reconstruction"] + beta * out["kl"]
        return out


def decode_frames(decoder: Decoder, h: Tensor) -> Tensor:
    """Table 5 over any leading shape: latents h [..., F] -> logits [..., C, 64, 64]."""
    logits = decoder(h.reshape(-1, h.shape[-1]))  # [M, C, 64, 64]
    return logits.view(*h.shape[:-1], logits.shape[1], FRAME_SIZE, FRAME_SIZE)
