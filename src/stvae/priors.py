"""Exact KL divergences from the diagonal posterior to the paper's priors (eqs 6-18).

The posterior of a sequence is q(h|x) = prod_i Normal(mu_i, diag exp(logvar_i)) (eq 12).
Every function here takes ``mu, logvar: [B, N, F]`` (B sequences, N frames, F features)
and returns ``[B]``: KL(q || p) summed over frames and features, in closed form, in
O(N) time and memory. The features of a prior block are independent, so each feature
contributes a KL between an N-dimensional diagonal Gaussian and an N-dimensional
prior Gaussian with covariance

* standard (VAE):   I
* static   (eq 7):  sigma2 * I + 1 1^T          (h_0 ~ N(0, 1), h_i = h_0 + N(0, sigma2))
* temporal (eq 8):  start + sigma2 * min(i, j)   (0-indexed random walk from N(0, start);
                                                 eq 8 has start = 1; with a decay
                                                 lambda < 1 each step is lambda h_{i-1}
                                                 + N(0, sigma2), the walk of section 2's
                                                 slow feature analysis prior)

For a Gaussian prior N(0, S) and q = N(m, diag v) over R^N,
KL = 1/2 [ tr(S^-1 diag v) + m^T S^-1 m - N + log det S - sum log v ].
The additive log(2 pi) constants of eqs 14-16 cancel between entropy and
cross-entropy and never appear. The static normaliser uses the corrected constant
(the mean of N frames has variance 1 + sigma2/N; see the erratum in docs/design.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "kl_standard",
    "kl_static",
    "kl_temporal",
    "BlockPrior",
    "StandardPrior",
    "StaticPrior",
    "WalkPrior",
]


def _check(mu: Tensor, logvar: Tensor) -> None:
    if mu.dim() != 3 or mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must both be [B, N, F]; got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )


def _check_decay(decay: float) -> None:
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1]; got {decay}")


def _check_sigma2(sigma2: float, name: str = "sigma2") -> None:
    if not (sigma2 > 0 and math.isfinite(sigma2)):
        raise ValueError(f"{name} must be a positive finite number; got {sigma2}")


def kl_standard(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL to the per-frame standard normal prior of the VAE baseline (eq 4 with p = N(0, I)).

    mu, logvar: [B, N, F] -> [B].
    """
    _check(mu, logvar)
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2))


def kl_static(mu: Tensor, logvar: Tensor, sigma2: float) -> Tensor:
    """KL to the hierarchical static prior of eq 7 (closed form of eqs 14, 16-18).

    Per feature the prior is N(0, S) with S = sigma2 I + 1 1^T, so
    S^-1 = (I - 1 1^T / (sigma2 + N)) / sigma2 and log det S = (N - 1) log sigma2
    + log(sigma2 + N). With mbar the frame mean of mu,
    m^T S^-1 m = sum_i (m_i - mbar)^2 / sigma2 + N mbar^2 / (sigma2 + N),
    written around the mean so that float32 does not cancel catastrophically when
    the frames agree (the case the prior rewards) and sigma2 is small.

    mu, logvar: [B, N, F]; sigma2: the within-video variance sigma_s^2 -> [B].
    """
    _check(mu, logvar)
    _check_sigma2(sigma2)
    n = mu.shape[1]
    var = logvar.exp()
    mbar = mu.mean(dim=1, keepdim=True)  # [B, 1, F]
    spread = (mu - mbar).square().sum(dim=1)  # [B, F]
    quad = spread / sigma2 + n * mbar.squeeze(1).square() / (sigma2 + n)
    trace = var.sum(dim=1) * ((sigma2 + n - 1.0) / (sigma2 * (sigma2 + n)))
    logdet = (n - 1) * math.log(sigma2) + math.log(sigma2 + n)
    per_feature = 0.5 * (trace + quad - n + logdet - logvar.sum(dim=1))  # [B, F]
    return per_feature.sum(dim=1)


def kl_temporal(
    mu: Tensor, logvar: Tensor, sigma2: float, start: float = 1.0, decay: float = 1.0
) -> Tensor:
    """KL to the Gaussian random-walk prior of eq 8 (closed form of eqs 14-15).

    The prior factorises as N(h_1 | 0, start) prod_i N(h_i | decay h_{i-1}, sigma2) (eq 9,
    where start = 1 and decay = 1), so the cross-entropy only needs first frames and the
    steps h_i - decay h_{i-1}, whose means are mu_i - decay mu_{i-1} and variances
    v_i + decay^2 v_{i-1} under q.

    mu, logvar: [B, N, F]; sigma2: the step variance sigma_t^2; start: the first frame's
    variance (1 in eq 8; docs/design.md on what a smaller one does); decay: lambda of the
    slow feature analysis prior of section 2 (1 in eq 8; below 1 a constant per video
    pays at every step, docs/design.md) -> [B].
    """
    _check(mu, logvar)
    _check_sigma2(sigma2)
    _check_sigma2(start, "start")
    _check_decay(decay)
    n = mu.shape[1]
    var = logvar.exp()
    first = (mu[:, 0].square() + var[:, 0]) / start + math.log(start)  # [B, F]
    if decay == 1.0:  # eq 8 as written (the same arithmetic as before decay existed)
        steps = (mu[:, 1:] - mu[:, :-1]).square() + var[:, 1:] + var[:, :-1]  # [B, N-1, F]
    else:
        steps = (mu[:, 1:] - decay * mu[:, :-1]).square() + var[:, 1:] + decay**2 * var[:, :-1]
    cross = first + steps.sum(dim=1) / sigma2 + (n - 1) * math.log(sigma2)
    per_feature = 0.5 * (cross - n - logvar.sum(dim=1))  # [B, F]
    return per_feature.sum(dim=1)


# -- the same priors as objects: what a kind gives each block of its features ----------


@dataclass(frozen=True)
class BlockPrior:
    """The prior of one block of k latent features of a sequence, every feature
    independent of the others: its KL (a loss term ``kl_<name>``) and its draws.

    A kind lists its blocks as (prior, feature slice) pairs
    (:meth:`stvae.kinds.blocks.VideoVAE.blocks`); a prior of a new shape is a subclass
    with these two methods, and the kinds' contract tests check that its draws have the
    density its KL assumes (tests/test_kinds.py).
    """

    name: ClassVar[str] = ""

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(q || p) of a diagonal posterior, mu, logvar [B, N, k] -> [B]."""
        raise NotImplementedError

    def draw(self, noise: Tensor) -> Tensor:
        """h [V, N, k] from p, given standard-normal noise [V, N + 1, k] (slot 0 for what
        is drawn once per video, slots 1..N for each frame)."""
        raise NotImplementedError

    def means(self, noise: Tensor) -> Tensor:
        """The conditional means along the path :meth:`draw` takes from the same noise
        [V, N + 1, k]: E[h_t | h_<t] [V, N, k] (with the per-video draw, where there is
        one, as part of the past): what the field's protocol decodes for dynamics drawn
        from the prior (:mod:`stvae.field`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class StandardPrior(BlockPrior):
    """N(0, I) per frame: the VAE baseline's."""

    name: ClassVar[str] = "standard"

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return kl_standard(mu, logvar)

    def draw(self, noise: Tensor) -> Tensor:
        return noise[:, 1:]

    def means(self, noise: Tensor) -> Tensor:
        return torch.zeros_like(noise[:, 1:])


@dataclass(frozen=True)
class StaticPrior(BlockPrior):
    """Eq 7: h_0 ~ N(0, 1) per video, h_i = h_0 + N(0, sigma2) per frame."""

    sigma2: float
    name: ClassVar[str] = "static"

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return kl_static(mu, logvar, self.sigma2)

    def draw(self, noise: Tensor) -> Tensor:
        return noise[:, :1] + self.sigma2**0.5 * noise[:, 1:]

    def means(self, noise: Tensor) -> Tensor:
        """E[h_i | h_0] = h_0 for every frame."""
        return noise[:, :1].expand(-1, noise.shape[1] - 1, -1)


@dataclass(frozen=True)
class WalkPrior(BlockPrior):
    """Eq 8: a random walk from h_1 ~ N(0, start) (eq 8: start = 1) with steps
    h_i = decay h_{i-1} + N(0, sigma2) (eq 8: decay = 1; section 2's slow feature
    analysis prior has a lambda below 1)."""

    sigma2: float
    start: float = 1.0
    decay: float = 1.0
    name: ClassVar[str] = "temporal"

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return kl_temporal(mu, logvar, self.sigma2, self.start, self.decay)

    def draw(self, noise: Tensor) -> Tensor:
        first, step = noise[:, :1], noise[:, 1:]
        if self.decay == 1.0:
            walk = torch.cat([torch.zeros_like(first), step[:, 1:]], 1).cumsum(1)
            return self.start**0.5 * first + self.sigma2**0.5 * walk
        h = [self.start**0.5 * first[:, 0]]
        for i in range(1, step.shape[1]):
            h.append(self.decay * h[-1] + self.sigma2**0.5 * step[:, i])
        return torch.stack(h, 1)

    def means(self, noise: Tensor) -> Tensor:
        """E[h_1] = 0, E[h_t | h_<t] = decay h_{t-1}: the walk one step behind."""
        h = self.draw(noise)
        return torch.cat([torch.zeros_like(h[:, :1]), self.decay * h[:, :-1]], 1)
