"""The paper's figures (2-8) for any run and dataset, plus reconstructions, curves and GIFs.

All latents are posterior means of encoded held-out frames (the paper's Figure 2 decodes
prior samples instead; encodings show the same swap on real content). For a baseline,
which has no static/temporal split, the division is the one ``evaluate`` found (read from
``eval.json``, or computed here when the data has labels), and every figure says so.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from stvae.checkpoint import make_folder
from stvae.data import held_out, load_dataset, to_tensor
from stvae.errors import StvaeError, check_seed
from stvae.evaluate import disentanglement, static_targets
from stvae.field import decoded_batches, with_prior
from stvae.model import encode_videos
from stvae.result import read_result
from stvae.rundir import RUN_FILES, load_run

__all__ = ["make_figures", "division"]


def division(run_dir: Path, config, mu: np.ndarray, data: dict) -> tuple[list, list, str]:
    """(static indices, temporal indices, how they were chosen) for this run."""
    f, k = config.model.features, config.model.n_static
    if k:
        return list(range(k)), list(range(k, f)), "the model's own static/temporal split"
    statics = static_targets(data)
    first = next(iter(statics), None)  # sprites: the first attribute decides
    which = "" if first in (None, "static_labels") else f" for {first}"
    if (run_dir / "eval.json").exists():
        scores = read_result(run_dir / "eval.json").first("linear", first)
        d = scores.disentanglement if scores is not None else None
        if d:
            return (*d.sets, f"baseline: the division evaluate found{which}")
    spec = config.data.spec
    task = spec.temporal_task if spec is not None else "labels"
    if statics and ("temporal_labels" in data or task == "order"):
        d = disentanglement(mu, statics[first], data.get("temporal_labels"), 0, 0, task)
        return (*d.sets, f"baseline: the best division on this data{which}")
    half = max(1, f // 2)
    return list(range(half)), list(range(half, f)), "baseline, no labels: first half vs rest"


def _decode(model, h: np.ndarray) -> np.ndarray:
    """Latents [A, ..., F] -> images in [0, 1]: [A, ..., 64, 64] grey or [A, ..., 64, 64, 3]
    colour."""
    return _channels_last(torch.cat(list(decoded_batches(model, h))))


def _channels_last(x: torch.Tensor) -> np.ndarray:
    """[..., C, 64, 64] -> [..., 64, 64] (C = 1) or [..., 64, 64, 3] (C = 3), as numpy."""
    return x.squeeze(-3).numpy() if x.shape[-3] == 1 else x.movedim(-3, -1).numpy()


def _combine(static_from: np.ndarray, temporal_from: np.ndarray, s_idx, t_idx) -> np.ndarray:
    h = np.array(temporal_from, dtype=np.float32, copy=True)
    h[..., s_idx] = static_from[..., s_idx]
    h[..., t_idx] = temporal_from[..., t_idx]
    return h


def _grid(images: np.ndarray, path: Path, title: str, row_labels=None, col_labels=None) -> None:
    """images [R, C, 64, 64] (grey) or [R, C, 64, 64, 3] (RGB) in [0, 1] -> one PNG with a
    title."""
    r, c = images.shape[:2]
    fig = Figure(figsize=(1.1 * c + 0.6, 1.1 * r + 0.6))
    axes = fig.subplots(r, c, squeeze=False)
    for i in range(r):
        for j in range(c):
            ax = axes[i, j]
            if images.ndim == 5:
                ax.imshow(images[i, j], interpolation="nearest")
            else:
                ax.imshow(images[i, j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row_labels is not None and j == 0:
                ax.set_ylabel(row_labels[i], fontsize=7)
            if col_labels is not None and i == 0:
                ax.set_title(col_labels[j], fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _gif(frames: np.ndarray, path: Path, scale: int = 2) -> None:
    """frames [T, H, W] or [T, H, W, 3] in [0, 1] -> an animated GIF, ``scale`` times larger
    with crisp (nearest-neighbour) pixels."""
    imgs = [
        Image.fromarray(np.rint(f * 255).astype(np.uint8)).resize(
            (f.shape[1] * scale, f.shape[0] * scale), Image.Resampling.NEAREST
        )
        for f in frames
    ]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=150, loop=0)


def _side_by_side(videos: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Clips [T, H, W(, 3)] of equal shape -> one clip with them left to right, ``gap``
    white columns between."""
    white = np.ones((*videos[0].shape[:2], gap, *videos[0].shape[3:]), dtype=np.float32)
    parts = [videos[0]]
    for v in videos[1:]:
        parts += [white, v]
    return np.concatenate(parts, axis=2)


def _embed_2d(x: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """[M, k] -> [M, 2]: as it is for k = 2, padded for k = 1, t-SNE for k > 2."""
    if x.shape[1] == 2:
        return x, ""
    if x.shape[1] == 1:
        return np.concatenate([x, np.zeros_like(x)], 1), " (1 feature)"
    from sklearn.manifold import TSNE

    perplexity = min(30.0, (len(x) - 1) / 3)
    return TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(
        x
    ), " (t-SNE)"


def _latent_plot(mu, s_idx, t_idx, path: Path, note: str, seed: int) -> None:
    """Figure 8: frames of each video joined in time order, one colour per video."""
    v, n = mu.shape[:2]
    fig = Figure(figsize=(8, 4))
    axes = fig.subplots(1, 2)
    for ax, idx, name in ((axes[0], s_idx, "static"), (axes[1], t_idx, "temporal")):
        pts, how = _embed_2d(mu[..., idx].reshape(v * n, -1), seed)
        pts = pts.reshape(v, n, 2)
        for i in range(v):
            ax.plot(pts[i, :, 0], pts[i, :, 1], "-o", ms=3, lw=1, color=colormaps["tab10"](i % 10))
        ax.set_title(f"{name} factor{how}", fontsize=9)
    fig.suptitle(f"Encodings of {v} test videos, frames joined in time order ({note})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _curves(run_dir: Path, path: Path) -> bool:
    metrics = run_dir / RUN_FILES["metrics"]
    if not metrics.exists():
        return False
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows:
        return False
    steps = [r["step"] for r in rows]
    keys = ["reconstruction"] + sorted(k for k in rows[0] if k.startswith("kl_"))
    fig = Figure(figsize=(3.2 * len(keys), 2.8))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        ax.plot(steps, [r[key] for r in rows], lw=1)
        ax.set_title(f"{key} (nats/frame)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def make_figures(
    run_dir: str | Path,
    data: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Writes every figure of a run into ``out`` (default: ``<run>/figures``) with an
    ``index.html``; returns {file name: one-line explanation}."""
    check_seed(seed)
    run_dir = Path(run_dir)
    model, config = load_run(run_dir)
    if data is None:
        dataset = held_out(config.data, videos=64, seed=seed)
        source = f"held-out {config.data.source}" if config.data.generated else config.data.source
    else:
        dataset = load_dataset(data, config.data.frames, config.data.clip_stride, "test")
        source = str(data)
    videos = dataset["videos"]
    if len(videos) < 2:
        raise StvaeError(f"{source}: figures need at least 2 videos; got {len(videos)}")
    mu, _ = encode_videos(model, videos)  # [V, N, F]
    model.eval()
    s_idx, t_idx, note = division(run_dir, config, mu, dataset)
    out = Path(out) if out is not None else run_dir / "figures"
    make_folder(out)  # only once the inputs have been read
    # the frames as the model sees them: its channels (grey data to a colour model: RGB)
    inputs = _channels_last(to_tensor(videos, "cpu", config.model.in_channels))
    f = _Figures(model, mu, inputs, s_idx, t_idx, note, out)
    rng = np.random.default_rng(seed)
    v = mu.shape[0]
    a, b = rng.choice(v, 2, replace=False)
    f.swap(a, b)
    others = rng.choice(v, min(4, v), replace=False)
    f.temporal_sequence(a, others)
    f.interpolations(a, b)
    f.latents(rng.choice(v, min(6, v), replace=False), seed)
    f.reconstructions(a, b)
    f.prior_sequences(others, seed)
    f.prior_draws(a, seed)
    if _curves(run_dir, out / "curves.png"):
        f.made["curves.png"] = "Training curves from metrics.jsonl (log scale)."
    title = f"stvae figures: {run_dir.name} ({config.model.kind}, beta {config.model.beta:g})"
    f.index(title, source)
    return f.made


class _Figures:
    """The figures of one run's encodings mu [V, N, F] (Figs 2-8 and the rest), each method
    writing its files into ``out`` and their one-line explanations into ``made``."""

    def __init__(self, model, mu, inputs, s_idx, t_idx, note, out):
        self.model, self.mu, self.inputs = model, mu, inputs
        self.s_idx, self.t_idx, self.note, self.out = s_idx, t_idx, note, out
        self.n = mu.shape[1]
        self.made: dict[str, str] = {}

    def _mix(self, static, temporal):
        return _combine(static, temporal, self.s_idx, self.t_idx)

    def _prior(self, draws: int, seed: int) -> np.ndarray | None:
        """[draws, N, F] from the model's prior (``prior_sample``, seeded), or None for a
        kind without one to sample."""
        try:
            g = torch.Generator().manual_seed(seed)
            return self.model.prior_sample(draws, self.n, g).float().cpu().numpy()
        except NotImplementedError:
            return None

    def swap(self, a, b) -> None:
        """Figure 2: two frames, then the same with static and temporal parts swapped."""
        mu, n = self.mu, self.n
        ha, hb = mu[a, 0], mu[b, n // 2]
        top = _decode(self.model, np.stack([ha, hb]))
        bottom = _decode(self.model, np.stack([self._mix(hb, ha), self._mix(ha, hb)]))
        _grid(
            np.stack([top, bottom]),
            self.out / "fig2_swap.png",
            f"Fig 2: swap ({self.note})",
            ["decoded", "swapped"],
            ["frame A", "frame B"],
        )
        self.made["fig2_swap.png"] = (
            "Top: two decoded frames. Bottom: the same with static parts "
            "swapped; identity should swap, position or pose stay."
        )

    def temporal_sequence(self, a, others) -> None:
        """Figure 3: one sequence of temporal codes under several static codes."""
        mu, n = self.mu, self.n
        rows = np.stack(
            [_decode(self.model, self._mix(mu[o, :1].repeat(n, 0), mu[a])) for o in others]
        )
        _grid(
            rows[:, :: max(1, n // 8)],
            self.out / "fig3_temporal_sequence.png",
            f"Fig 3: rows static code of one video, columns time ({self.note})",
        )
        self.made["fig3_temporal_sequence.png"] = (
            "Each row keeps one video's static code; the columns "
            "follow one video's temporal codes in time."
        )

    def interpolations(self, a, b) -> None:
        """Figures 4-7: interpolation in one factor with the other fixed."""
        mu, n, note = self.mu, self.n, self.note
        w = np.linspace(0, 1, 8)[:, None]
        s_line = (1 - w) * mu[a, 0] + w * mu[b, 0]
        interp_s = _decode(self.model, self._mix(s_line, np.repeat(mu[a, 0][None], 8, 0)))
        t_line = (1 - w) * mu[a, 0] + w * mu[a, n - 1]
        interp_t = _decode(self.model, self._mix(np.repeat(mu[b, 0][None], 8, 0), t_line))
        _grid(
            interp_s[None],
            self.out / "fig4_static_interpolation.png",
            f"Figs 4/6: static factor interpolated, temporal fixed ({note})",
        )
        _grid(
            interp_t[None],
            self.out / "fig5_temporal_interpolation.png",
            f"Figs 5/7: temporal factor interpolated, static fixed ({note})",
        )
        self.made["fig4_static_interpolation.png"] = (
            "Static code moves from video A to video B, "
            "temporal code fixed: identity should morph in place."
        )
        self.made["fig5_temporal_interpolation.png"] = (
            "Temporal code moves from A's first to its last "
            "frame, static code fixed: only position or pose "
            "should change."
        )

    def latents(self, six, seed) -> None:
        """Figure 8: latent trajectories of six videos."""
        _latent_plot(
            self.mu[six], self.s_idx, self.t_idx, self.out / "fig8_latents.png", self.note, seed
        )
        self.made["fig8_latents.png"] = (
            "Encodings of test videos, one colour per video: static codes "
            "should cluster per video, temporal codes trace paths."
        )

    def reconstructions(self, a, b) -> None:
        """Reconstructions next to inputs, and GIFs of original, reconstruction and swap."""
        mu, n, inputs = self.mu, self.n, self.inputs
        cols = slice(0, n, max(1, n // 8))
        recon_a, recon_b = _decode(self.model, mu[a]), _decode(self.model, mu[b])
        _grid(
            np.stack([inputs[a, cols], recon_a[cols], inputs[b, cols], recon_b[cols]]),
            self.out / "reconstructions.png",
            "Inputs and reconstructions (posterior means)",
            ["input A", "recon A", "input B", "recon B"],
        )
        self.made["reconstructions.png"] = "Rows: input and reconstruction of two test videos."
        swapped = _decode(self.model, self._mix(mu[b, :1].repeat(n, 0), mu[a]))
        _gif(
            _side_by_side([inputs[a], recon_a, swapped, inputs[b]]),
            self.out / "videos.gif",
            scale=3,
        )
        self.made["videos.gif"] = (
            "Left to right: a test video A, its reconstruction, A's temporal codes decoded with "
            "video B's static code, and video B (3x, crisp pixels)."
        )

    def prior_sequences(self, others, seed) -> None:
        """One draw of dynamics from the model's prior (its temporal features of
        ``prior_sample``: eq 8's random walk, dsvae's learned p(z_t | z_<t)), decoded under
        the static codes of several test videos: rows the videos, columns time. Nothing for
        a kind without a prior to sample."""
        n = self.n
        drawn = self._prior(1, seed)
        if drawn is None:
            return
        drawn = drawn[0]  # [N, F]
        rows = np.stack(
            [_decode(self.model, self._mix(self.mu[o, :1].repeat(n, 0), drawn)) for o in others]
        )
        _grid(
            rows[:, :: max(1, n // 8)],
            self.out / "prior_sequences.png",
            f"Dynamics drawn from the prior, under several static codes ({self.note})",
        )
        self.made["prior_sequences.png"] = (
            "One sequence of temporal codes drawn from the model's prior, decoded under the "
            "static codes of several test videos (rows): every row should move alike."
        )

    def prior_draws(self, a, seed, draws: int = 3) -> None:
        """The field's two directions (:mod:`stvae.field`) on test video A: its temporal
        codes with static codes drawn from the model's prior, and its static code with
        dynamics drawn from the prior; rows the input, the posterior mean decoded, then
        one row per draw; columns time. Nothing for a kind without a prior to sample."""
        n = self.n
        prior = self._prior(draws, seed)  # [D, N, F]
        if prior is None:
            return
        mu = np.repeat(self.mu[a][None], draws, 0)  # [D, N, F]
        cols = slice(0, n, max(1, n // 8))
        labels = ["input", "posterior mean", *(f"prior draw {i + 1}" for i in range(draws))]
        shown = [self.inputs[a][cols], _decode(self.model, self.mu[a])[cols]]
        for name, idx, kept, drawn, expect in (
            (
                "field_static_from_prior.png",
                self.s_idx,
                "temporal codes",
                "static codes",
                "the motion should stay and the character change.",
            ),
            (
                "field_dynamics_from_prior.png",
                self.t_idx,
                "static code",
                "dynamics",
                "the character should stay and the motion change.",
            ),
        ):
            draws_shown = _decode(self.model, with_prior(mu, prior, idx))[:, cols]  # [D, ...]
            _grid(
                np.concatenate([np.stack(shown), draws_shown]),
                self.out / name,
                f"Video A's {kept}, {drawn} drawn from the prior ({self.note})",
                labels,
            )
            self.made[name] = (
                f"The field's protocol on one test video: its {kept} kept, its {drawn} "
                f"drawn from the model's prior ({draws} draws, one per row, columns time); "
                + expect
            )

    def index(self, title: str, source: str) -> None:
        items = "\n".join(
            f'<figure><img src="{name}"><figcaption>{html.escape(text)}</figcaption></figure>'
            for name, text in self.made.items()
        )
        (self.out / "index.html").write_text(
            f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>img{image-rendering:pixelated}</style>"
            f"<h1>{html.escape(title)}</h1><p>Data: {html.escape(source)}. Division: "
            f"{html.escape(self.note)} (static {self.s_idx}, temporal {self.t_idx}).</p>\n{items}\n"
        )
        self.made["index.html"] = "This page."
