"""The procedural sprites' designs measured: how many of a frame's 4,096 pixels each part
of the figure covers, on average over every pose, and how often a pose reaches the
frame's edge; with a picture of clips of each design.

    python bench/sprites_design.py --png docs/results/sprites-designs.png \
        > docs/results/sprites-designs.md

The original Sprites' figures (the field's benchmark) cover about 800-1,000 pixels: tops
about 190-360, trousers 100-180, hair 230-300 (docs/data.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from commit import short_commit
from stvae.data import sprites as sp

DESIGNS = {"sprites": sp.EARLIER, "sprites-field": sp.FIELD}
PARTS = {"skin": sp.SKIN, "hair": sp.HAIR, "top": sp.TOP, "trousers": sp.TROUSERS}


def measure(design: sp.Design) -> dict[str, float]:
    """Mean pixels per pose of each part and of the whole figure, and the share of poses
    touching each edge of the frame."""
    labels = sp.pose_labels(design)  # [styles, actions, directions, poses, 64, 64]
    drawn = labels != sp.BACKGROUND
    out = {name: float((labels == part).sum((-1, -2)).mean()) for name, part in PARTS.items()}
    out["figure"] = float(drawn.sum((-1, -2)).mean())
    out["top edge"] = float(drawn[..., 0, :].any(-1).mean())
    out["bottom edge"] = float(drawn[..., -1, :].any(-1).mean())
    out["side edges"] = float((drawn[..., :, 0].any(-1) | drawn[..., :, -1].any(-1)).mean())
    return out


def picture(path: Path, clips: int = 4, frames: int = 8) -> None:
    """``clips`` clips of ``frames`` frames of each design, the same characters and
    actions, one clip a row, saved as a PNG."""
    from PIL import Image

    rows = []
    for design in DESIGNS.values():
        data = sp.render(clips, frames, np.random.default_rng(1), "train", design)
        rows += [np.concatenate(list(clip), 1) for clip in data["videos"]]
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--png", type=Path, help="also write a picture of both designs' clips")
    args = p.parse_args()
    commit = short_commit()
    found = {name: measure(design) for name, design in DESIGNS.items()}
    keys = list(next(iter(found.values())))
    print("# The procedural sprites' designs\n")
    png = f" --png {args.png}" if args.png else ""
    print(
        f"`python bench/sprites_design.py{png}` at commit {commit}: mean pixels per pose "
        "(every hair style, action, direction and pose) of each part and of the whole "
        "figure, of the frame's 4,096, and the share of poses touching each edge. The "
        "original Sprites: figure about 800-1,000, tops 190-360, trousers 100-180, hair "
        "230-300.\n"
    )
    print("| design | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, got in found.items():
        cells = [f"{got[k]:.0f}" if "edge" not in k else f"{got[k]:.3f}" for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.png:
        picture(args.png)
        print(f"\n![both designs: sprites above, sprites-field below]({args.png.name})")


if __name__ == "__main__":
    main()
