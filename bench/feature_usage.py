"""How much each latent feature of a run carries: per feature, over every frame of held-out
clips, the spread of the posterior mean across frames, the mean posterior standard
deviation, and the KL of q(h | x) to N(0, 1) (the prior of the vae, and of nothing else:
other kinds' priors tie features over time). A feature whose mean barely moves and whose
KL is near 0 is one the decoder barely uses; the division a baseline's eq 19 chooses can
put such a feature alone on the static side (docs/results.md, the field's protocol).

    python bench/feature_usage.py RUN [RUN ...] [--videos 256] [--seed 0] [--step N]

Prints one block per run: its kind, the division its eval.json records for the field's
protocol (if any), and a row per feature.
"""

from __future__ import annotations

import json

import numpy as np

from encoded import held_out_encodings


def main() -> None:
    for run, _, config, videos, _, mu, logvar, _ in held_out_encodings(__doc__.splitlines()[0]):
        kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).mean((0, 1))  # [F], nats a frame
        eval_path = run / "eval.json"
        field = json.loads(eval_path.read_text()).get("field", {}) if eval_path.exists() else {}
        static = set(field.get("static_set", []))
        what = f"{config.model.kind}; {videos} held-out clips of {config.data.source}"
        print(f"{run.name} ({what})")
        print("feature  side      sd of mean  mean posterior sd  KL to N(0,1)")
        for i in range(mu.shape[-1]):
            side = "static" if i in static else ("temporal" if field.get("temporal_set") else "")
            sd = np.exp(0.5 * logvar[..., i]).mean()
            print(f"{i:>7}  {side:<8}  {mu[..., i].std():>10.3f}  {sd:>17.3f}  {kl[i]:>12.3f}")


if __name__ == "__main__":
    main()
