"""What each prior block of a run pays for its per-video means: the KL of every block
(eqs 13-18, the model's own closed forms) on held-out clips, as encoded and with each
video's mean over its frames taken out of every feature's posterior mean, and the
difference, which is what the block's constant offsets cost (docs/design.md, "Where a
per-video constant goes"). Against that cost, what the means buy: how much worse the
clips are reconstructed (eq 5's term, the model's likelihood) from the posterior means
when the block's per-video means are all set to their mean over videos, and when only
their part that the static label names (the chair, the digit: the mean of the per-video
means over the videos of each label) is taken out. Beside it, per feature, the spread
over videos of that per-video mean, its share of the feature's spread over all frames,
and the posterior's own standard deviation (the unit in which the decoder can tell two
offsets apart).

    python bench/offset_cost.py RUN [RUN ...] [--videos 256] [--seed 0] [--step N]

Prints one block per run: a row per prior block (nats a video: KL as encoded, KL
centred, offsets' cost, what they and their label's part buy) and a row per feature of
the block (sd of the per-video means, sd over all frames, the share of variance the
per-video means explain, the mean posterior sd).
"""

from __future__ import annotations

import numpy as np
import torch

from encoded import held_out_encodings
from stvae.field import decoded_batches
from stvae.layout import to_tensor


def offset_cost(model, mu: np.ndarray, logvar: np.ndarray) -> list[dict]:
    """Per prior block of ``model``: its KL as encoded and centred per video (each a mean
    over videos, nats a video) and, per feature, the per-video means' spread.
    mu, logvar: [V, N, F]."""
    mu_t, logvar_t = torch.from_numpy(mu).double(), torch.from_numpy(logvar).double()
    centred = mu_t - mu_t.mean(dim=1, keepdim=True)
    out = []
    for prior, block in model.blocks(model.config):
        kl = prior.kl(mu_t[..., block], logvar_t[..., block]).mean().item()
        kl_centred = prior.kl(centred[..., block], logvar_t[..., block]).mean().item()
        means = mu[..., block].mean(axis=1)  # [V, F_block]
        total = mu[..., block].reshape(-1, means.shape[-1]).var(axis=0)
        sd = np.exp(0.5 * logvar[..., block]).mean(axis=(0, 1))  # [F_block]
        features = range(block.start, block.stop)
        out.append(
            {
                "prior": prior.name,
                "kl": kl,
                "kl_centred": kl_centred,
                "features": [
                    {
                        "feature": f,
                        "video_mean_sd": float(np.sqrt(means[:, i].var())),
                        "frame_sd": float(np.sqrt(total[i])),
                        "video_mean_share": float(means[:, i].var() / max(total[i], 1e-12)),
                        "posterior_sd": float(sd[i]),
                    }
                    for i, f in enumerate(features)
                ],
            }
        )
    return out


@torch.no_grad()
def _reconstruction(model, videos: np.ndarray, h: np.ndarray, batch: int = 32) -> float:
    """Eq 5's reconstruction term of ``videos`` [V, N, 64, 64(, 3)] decoded from ``h``
    [V, N, F] (eval mode), nats a video."""
    total = 0.0
    decoded = decoded_batches(model, h, batch, logits=True)
    for start, logits in zip(range(0, len(h), batch), decoded, strict=True):
        x = to_tensor(videos[start : start + batch], logits.device, model.config.in_channels)
        total += model.reconstruction(logits, x).item()
    return total / len(videos)


def offset_gain(
    model, videos: np.ndarray, mu: np.ndarray, labels: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Per prior block of ``model`` (by name): what its per-video means buy, nats a video:
    eq 5's reconstruction term of ``videos`` [V, N, 64, 64(, 3)] decoded from the
    posterior means ``mu`` [V, N, F] with the block's per-video means moved, less the
    same term from ``mu`` as encoded. ``all``: each per-video mean replaced by their mean
    over the videos; with ``labels`` [V] (the static label) also ``label``: each moved by
    its label's mean of them less that overall mean (what the label names, only)."""
    mu = mu.astype(np.float32)
    as_encoded = _reconstruction(model, videos, mu)
    out = {}
    if labels is not None:
        kinds, of_video = np.unique(labels, return_inverse=True)
    for prior, block in model.blocks(model.config):
        means = mu[..., block].mean(axis=1, keepdims=True)  # [V, 1, F_block]
        overall = means.mean(axis=0, keepdims=True)
        moves = {"all": overall - means}
        if labels is not None:
            named = np.stack([means[of_video == k].mean(axis=0) for k in range(len(kinds))])
            moves["label"] = overall - named[of_video]  # each video its label's mean
        out[prior.name] = {}
        for name, move in moves.items():
            h = mu.copy()
            h[..., block] += move
            out[prior.name][name] = _reconstruction(model, videos, h) - as_encoded
    return out


def main() -> None:
    for run, model, config, videos, seed, mu, logvar, clips in held_out_encodings(
        __doc__.splitlines()[0]
    ):
        try:
            model.blocks(model.config)
        except NotImplementedError as e:  # dsvae: a learned prior of its dynamics
            print(f"\n{run.name}: {config.model.kind}: {e}; nothing to price, skipped")
            continue
        print(
            f"\n{run.name}: {config.model.kind}, beta {config.model.beta:g}, {videos} "
            f"held-out videos of {config.data.source} (seed {seed})\n"
        )
        print(
            "| block | KL, nats a video | KL centred per video | per-video means' cost | "
            "reconstruction they buy | their static label's part buys |"
        )
        print("|---|---|---|---|---|---|")
        found = offset_cost(model, mu, logvar)
        gain = offset_gain(model, clips["videos"], mu, clips.get("static_labels"))
        for b in found:
            cost, bought = b["kl"] - b["kl_centred"], gain[b["prior"]]
            label = f"{bought['label']:.1f}" if "label" in bought else "—"
            print(
                f"| {b['prior']} | {b['kl']:.2f} | {b['kl_centred']:.2f} | {cost:.2f} | "
                f"{bought['all']:.1f} | {label} |"
            )
        print(
            "\n| block | feature | sd of per-video means | sd over frames | share | posterior sd |"
        )
        print("|---|---|---|---|---|---|")
        for b in found:
            for f in b["features"]:
                print(
                    f"| {b['prior']} | {f['feature']} | {f['video_mean_sd']:.3f} | "
                    f"{f['frame_sd']:.3f} | {f['video_mean_share']:.3f} | "
                    f"{f['posterior_sd']:.4f} |"
                )


if __name__ == "__main__":
    main()
