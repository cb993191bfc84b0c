# Stand-ins for your own videos: 12 colour mp4 files, 96x128, 64 frames each, of
# procedural chairs turning at 6 degrees a frame (written with PyAV, the `video` extra):
# 4 chair shapes, each in 3 colours of about equal luminance (0.299 R + 0.587 G + 0.114 B
# of 138-139), so that in grey the three colours of a shape look alike.
from pathlib import Path

import av
import numpy as np

from stvae.data.chairs import render_views

TINTS = ([255, 95, 55], [60, 185, 110], [130, 120, 255])  # red, green, blue; luma ~138.5

out = Path("myvideos")
out.mkdir(exist_ok=True)
for i in range(12):
    shape, colour = divmod(i, 3)
    angles = np.deg2rad(6.0 * np.arange(64) + 30 * shape)  # the same turn in each colour
    gray = render_views(500 + shape, angles)  # float32 [64, 64, 64] in [0, 1]
    frames = np.zeros((64, 96, 128, 3), np.uint8)
    frames[:, 16:80, 32:96] = (gray[..., None] * TINTS[colour]).astype(np.uint8)
    with av.open(str(out / f"chair{i:02d}.mp4"), "w") as video:
        stream = video.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for f in frames:
            video.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        video.mux(stream.encode())
