"""The Disentangled Sequential Autoencoder (Li & Mandt, ICML 2018), in stvae's harness.

One static latent f per video and one dynamic latent z_t per frame:

* encoder: Table 4 up to its last hidden layer (256 per frame), shared by both posteriors;
* q(f | x_1:T): a bidirectional LSTM over the frames' encodings, its last states -> one
  Gaussian per video; prior N(0, I);
* q(z_t | .): ``factorized``, from frame t alone (a linear head on its encoding), or
  ``full``, a bidirectional LSTM over the encodings with f (in training the sample of f
  that is decoded, in ``encode`` its mean), then a forward RNN over its outputs, so z_t
  depends on the whole video and on f (Li & Mandt's two variants);
* p(z_t | z_<t): an LSTM over z_1..z_{t-1} (z_0 = 0) emitting a Gaussian per step; the
  KL is the analytic Gaussian KL per step at the posterior sample z_<t, summed, as in the
  paper;
* decoder: Table 5 fed [f, z_t] per frame; Bernoulli likelihood as for the other kinds.

Its interface is every kind's (:class:`stvae.elbo.SequenceVAE`): ``encode`` gives
[B, N, F] with f (repeated over the frames) as the first ``static_features`` features and
z_t the rest, so probes, figures and reproduce treat it like the hierarchical model; the
loss terms per frame are ``kl_static`` for f and ``kl_dynamic`` for z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from stvae.elbo import SequenceVAE
from stvae.errors import StvaeError
from stvae.kinds.blocks import static_features_field
from stvae.nets import HIDDEN, Decoder, Encoder

__all__ = ["DSVAE", "DSVAEOptions", "LstmPrior", "POSTERIORS", "RNN_HIDDEN", "gaussian_kl"]

RNN_HIDDEN = 256  # LSTM/RNN state size (Li & Mandt use 256-512)
POSTERIORS = ("factorized", "full")  # the dynamic posterior (Li & Mandt's two)


@dataclass(frozen=True)
class DSVAEOptions:
    static_features: int | None = static_features_field()  # the size of f; None: half
    # q(z_t | x_t) alone, or "full" (whole video and f)
    posterior: str = field(
        default="factorized",
        metadata={
            "choices": POSTERIORS,
            "help": "the dynamic posterior from each frame alone (factorized, default) or "
            "from the whole video and the static latent (full)",
        },
    )


def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) per element, diagonal Gaussians."""
    return 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0
    )


class LstmPrior:
    """p(z_t | z_<t), the dynamics' learned prior: an LSTM over z_1..z_{t-1} (z_0 = 0)
    emitting a Gaussian per step. It reads the model's ``prior_rnn`` and ``prior_head``
    (their weights stay the model's, under those names)."""

    def __init__(self, rnn: nn.LSTMCell, head: nn.Linear):
        self.rnn, self.head = rnn, head

    def conditionals(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The Gaussian of every step given the ones before, z [B, N, D] -> (mu, logvar)
        [B, N, D]: step t sees z_1..z_{t-1}, the LSTM running over [0, z_1, ..., z_{N-1}]."""
        b, n, _ = z.shape
        shifted = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
        h = c = z.new_zeros(b, RNN_HIDDEN)
        outs = []
        for t in range(n):
            h, c = self.rnn(shifted[:, t], (h, c))
            outs.append(self.head(h))
        return torch.stack(outs, 1).chunk(2, -1)

    def kl(self, mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        """KL of q(z_t | .) = N(mu, e^logvar) [B, N, D] to p(z_t | z_<t) at the sample z
        [B, N, D], summed over steps and features [B] (Li & Mandt's estimate)."""
        mu_p, logvar_p = self.conditionals(z)
        return gaussian_kl(mu, logvar, _full(mu_p), _full(logvar_p)).sum((1, 2))

    @torch.no_grad()
    def draw(self, videos: int, frames: int, generator=None, means: bool = False) -> Tensor:
        """z [videos, frames, D] step by step, each z_t ~ p(z_t | z_<t) fed back into the
        LSTM for the next; noise from ``generator`` (a CPU generator). With ``means``, the
        mean of each step's Gaussian along that sampled path, as C-DSVAE decodes its
        prior's dynamics."""
        like = {"device": self.head.weight.device, "dtype": self.head.weight.dtype}
        z_prev = torch.zeros(videos, self.rnn.input_size, **like)
        h = c = torch.zeros(videos, RNN_HIDDEN, **like)
        out = []
        for _ in range(frames):
            h, c = self.rnn(z_prev, (h, c))
            mu, logvar = self.head(h).chunk(2, -1)
            noise = torch.randn(mu.shape, generator=generator).to(**like)
            z_prev = mu + noise * (0.5 * logvar).exp()
            out.append(mu if means else z_prev)
        return torch.stack(out, 1)


def _full(t: Tensor) -> Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


class DSVAE(SequenceVAE):
    """Videos [B, N, C, 64, 64] in [0, 1] -> loss terms; see the module doc."""

    summary = "the Disentangled Sequential Autoencoder (Li & Mandt 2018)"
    split = True
    options = DSVAEOptions

    @classmethod
    def check(cls, config) -> None:
        if config.posterior not in POSTERIORS:
            raise StvaeError(
                f"posterior must be one of {', '.join(POSTERIORS)}; got {config.posterior!r}"
            )

    def __init__(self, config):
        super().__init__(config)
        s, d = config.n_static, config.features - config.n_static
        self.static_size, self.dynamic_size = s, d
        c = config.in_channels
        self.encoder = Encoder(config.features, heads=False, channels=c)  # Table 4 to Linear 5
        self.static_rnn = nn.LSTM(HIDDEN, RNN_HIDDEN, batch_first=True, bidirectional=True)
        self.static_head = nn.Linear(2 * RNN_HIDDEN, 2 * s)
        if config.posterior == "full":
            self.dynamic_rnn = nn.LSTM(HIDDEN + s, RNN_HIDDEN, batch_first=True, bidirectional=True)
            self.dynamic_fwd = nn.RNN(2 * RNN_HIDDEN, RNN_HIDDEN, batch_first=True)
            self.dynamic_head = nn.Linear(RNN_HIDDEN, 2 * d)
        else:
            self.dynamic_head = nn.Linear(HIDDEN, 2 * d)
        self.prior_rnn = nn.LSTMCell(d, RNN_HIDDEN)
        self.prior_head = nn.Linear(RNN_HIDDEN, 2 * d)
        self.dynamics_prior = LstmPrior(self.prior_rnn, self.prior_head)  # not a module
        self.decoder = Decoder(config.features, channels=c)

    def _static_posterior(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, N, C, 64, 64] -> the frames' encodings e [B, N, 256] and q(f | x_1:N):
        (mu_f, logvar_f) [B, S]."""
        b, n = x.shape[:2]
        e = self.encoder.trunk(x.reshape(b * n, *x.shape[2:])).view(b, n, -1)  # [B, N, 256]
        _, (last, _) = self.static_rnn(e)  # last: [2, B, H], forward and backward
        mu_f, logvar_f = self.static_head(torch.cat([last[0], last[1]], -1)).chunk(2, -1)
        return e, mu_f, logvar_f

    def _dynamic_posterior(self, e: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        """q(z_t | .) from the encodings e [B, N, 256] and, for ``full``, a value of f
        [B, S] -> (mu_z, logvar_z) [B, N, D]. Training gives ``full`` the sample of f that
        is decoded (as Li & Mandt's code does); ``encode`` gives it f's mean."""
        if self.config.posterior == "full":
            b, n = e.shape[:2]
            with_f = torch.cat([e, f[:, None].expand(b, n, -1).to(e.dtype)], -1)  # [B, N, 256+S]
            both, _ = self.dynamic_rnn(with_f)  # [B, N, 2H]
            fwd, _ = self.dynamic_fwd(both)  # [B, N, H]
            return self.dynamic_head(fwd).chunk(2, -1)
        return self.dynamic_head(e).chunk(2, -1)  # [B, N, D] each

    def _posteriors(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """x [B, N, C, 64, 64] -> (mu_f, logvar_f) [B, S] and (mu_z, logvar_z) [B, N, D],
        the dynamic posterior given f's mean."""
        e, mu_f, logvar_f = self._static_posterior(x)
        return (mu_f, logvar_f, *self._dynamic_posterior(e, mu_f))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, N, C, 64, 64] -> (mu, logvar) [B, N, F]: f repeated over frames, then z_t."""
        mu_f, logvar_f, mu_z, logvar_z = self._posteriors(x)
        n = x.shape[1]
        mu = torch.cat([mu_f[:, None].expand(-1, n, -1), mu_z], -1)
        logvar = torch.cat([logvar_f[:, None].expand(-1, n, -1), logvar_z], -1)
        return mu, logvar

    @torch.no_grad()
    def prior_sample(self, videos: int, frames: int, generator=None, means: bool = False) -> Tensor:
        """h [V, N, F]: f ~ N(0, I) once per video (repeated over frames), then z_1:N
        from the learned prior (:meth:`LstmPrior.draw`), from one CPU generator; with
        ``means``, f's draw is kept (the static factor has no past) and z is each
        step's mean along the sampled path."""
        like = {"device": self.prior_head.weight.device, "dtype": self.prior_head.weight.dtype}
        f = torch.randn(videos, self.static_size, generator=generator).to(**like)
        z = self.dynamics_prior.draw(videos, frames, generator, means)
        return torch.cat([f[:, None].expand(-1, frames, -1), z], -1)

    def kl_terms(
        self, mu_f: Tensor, logvar_f: Tensor, mu_z: Tensor, logvar_z: Tensor, z: Tensor
    ) -> dict[str, Tensor]:
        """KL of f to N(0, I) per video [B], and of z to the LSTM prior at the sample z,
        summed over steps [B]."""
        mu_f, logvar_f, mu_z, logvar_z, z = (
            _full(t) for t in (mu_f, logvar_f, mu_z, logvar_z, z)
        )  # the closed forms want at least float32 (bf16 autocast elsewhere)
        kl_f = gaussian_kl(mu_f, logvar_f, torch.zeros_like(mu_f), torch.zeros_like(mu_f))
        return {"kl_static": kl_f.sum(-1), "kl_dynamic": self.dynamics_prior.kl(mu_z, logvar_z, z)}

    def prior_kl(self, mu: Tensor, logvar: Tensor, h: Tensor | None = None) -> Tensor:
        """The KL of a posterior given as :meth:`encode` gives it, mu, logvar [B, N, F]
        (f from frame 0), to the whole prior [B], the dynamic part at the sample ``h``
        [B, N, F] (default: the means)."""
        s = self.static_size
        z = (mu if h is None else h)[..., s:]
        terms = self.kl_terms(mu[:, 0, :s], logvar[:, 0, :s], mu[..., s:], logvar[..., s:], z)
        return sum(terms.values())

    def latents(self, x: Tensor, eps: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """h = [f, z_t] [B, N, F], one reparameterised sample, and the KL terms [B].

        ``eps`` [B, N, F]: f takes eps[:, 0, :S] (one draw per video), z_t eps[:, t, S:].
        """
        b, n = x.shape[:2]
        s = self.static_size
        e, mu_f, logvar_f = self._static_posterior(x)
        if eps is None:
            eps = torch.randn(b, n, self.config.features, device=x.device)
        eps = eps.to(mu_f.dtype)
        f = mu_f + eps[:, 0, :s] * (0.5 * logvar_f).exp()  # [B, S]
        mu_z, logvar_z = self._dynamic_posterior(e, f)
        z = mu_z + eps[..., s:].to(mu_z.dtype) * (0.5 * logvar_z).exp()  # [B, N, D]
        h = torch.cat([f[:, None].expand(-1, n, -1), z], -1)  # [B, N, F]
        return h, self.kl_terms(mu_f, logvar_f, mu_z, logvar_z, z)
