"""The closed-form KLs against torch.distributions on the explicit joint covariances (float64)."""

import dataclasses
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence
from torch.utils._python_dispatch import TorchDispatchMode

from stvae.priors import kl_standard, kl_static, kl_temporal


def static_cov(n: int, sigma2: float) -> torch.Tensor:
    return sigma2 * torch.eye(n, dtype=torch.float64) + torch.ones(n, n, dtype=torch.float64)


def temporal_cov(n: int, sigma2: float, start: float = 1.0, decay: float = 1.0) -> torch.Tensor:
    """The walk's covariance over n frames. Eq 8 (decay 1): start + sigma2 min(i, j); with
    a decay, built from h = L e (h_1 = sqrt(start) e_1, h_i = decay h_{i-1} + sqrt(sigma2)
    e_i) as L L^T, a construction independent of the closed form's."""
    idx = torch.arange(n, dtype=torch.float64)
    if decay == 1.0:
        return start + sigma2 * torch.minimum(idx[:, None], idx[None, :])
    scale = torch.full((n,), sigma2**0.5, dtype=torch.float64)
    scale[0] = start**0.5
    powers = decay ** (idx[:, None] - idx[None, :]).clamp(min=0)  # decay^(i - j), i >= j
    lower = torch.tril(powers) * scale[None, :]  # h_i = sum_j decay^(i-j) scale_j e_j
    return lower @ lower.T


def oracle(mu: torch.Tensor, logvar: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """KL of [B, N, F] diagonal posteriors to N(0, cov) per feature, summed over features."""
    b, n, f = mu.shape
    q = MultivariateNormal(
        mu.permute(0, 2, 1).reshape(b * f, n),
        covariance_matrix=torch.diag_embed(logvar.exp().permute(0, 2, 1).reshape(b * f, n)),
    )
    p = MultivariateNormal(torch.zeros(n, dtype=torch.float64), covariance_matrix=cov)
    return kl_divergence(q, p).reshape(b, f).sum(dim=1)


def sample(b, n, f, seed, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mu = scale * torch.randn(b, n, f, generator=g, dtype=dtype)
    logvar = torch.randn(b, n, f, generator=g, dtype=dtype) - 2.0
    return mu, logvar


@pytest.mark.parametrize("n", [1, 2, 3, 16, 50])
@pytest.mark.parametrize("sigma2", [0.01, 0.1, 1.0, 3.0])
def test_static_matches_joint_gaussian(n, sigma2):
    mu, logvar = sample(3, n, 4, seed=n)
    torch.testing.assert_close(
        kl_static(mu, logvar, sigma2),
        oracle(mu, logvar, static_cov(n, sigma2)),
        rtol=1e-9,
        atol=1e-8,
    )


@pytest.mark.parametrize("n", [1, 2, 3, 16, 50])
@pytest.mark.parametrize("sigma2", [0.01, 0.1, 1.0, 3.0])
@pytest.mark.parametrize("start", [1.0, 0.01, 4.0])
def test_temporal_matches_joint_gaussian(n, sigma2, start):
    mu, logvar = sample(3, n, 4, seed=100 + n)
    torch.testing.assert_close(
        kl_temporal(mu, logvar, sigma2, start),
        oracle(mu, logvar, temporal_cov(n, sigma2, start)),
        rtol=1e-9,
        atol=1e-8,
    )


@pytest.mark.parametrize("n", [1, 2, 3, 16, 50])
@pytest.mark.parametrize("sigma2", [0.01, 0.3])
@pytest.mark.parametrize("decay", [0.5, 0.9, 0.99])
def test_a_decaying_walk_matches_joint_gaussian(n, sigma2, decay):
    """``walk_decay`` (section 2's slow feature analysis prior, lambda below 1): against
    the covariance built from the walk's own recursion."""
    mu, logvar = sample(3, n, 4, seed=200 + n)
    torch.testing.assert_close(
        kl_temporal(mu, logvar, sigma2, 0.5, decay),
        oracle(mu, logvar, temporal_cov(n, sigma2, 0.5, decay)),
        rtol=1e-9,
        atol=1e-8,
    )
    # decay 1 in the recursion's construction is eq 8's min(i, j) form
    torch.testing.assert_close(
        temporal_cov(n, sigma2, 0.5, 1.0 - 1e-15), temporal_cov(n, sigma2, 0.5), rtol=1e-9, atol=0
    )


@pytest.mark.parametrize("n", [1, 16])
def test_standard_matches_identity_prior(n):
    mu, logvar = sample(3, n, 5, seed=7)
    torch.testing.assert_close(
        kl_standard(mu, logvar), oracle(mu, logvar, torch.eye(n, dtype=torch.float64))
    )


def test_static_prior_is_the_hierarchical_model_of_eq7():
    # The explicit covariance used as oracle is itself checked against sampling eq 7.
    g = torch.Generator().manual_seed(0)
    h0 = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    h = h0 + math.sqrt(0.3) * torch.randn(200_000, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(torch.cov(h.T), static_cov(4, 0.3), atol=0.02, rtol=0)


def test_temporal_prior_is_the_random_walk_of_eq8():
    g = torch.Generator().manual_seed(1)
    steps = torch.randn(200_000, 5, generator=g, dtype=torch.float64)
    steps[:, 1:] *= math.sqrt(0.3)
    h = steps.cumsum(dim=1)
    torch.testing.assert_close(torch.cov(h.T), temporal_cov(5, 0.3), atol=0.03, rtol=0)


def _block_kinds() -> list[str]:
    """The registered kinds whose prior is one of this module's per block of features."""
    from stvae.elbo import SequenceVAE
    from stvae.kinds import KINDS

    return [k for k, c in KINDS.items() if c.blocks.__func__ is not SequenceVAE.blocks.__func__]


@pytest.mark.parametrize("kind", _block_kinds())
def test_a_models_prior_samples_have_its_priors_covariance(kind):
    """prior_sample draws from the priors whose KLs are tested above: per feature, the
    covariance over frames is the explicit one (eq 7 static, eq 8 random walk, identity),
    and features are independent."""
    from stvae.kinds import KINDS
    from stvae.model import ModelConfig, make_model

    takes = {f.name for f in dataclasses.fields(KINDS[kind].options)}
    for decay in (1.0, 0.7):  # eq 8, and a decaying walk where the kind takes one
        given = {"sigma2": 0.3, "walk_start": 0.5, "walk_decay": decay}  # away from defaults
        config = ModelConfig(
            kind=kind, features=4, **{k: v for k, v in given.items() if k in takes}
        )
        model = make_model(config)
        h = model.prior_sample(100_000, 5, torch.Generator().manual_seed(2)).double()
        walk = (0.5, decay) if "walk_start" in takes else (1.0, 1.0)
        want = {
            "static": static_cov(5, 0.3),
            "temporal": temporal_cov(5, 0.3, *walk),
            "standard": torch.eye(5, dtype=torch.float64),
        }
        for prior, block in model.blocks(config):
            for i in range(block.start, block.stop):
                cov = torch.cov(h[..., i].T)  # h: [V, 5, 4]
                torch.testing.assert_close(cov, want[prior.name], atol=0.03, rtol=0)
        across = torch.corrcoef(h[:, 2].T)  # one frame, every feature: independent
        torch.testing.assert_close(across, torch.eye(4, dtype=torch.float64), atol=0.02, rtol=0)


@pytest.mark.parametrize("fn", [kl_static, kl_temporal])
@pytest.mark.parametrize("n", [16, 1000, 4000])
def test_float32_is_stable_at_small_sigma2_and_long_sequences(fn, n):
    # Near-constant static codes far from zero: the regime the prior rewards and
    # where a naive sum-of-squares formula cancels catastrophically in float32.
    g = torch.Generator().manual_seed(n)
    base = 3.0 + torch.randn(2, 1, 3, generator=g, dtype=torch.float64)
    mu = base + 0.05 * torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    if fn is kl_temporal:
        mu = base + 0.05 * torch.randn(2, n, 3, generator=g, dtype=torch.float64).cumsum(1) / n**0.5
    logvar = -5.0 + 0.1 * torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    exact = fn(mu, logvar, 0.01)
    approx = fn(mu.float(), logvar.float(), 0.01).double()
    assert torch.isfinite(approx).all()
    torch.testing.assert_close(approx, exact, rtol=2e-4, atol=1e-2)


@pytest.mark.parametrize("fn", [kl_static, kl_temporal, kl_standard])
def test_gradients_match_oracle(fn):
    mu, logvar = sample(2, 6, 3, seed=3)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    args = () if fn is kl_standard else (0.05,)
    grads = torch.autograd.grad(fn(mu, logvar, *args).sum(), (mu, logvar))
    cov = {
        kl_static: static_cov(6, 0.05),
        kl_temporal: temporal_cov(6, 0.05),
        kl_standard: torch.eye(6, dtype=torch.float64),
    }[fn]
    expected = torch.autograd.grad(oracle(mu, logvar, cov).sum(), (mu, logvar))
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_kl_is_zero_only_at_the_prior_for_one_frame():
    # With N = 1 both structured priors reduce to N(0, 1) (the static prior to N(0, 1 + sigma2)).
    mu = torch.zeros(1, 1, 2, dtype=torch.float64)
    assert kl_temporal(mu, torch.zeros_like(mu), 0.01).abs().item() < 1e-12
    logvar = torch.full_like(mu, math.log(1.01))
    assert kl_static(mu, logvar, 0.01).abs().item() < 1e-12


@pytest.mark.parametrize("n", [2, 16, 50])
def test_a_per_video_offset_costs_the_same_in_either_factor(n):
    """Why the hierarchical model can keep a video's identity in its temporal factor
    (docs/design.md, "Where a per-video constant goes"): moving every frame's posterior
    mean from the prior's mean 0 to a constant c raises the static KL by
    N c^2 / (2 (sigma2 + N)) per feature (eq 7: the frames' mean has variance
    1 + sigma2 / N) and the temporal KL by c^2 / 2 (eq 8: only the walk's start pays),
    the same to within a factor sigma2 / N; checked against the explicit joint
    covariances in float64."""
    sigma2, c, features = 0.01, 0.7, 2
    _, logvar = sample(1, n, features, seed=1)
    zero = torch.zeros_like(logvar)
    for fn, cov, per_feature in (
        (kl_static, static_cov(n, sigma2), n * c**2 / (2 * (sigma2 + n))),
        (kl_temporal, temporal_cov(n, sigma2), c**2 / 2),
    ):
        rise = fn(zero + c, logvar, sigma2) - fn(zero, logvar, sigma2)
        oracle_rise = oracle(zero + c, logvar, cov) - oracle(zero, logvar, cov)
        torch.testing.assert_close(rise, oracle_rise)
        torch.testing.assert_close(rise, torch.full_like(rise, features * per_feature))


class _CountElements(TorchDispatchMode):
    """Counts the elements every aten op writes: a deterministic proxy for time and memory."""

    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.elements += t.numel()
        return out


@pytest.mark.parametrize("fn", [kl_static, kl_temporal, kl_standard])
def test_cost_is_linear_in_frames(fn):
    # A 10x longer sequence must write 10x the elements (forward and backward), never
    # 100x as an explicit N x N covariance would.
    def elements(n):
        mu, logvar = sample(2, n, 3, seed=0, dtype=torch.float32)
        mu.requires_grad_(True)
        args = () if fn is kl_standard else (0.01,)
        with _CountElements() as counter:
            fn(mu, logvar, *args).sum().backward()
        return counter.elements

    small, large = elements(1_000), elements(10_000)
    assert 9.0 < large / small < 11.0


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\[B, N, F\]"):
        kl_static(torch.zeros(2, 3), torch.zeros(2, 3), 0.01)
    with pytest.raises(ValueError, match="sigma2"):
        kl_temporal(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), 0.0)


def _conditional_means(cov: torch.Tensor, x: torch.Tensor, first: int) -> torch.Tensor:
    """E[x_t | x_<t] for t = first..n-1 of zero-mean Gaussian vectors x [V, n] with joint
    covariance cov [n, n] (the textbook formula Sigma_{t,<t} Sigma_{<t,<t}^-1 x_<t)."""
    out = []
    for t in range(first, cov.shape[0]):
        if t == 0:
            out.append(torch.zeros_like(x[:, 0]))
            continue
        weights = torch.linalg.solve(cov[:t, :t], cov[:t, t])  # [t]
        out.append(x[:, :t] @ weights)
    return torch.stack(out, 1)


@pytest.mark.parametrize("name", ["static", "temporal", "decaying", "standard"])
def test_prior_means_are_each_frames_conditional_mean_along_the_drawn_path(name):
    """BlockPrior.means (what the field's protocol decodes for dynamics drawn from the
    prior) against the Gaussian conditional mean on the explicit joint covariance in
    float64: eq 7 with its per-video h_0 as the first variable of the joint, eq 8's walk,
    and N(0, I)."""
    from stvae.priors import StandardPrior, StaticPrior, WalkPrior

    n, s2 = 6, 0.3
    noise = torch.randn(
        500, n + 1, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    prior = {
        "static": StaticPrior(s2),
        "temporal": WalkPrior(s2),
        "decaying": WalkPrior(s2, 0.5, 0.7),
        "standard": StandardPrior(),
    }[name]
    h, means = prior.draw(noise)[..., 0], prior.means(noise)[..., 0]  # [V, n]
    if name == "static":  # the joint of (h_0, h_1..h_n): h_0 ~ N(0, 1), h_i = h_0 + N(0, s2)
        joint = torch.zeros(n + 1, n + 1, dtype=torch.float64)
        joint[1:, 1:] = static_cov(n, s2)
        joint[0, :] = joint[:, 0] = 1.0
        want = _conditional_means(joint, torch.cat([noise[:, :1, 0], h], 1), 1)
    else:
        cov = {
            "temporal": temporal_cov(n, s2),
            "decaying": temporal_cov(n, s2, 0.5, 0.7),
            "standard": torch.eye(n, dtype=torch.float64),
        }[name]
        want = _conditional_means(cov, h, 0)
    torch.testing.assert_close(means, want)
    assert (means - h).abs().mean() > 0.05  # means, not the draw itself


def test_a_tighter_walk_start_prices_a_per_video_offset_by_its_variance():
    """The one departure from eq 8 that stvae offers (``walk_start``, default 1, the
    paper's): with h_1^t ~ N(0, s) a constant c on every frame costs c^2 / (2 s) a
    feature, so below 1 the static factor is the cheaper home for it."""
    n, sigma2, c = 16, 0.01, 0.7
    _, logvar = sample(1, n, 2, seed=3)
    zero = torch.zeros_like(logvar)
    for start in (1.0, 0.1, 0.01):
        rise = kl_temporal(zero + c, logvar, sigma2, start) - kl_temporal(
            zero, logvar, sigma2, start
        )
        torch.testing.assert_close(rise, torch.full_like(rise, 2 * c**2 / (2 * start)))
    with pytest.raises(ValueError, match="start must be a positive finite number"):
        kl_temporal(zero, logvar, sigma2, 0.0)


def test_a_decaying_walk_prices_a_per_video_offset_at_every_step():
    """``walk_decay`` lambda < 1 (section 2's slow feature analysis prior): a constant c on
    every frame pays c^2 / (2 start) at the start and (1 - lambda)^2 c^2 / (2 sigma2) at
    each of the N - 1 steps: it grows with the clip and exceeds the static factor's
    N c^2 / (2 (sigma2 + N)), where eq 8 (lambda = 1) charges the start alone."""
    n, sigma2, c = 16, 0.01, 0.7
    _, logvar = sample(1, n, 2, seed=3)
    zero = torch.zeros_like(logvar)
    for decay in (1.0, 0.99, 0.9):
        rise = kl_temporal(zero + c, logvar, sigma2, 1.0, decay) - kl_temporal(
            zero, logvar, sigma2, 1.0, decay
        )
        per_feature = c**2 / 2 + (n - 1) * (1 - decay) ** 2 * c**2 / (2 * sigma2)
        torch.testing.assert_close(rise, torch.full_like(rise, 2 * per_feature))
        static = kl_static(zero + c, logvar, sigma2) - kl_static(zero, logvar, sigma2)
        assert (rise > static).all() if decay < 1 else (rise >= static).all()
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="decay must be in"):
            kl_temporal(zero, logvar, sigma2, 1.0, bad)
