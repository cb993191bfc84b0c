"""The Disentangled Sequential Autoencoder (Li & Mandt 2018) as a fourth model kind."""

import json

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from stvae.data import generate
from stvae.evaluate import encode_run, evaluate_run
from stvae.kinds.dsvae import DSVAE, RNN_HIDDEN
from stvae.model import ModelConfig, make_model
from stvae.nets import HIDDEN, Encoder
from stvae.train import PRESETS, load_run, train

B, N = 3, 6


def video(seed=0):
    return torch.rand(B, N, 1, 64, 64, generator=torch.Generator().manual_seed(seed))


def lstm_params(inp, hid, directions=1):
    return directions * 4 * (hid * inp + hid * hid + 2 * hid)


@pytest.mark.parametrize("posterior", ["factorized", "full"])
def test_shapes_and_parameter_counts(posterior):
    cfg = ModelConfig(kind="dsvae", features=4, posterior=posterior)  # 2 static + 2 dynamic
    model = make_model(cfg).eval()
    assert isinstance(model, DSVAE) and cfg.n_static == 2
    mu, logvar = model.encode(video())
    assert mu.shape == logvar.shape == (B, N, 4)
    assert torch.equal(mu[:, :1, :2].expand(-1, N, -1), mu[..., :2])  # one f per video
    trunk = sum(p.numel() for p in Encoder(4, heads=False).parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters())
    s, d, h = 2, 2, RNN_HIDDEN
    expected = trunk + decoder
    expected += lstm_params(HIDDEN, h, 2) + (2 * h + 1) * 2 * s  # q(f | x_1:T)
    if posterior == "full":  # bidirectional LSTM over [e_t, f], forward RNN, head
        expected += lstm_params(HIDDEN + s, h, 2) + (h * 2 * h + h * h + 2 * h) + (h + 1) * 2 * d
    else:
        expected += (HIDDEN + 1) * 2 * d
    expected += lstm_params(d, h) + (h + 1) * 2 * d  # p(z_t | z_<t)
    assert sum(p.numel() for p in model.parameters()) == expected
    out = model.train()(video())
    assert set(out) == {"reconstruction", "kl_static", "kl_dynamic", "kl", "loss"}


def test_the_dynamic_posterior_reads_one_frame_or_the_whole_video():
    x = video()
    y = x.clone()
    y[:, 0] = 1 - y[:, 0]  # change only the first frame
    for posterior, later_moves in (("factorized", False), ("full", True)):
        model = make_model(ModelConfig(kind="dsvae", features=4, posterior=posterior)).eval()
        with torch.no_grad():
            za, zb = model.encode(x)[0][..., 2:], model.encode(y)[0][..., 2:]
        assert not torch.allclose(za[:, 0], zb[:, 0])
        assert (not torch.allclose(za[:, 1:], zb[:, 1:])) == later_moves, posterior


def test_kl_terms_equal_torch_distributions_per_step():
    torch.manual_seed(0)
    model = make_model(ModelConfig(kind="dsvae", features=5, static_features=2)).double()
    mu_f, logvar_f = torch.randn(B, 2).double(), torch.randn(B, 2).double()
    mu_z, logvar_z = torch.randn(B, N, 3).double(), torch.randn(B, N, 3).double()
    z = torch.randn(B, N, 3).double()
    got = model.kl_terms(mu_f, logvar_f, mu_z, logvar_z, z)
    q_f = Normal(mu_f, (0.5 * logvar_f).exp())
    want_f = kl_divergence(q_f, Normal(torch.zeros_like(mu_f), torch.ones_like(mu_f))).sum(-1)
    torch.testing.assert_close(got["kl_static"].double(), want_f)
    # the prior of step t, computed independently: the LSTM cell over z_0 = 0, z_1, ...
    h = c = torch.zeros(B, RNN_HIDDEN).double()
    prev, want_z = torch.zeros(B, 3).double(), torch.zeros(B).double()
    for t in range(N):
        h, c = model.prior_rnn(prev, (h, c))
        mu_p, logvar_p = model.prior_head(h).chunk(2, -1)
        q = Normal(mu_z[:, t], (0.5 * logvar_z[:, t]).exp())
        want_z += kl_divergence(q, Normal(mu_p, (0.5 * logvar_p).exp())).sum(-1)
        prev = z[:, t]
    torch.testing.assert_close(got["kl_dynamic"].double(), want_z)


def test_prior_samples_have_the_statistics_it_was_given():
    model = make_model(ModelConfig(kind="dsvae", features=4))
    mean, logvar = torch.tensor([1.5, -0.5]), torch.tensor([0.0, float(np.log(0.25))])
    with torch.no_grad():
        for p in model.prior_rnn.parameters():
            p.zero_()
        model.prior_head.weight.zero_()
        model.prior_head.bias.copy_(torch.cat([mean, logvar]))
    z = model.dynamics_prior.draw(4000, 5, torch.Generator().manual_seed(0))  # [4000, 5, 2]
    assert z.shape == (4000, 5, 2)
    torch.testing.assert_close(z.mean((0, 1)), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(z.var((0, 1)), logvar.exp(), atol=0.03, rtol=0.03)


def test_prior_samples_feed_each_draw_back_into_the_lstm():
    """z_t ~ p(z_t | z_<t) at the drawn z_<t: each draw's noise, recovered with prior() at
    the samples, is the generator's own noise. Feeding zeros or the means instead of the
    draws gives other means from t = 2 on, and this fails."""
    model = make_model(ModelConfig(kind="dsvae", features=4)).eval()
    with torch.no_grad():
        model.prior_rnn.weight_ih.mul_(20)  # a prior that leans on its past
    z = model.dynamics_prior.draw(64, 6, torch.Generator().manual_seed(3))  # [64, 6, 2]
    with torch.no_grad():
        mu, logvar = model.dynamics_prior.conditionals(z)
    noise = (z - mu) / (0.5 * logvar).exp()
    g = torch.Generator().manual_seed(3)
    drawn = torch.stack([torch.randn(64, 2, generator=g) for _ in range(6)], 1)
    torch.testing.assert_close(noise, drawn, atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # the check has teeth: the prior's means do move with z_<t
        moved, _ = model.dynamics_prior.conditionals(torch.zeros_like(z))
    assert (moved[:, 1:] - mu[:, 1:]).abs().mean() > 0.05


@pytest.mark.parametrize("posterior", ["factorized", "full"])
def test_the_full_dynamic_posterior_reads_the_sample_of_f(posterior):
    """In training the full posterior of z takes the sample of f that is decoded (another
    draw of f moves z); the factorized one never sees f."""
    torch.manual_seed(0)
    model = make_model(ModelConfig(kind="dsvae", features=4, posterior=posterior)).eval()
    x = torch.rand(3, 5, 1, 64, 64)
    eps = torch.randn(3, 5, 4)
    other = eps.clone()
    other[:, 0, :2] += 2.0  # another draw of f, the same noise for z
    with torch.no_grad():
        h, _ = model.latents(x, eps)
        h2, _ = model.latents(x, other)
        mu, _ = model.encode(x)
    assert (h[..., :2] - h2[..., :2]).abs().min() > 0.1  # f moved
    moved = (h[..., 2:] - h2[..., 2:]).abs().max()
    assert moved > 1e-3 if posterior == "full" else moved == 0
    with torch.no_grad():  # encode gives z's posterior mean at f's mean
        zero, _ = model.latents(x, torch.zeros_like(eps))
    torch.testing.assert_close(zero, mu)


TINY = PRESETS["smoke"].replace(**{"model.kind": "dsvae", "model.posterior": "full"}, lr=3e-3)


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_training_lowers_the_loss_and_resume_is_bit_identical(tmp_path):
    train(TINY.replace(steps=30, checkpoint_every=30), tmp_path / "long")
    losses = _losses(tmp_path / "long")
    assert np.mean(losses[-5:]) < 0.9 * losses[0]  # measured: 2951 -> about 2400
    train(TINY, tmp_path / "straight")
    train(TINY.replace(steps=4), tmp_path / "resumed")
    train(TINY, tmp_path / "resumed", resume=True)
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "resumed")
    a, _ = load_run(tmp_path / "straight")
    b, _ = load_run(tmp_path / "resumed")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


@pytest.mark.slow
def test_encode_evaluate_and_figures_run_on_it(tmp_path):
    from stvae.figures import make_figures

    run = tmp_path / "run"
    train(TINY, run)
    data = generate("bouncing-mnist", 8, 4, seed=0, split="test")
    feats = encode_run(run, data)
    assert feats["mu"].shape == (8, 4, 4) and int(feats["static_features"]) == 2
    ev = evaluate_run(run, data)
    assert ev.model == "dsvae" and ev.first("linear").disentanglement.division == "model"
    assert {"d_score", "d_score_rbf", "static_accuracy_rbf"} <= set(ev.to_dict())
    made = make_figures(run, out=tmp_path / "figs")
    assert "fig2_swap.png" in made and (tmp_path / "figs" / "index.html").exists()
    assert (tmp_path / "figs" / "prior_sequences.png").exists()  # sampled from its prior


def test_prior_means_are_each_steps_mean_along_the_sampled_path():
    """draw(means=True) gives mu_t of p(z_t | z_<t) at the path draw() samples from the
    same generator (what C-DSVAE decodes), checked against the teacher-forced
    conditionals at that path; prior_sample(means=True) keeps f's draw."""
    model = make_model(ModelConfig(kind="dsvae", features=4)).eval()
    with torch.no_grad():
        model.prior_rnn.weight_ih.mul_(20)  # a prior that leans on its past
    z = model.dynamics_prior.draw(32, 5, torch.Generator().manual_seed(7))
    means = model.dynamics_prior.draw(32, 5, torch.Generator().manual_seed(7), means=True)
    with torch.no_grad():
        mu, _ = model.dynamics_prior.conditionals(z)
    torch.testing.assert_close(means, mu, atol=1e-5, rtol=1e-5)
    assert (means - z).abs().mean() > 0.1
    h = model.prior_sample(32, 5, torch.Generator().manual_seed(8))
    hm = model.prior_sample(32, 5, torch.Generator().manual_seed(8), means=True)
    s = model.static_size
    assert torch.equal(h[..., :s], hm[..., :s]) and not torch.equal(h[..., s:], hm[..., s:])
