"""--likelihood: eq 5's Bernoulli term (the default, as every earlier run) or a Gaussian
with a learned variance per channel, against torch.distributions in float64."""

import json
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from stvae.cli import main
from stvae.config import TrainConfig
from stvae.kinds import KINDS
from stvae.model import ModelConfig, make_model


@pytest.mark.parametrize("channels", [1, 3])
def test_each_likelihood_is_its_distributions_negative_log_likelihood(channels):
    torch.manual_seed(0)
    x = torch.rand(2, 3, channels, 64, 64, dtype=torch.float64)
    logits = 2 * torch.randn_like(x)
    gauss = make_model(ModelConfig(features=4, channels=channels, likelihood="gaussian"))
    with torch.no_grad():
        gauss.log_sigma.copy_(torch.linspace(-2.0, -1.0, channels))
    sigma = gauss.log_sigma.double().exp().view(-1, 1, 1)
    want = -Normal(torch.sigmoid(logits), sigma).log_prob(x).sum()
    got = gauss.reconstruction(logits, x)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    bern = make_model(ModelConfig(features=4, channels=channels))
    want = -Bernoulli(logits=logits, validate_args=False).log_prob(x).sum()  # x in [0, 1]
    assert bern.reconstruction(logits, x).item() == pytest.approx(want.item(), rel=1e-5)
    assert not hasattr(bern, "log_sigma")  # a Bernoulli model keeps its old weights' layout


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_trains_its_variance_under_a_gaussian(kind):
    model = make_model(ModelConfig(kind=kind, features=4, likelihood="gaussian"))
    out = model(torch.rand(2, 3, 1, 64, 64))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.log_sigma.grad.abs().item() > 0
    assert model.log_sigma.item() == pytest.approx(math.log(0.1), rel=1e-6)


def test_old_configs_read_as_bernoulli_and_a_bad_value_is_refused():
    d = TrainConfig().to_dict()
    del d["model"]["likelihood"]  # written before the option existed
    assert TrainConfig.from_dict(d).model.likelihood == "bernoulli"
    from stvae.errors import StvaeError

    with pytest.raises(StvaeError, match="likelihood must be one of bernoulli, gaussian"):
        ModelConfig(likelihood="poisson")


def test_the_flag_is_recorded_and_resumed(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--steps", "2", "--batch-videos", "2", "--frames", "3", "--no-compile"]
    argv += ["--likelihood", "gaussian", "--no-check", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["model"]["likelihood"] == "gaussian"
    capsys.readouterr()
    assert main([*argv, "--resume", "--steps", "3"]) == 0, capsys.readouterr().err
    assert "resumed at step 2, 3 steps" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main([*argv[:1], "--likelihood", "poisson", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'poisson'" in err[0]
    assert not (tmp_path / "x").exists()
