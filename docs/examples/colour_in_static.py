# What the static factor holds, read back with a linear probe (stvae.probes): which colour
# (of 3) and which chair shape (of 4) a clip shows, from the mean over the clip of its
# static features, for each features file given (stvae encode ... --out FILE) of the
# folder make_videos.py writes (video i: shape i // 3, colour i % 3). The colour probe is
# fitted on the clips of shapes 0-1 and scored on shapes 2-3; the shape probe fitted on
# colours 0-1 and scored on colour 2: no video is both fitted and scored.
import sys

import numpy as np

from stvae.probes import linear_accuracy

for path in sys.argv[1:]:
    feats = np.load(path)
    k = int(feats["static_features"])
    static = feats["mu"][..., :k].mean(1)  # [clips, k]: each clip's static code
    shape, colour = np.divmod(feats["clip_video"], 3)
    found = {}
    for name, target, fit in (("colour", colour, shape < 2), ("shape", shape, colour < 2)):
        found[name] = linear_accuracy(static[fit], target[fit], static[~fit], target[~fit])
    print(
        f"{path}: the static factor ({k} features) names the colour at {found['colour']:.2f} "
        f"(chance 0.33) and the shape at {found['shape']:.2f} (chance 0.25)"
    )
