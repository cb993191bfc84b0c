"""Figures: every file is written, has the right size, and is not blank."""

import numpy as np
import pytest
from PIL import Image

from stvae.cli import main
from stvae.data import DataConfig
from stvae.figures import make_figures
from stvae.model import ModelConfig
from stvae.train import TrainConfig, train

EXPECTED = [
    "fig2_swap.png",
    "fig3_temporal_sequence.png",
    "fig4_static_interpolation.png",
    "fig5_temporal_interpolation.png",
    "fig8_latents.png",
    "reconstructions.png",
    "prior_sequences.png",
    "field_static_from_prior.png",
    "field_dynamics_from_prior.png",
    "videos.gif",
    "curves.png",
    "index.html",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, features in (("hierarchical", 4), ("vae", 3)):
        cfg = TrainConfig(
            model=ModelConfig(kind=kind, features=features),
            data=DataConfig(frames=8),
            steps=3,
            batch_videos=2,
            log_every=1,
        )
        train(cfg, root / kind)
        out[kind] = root / kind
    return out


def _not_blank(path):
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    return img.std() > 1.0


def test_every_figure_is_written_and_not_blank(runs, tmp_path):
    made = make_figures(runs["hierarchical"], out=tmp_path / "figs")
    assert sorted(made) == sorted(EXPECTED)
    for name in EXPECTED:
        path = tmp_path / "figs" / name
        assert path.is_file() and path.stat().st_size > 500, name
        if name.endswith((".png", ".gif")):
            assert _not_blank(path), name
    gif = Image.open(tmp_path / "figs" / "videos.gif")  # four clips side by side, 3x
    assert gif.n_frames == 8 and gif.size == (3 * (4 * 64 + 3 * 2), 3 * 64)
    page = (tmp_path / "figs" / "index.html").read_text()
    assert all(name in page for name in EXPECTED if name != "index.html")


@pytest.mark.slow
def test_baseline_figures_name_their_division(runs, capsys):
    assert main(["figures", str(runs["vae"])]) == 0
    page = (runs["vae"] / "figures" / "index.html").read_text()
    assert "baseline: the best division on this data" in page
    assert "wrote 12 files" in capsys.readouterr().out


def test_decode_takes_any_leading_shape_and_float64_and_matches_the_decoder():
    import torch

    from stvae.figures import _decode
    from stvae.model import make_model

    model = make_model(ModelConfig(features=4)).eval()
    h = np.random.default_rng(1).normal(size=(3, 5, 4))  # float64, as numpy makes it
    with torch.no_grad():
        want = torch.sigmoid(model.decode(torch.from_numpy(h).float())).squeeze(-3).numpy()
    assert _decode(model, h).shape == (3, 5, 64, 64)
    np.testing.assert_allclose(_decode(model, h), want, atol=1e-6)
    np.testing.assert_allclose(_decode(model, h[1]), want[1], atol=1e-6)  # [N, F]
