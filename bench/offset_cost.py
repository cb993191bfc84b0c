"""What each prior block of a run pays for its per-video means: the KL of every block
(eqs 13-18, the model's own closed forms) on held-out clips, as encoded and with each
video's mean over its frames taken out of every feature's posterior mean, and the
difference, which is what the block's constant offsets cost (docs/design.md, "Where a
per-video constant goes"). Beside it, per feature, the spread over videos of that
per-video mean, its share of the feature's spread over all frames, and the posterior's
own standard deviation (the unit in which the decoder can tell two offsets apart).

    python bench/offset_cost.py RUN [RUN ...] [--videos 256] [--seed 0]

Prints one block per run: a row per prior block (nats a video: KL as encoded, KL
centred, offsets' cost) and a row per feature of the block (sd of the per-video means,
sd over all frames, the share of variance the per-video means explain, the mean
posterior sd).
"""

from __future__ import annotations

import numpy as np
import torch

from encoded import held_out_encodings


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


def main() -> None:
    for run, model, config, videos, seed, mu, logvar in held_out_encodings(__doc__.splitlines()[0]):
        print(
            f"\n{run.name}: {config.model.kind}, beta {config.model.beta:g}, {videos} "
            f"held-out videos of {config.data.source} (seed {seed})\n"
        )
        print("| block | KL, nats a video | KL centred per video | per-video means' cost |")
        print("|---|---|---|---|")
        found = offset_cost(model, mu, logvar)
        for b in found:
            cost = b["kl"] - b["kl_centred"]
            print(f"| {b['prior']} | {b['kl']:.2f} | {b['kl_centred']:.2f} | {cost:.2f} |")
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
