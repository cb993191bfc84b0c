"""How the sprites judge fails: its accuracy and its fallback per head on held-out clips
degraded as an unfinished decoder degrades them (blurred, colour washed out, regions
greyed), so that a judged number on a model's clips can be read against it.

    python bench/judge_degraded.py [--clips 512] [--seed 0] > docs/results/sprites-judge-degraded.md
    python bench/judge_degraded.py --data sprites-field \
        > docs/results/sprites-field-judge-degraded.md

Uses the production judge (:func:`stvae.judge.train_judge`, from the cache when it is
there) on ``--clips`` clips of held-out characters (``test-score``, 8 frames). For each
degradation it prints, per head (the action, each attribute), the judge's accuracy and
its fallback: the share of the clips it gives its single most frequent class
(:func:`stvae.field.top_share`); a head above :data:`stvae.result.FALLBACK` names one
class for most clips, whatever they show.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from commit import short_commit
from stvae.data import generate, to_tensor
from stvae.data import sprites as sp
from stvae.field import top_share
from stvae.judge import JUDGE_FRAMES, judge_probs, train_judge
from stvae.result import FALLBACK

GREY = 0.5


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Clips [B, N, 3, 64, 64] blurred per frame and channel by a Gaussian of ``sigma`` px."""
    r = int(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    flat = x.reshape(-1, 1, 64, 64)
    flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return flat.reshape(x.shape)


def _washed(x: torch.Tensor, keep: float) -> torch.Tensor:
    """Colour pulled toward each pixel's grey (BT.601 luminance): ``keep`` of it kept."""
    grey = (0.299 * x[:, :, 0] + 0.587 * x[:, :, 1] + 0.114 * x[:, :, 2]).unsqueeze(2)
    return keep * x + (1 - keep) * grey


def _greyed(x: torch.Tensor, rows: slice) -> torch.Tensor:
    out = x.clone()
    out[..., rows, :] = GREY
    return out


DEGRADATIONS = {
    "none (real clips)": lambda x: x,
    "blur sigma 1 px": lambda x: _blur(x, 1.0),
    "blur sigma 2 px": lambda x: _blur(x, 2.0),
    "blur sigma 3 px": lambda x: _blur(x, 3.0),
    "colour half washed out": lambda x: _washed(x, 0.5),
    "colour washed out (grey)": lambda x: _washed(x, 0.0),
    "top half greyed": lambda x: _greyed(x, slice(0, 32)),
    "bottom half greyed": lambda x: _greyed(x, slice(32, 64)),
    "mean clip (every clip the same)": lambda x: x.mean(0, keepdim=True).expand_as(x),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="sprites", help="sprites (default) or sprites-field")
    args = p.parse_args()
    judge = train_judge(0, JUDGE_FRAMES, data=args.data)
    data = generate(args.data, args.clips, JUDGE_FRAMES, [args.seed, 8], "test-score")
    clips = to_tensor(data["videos"])  # [B, N, 3, 64, 64] in [0, 1]
    truth = {"action": data["temporal_labels"][:, 0]}
    truth.update({a: data["attributes"][:, i] for i, a in enumerate(sp.ATTRIBUTES)})
    commit = short_commit()
    heads = list(truth)
    flag = "" if args.data == "sprites" else f" --data {args.data}"
    print(f"# The {args.data} judge on degraded clips\n")
    print(
        f"`python bench/judge_degraded.py --clips {args.clips} --seed {args.seed}{flag}` at "
        f"commit {commit}: the production judge on {args.clips} clips of held-out characters "
        f"({JUDGE_FRAMES} frames). Each cell: accuracy / fallback (the share of the clips "
        "given the judge's most frequent verdict for that head); **bold**: the head names "
        f"one class for over {FALLBACK:.0%} of the clips. Chance (the commonest true "
        "class): " + ", ".join(f"{h} {top_share(truth[h]):.3f}" for h in heads) + ".\n"
    )
    print("| clips | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    with torch.no_grad():
        for name, degrade in DEGRADATIONS.items():
            x = degrade(clips).clamp(0, 1)
            p_attrs, p_action = judge_probs(judge, x)
            said = {"action": p_action.argmax(-1).numpy()}
            named = p_attrs.argmax(-1).numpy()
            said.update({a: named[:, i] for i, a in enumerate(sp.ATTRIBUTES)})
            cells = []
            for h in heads:
                acc, fall = float((said[h] == truth[h]).mean()), top_share(said[h])
                cell = f"{acc:.3f} / {fall:.3f}"
                cells.append(f"**{cell}**" if fall > FALLBACK else cell)
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
