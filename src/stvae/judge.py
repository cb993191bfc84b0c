"""A judge for swapped sprites: does a decoded swap keep one video's action and take the
other's appearance?

The field scores a model that can swap factors by classifying its swapped videos with a
classifier trained on the ground truth. stvae trains its own judge on procedural sprites
(:mod:`stvae.data.sprites`), deterministically from a seed, and reports the judge's own
accuracy on real clips of held-out characters beside its verdicts, so a verdict can be
read against what the judge can do at all.

Each sprites dataset (:data:`stvae.data.registry.DATASETS` entries with a ``balanced``
set: ``sprites``, ``sprites-field``) has its own judge, trained on its own clips; so has a
folder of the field's Sprites arrays (:mod:`stvae.data.released`), trained on its train
arrays and checked on its test arrays, where the field's balanced set is the test clips
of every action class in equal numbers (as many as the rarest class has).

The judge is built as the field builds its own (a convolutional encoder per frame and a
temporal model over the frames), trained on clips of the length it is asked to judge,
in colour. Each frame [3, 64, 64] is averaged down to 32x32 and becomes a 128-d feature
(three 3x3 convolutions with batch norm, 32-32-64 channels, the last two of stride 2,
then a linear layer); a bidirectional LSTM (64 per direction) reads the features in
order and its two last states feed the action head (9 classes: 3 actions x 3
directions: a single frame cannot tell a jump's first pose from a walk's), while the
features' mean over the clip feeds one head per attribute (6 classes each: appearance is
in every frame). :func:`judge_probs` gives the softmax outputs, which the field's
protocol (:mod:`stvae.field`) scores.
"""

from __future__ import annotations

import contextlib
import hashlib
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stvae.cache import cache_dir, one_maker
from stvae.checkpoint import load_weights, save_weights
from stvae.data import DATASETS, generate, to_tensor
from stvae.data import sprites as sp
from stvae.data.released import is_released, load_released
from stvae.errors import StvaeError
from stvae.hostmem import kept_freed_memory
from stvae.model import encode_videos

__all__ = [
    "Judge",
    "train_judge",
    "judge_accuracy",
    "judge_probs",
    "judge_swaps",
    "judge_codes",
    "JUDGE_FRAMES",
    "FIELD_CHARACTERS",
    "field_set",
    "has_judge",
    "attribute_names",
]

JUDGE_FRAMES = 8  # frames of the clips the judge is trained on (one action cycle)
JUDGE_STEPS = 600  # its training batches
FIELD_CHARACTERS: int | None = None  # the field's set: every held-out scoring character
ACTIONS = len(sp.ACTIONS) * len(sp.DIRECTIONS)


class Judge(nn.Module):
    """Clips [B, N, 3, 64, 64] in [0, 1] -> (attribute logits [B, 4, 6], action logits [B, 9])."""

    def __init__(self):
        super().__init__()
        self.frames = nn.Sequential(
            nn.AvgPool2d(2),  # 32x32 keeps every part's colour and the limbs' positions
            nn.Conv2d(3, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 8 * 8, 128),
            nn.ReLU(),
        )
        self.order = nn.LSTM(128, 64, batch_first=True, bidirectional=True)
        self.attributes = nn.Linear(128, len(sp.ATTRIBUTES) * sp.OPTIONS)
        self.action = nn.Linear(128, ACTIONS)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, n = x.shape[:2]
        h = self.frames(x.reshape(b * n, *x.shape[2:])).view(b, n, -1)  # [B, N, 128]
        _, (last, _) = self.order(h)  # [2, B, 64]: forward and backward
        action = self.action(torch.cat([last[0], last[1]], -1))  # [B, 9]
        return self.attributes(h.mean(1)).view(b, len(sp.ATTRIBUTES), sp.OPTIONS), action


def _targets(data: dict) -> tuple[Tensor, Tensor]:
    return torch.from_numpy(data["attributes"]), torch.from_numpy(data["temporal_labels"][:, 0])


def train_judge(
    seed: int = 0,
    frames: int = JUDGE_FRAMES,
    steps: int | None = None,
    batch: int = 16,
    data: str = "sprites",
) -> Judge:
    """The judge of clips of ``frames`` frames of ``data`` (a sprites dataset's name, or a
    folder of the field's Sprites arrays), trained on clips of that length of its
    training characters (Adam 3e-3, x0.1 for the last quarter of ``steps`` batches,
    :data:`JUDGE_STEPS` when None, of ``batch`` fresh clips, all from ``seed``). Made
    once: kept for the process and in the cache (:func:`stvae.cache.cache_dir`, by a
    hash of this file and the sprites renderer), so a grid or a second ``stvae
    evaluate`` does not train it again."""
    _judged_data(data)
    steps = JUDGE_STEPS if steps is None else steps
    return _trained_judge(int(seed), int(frames), int(steps), int(batch), data)


def attribute_names(data: dict) -> list[str]:
    """The names of the judge's attribute heads for clips ``data`` (their
    ``attribute_names``: procedural sprites' skin, hair, top, trousers; the field's
    arrays' body, bottom, top, hair)."""
    return [str(n) for n in data.get("attribute_names", sp.ATTRIBUTES)]


def has_judge(data: str) -> bool:
    """Whether ``data`` (a run's ``--data``) has a judge: a sprites dataset, or a folder
    of the field's Sprites arrays."""
    spec = DATASETS.get(data)
    return spec.judge if spec is not None else is_released(Path(data))


def _judged_data(data: str) -> None:
    """Refuses, in one line, data that has no judge."""
    if not has_judge(data):
        judged = [name for name, s in DATASETS.items() if s.judge]
        raise StvaeError(
            f"no judge for data {data!r}; judges exist for {', '.join(judged)} and folders "
            "of the field's Sprites arrays"
        )


def _released(folder: str, split: str) -> dict[str, np.ndarray]:
    """Split ``split`` of a folder of the field's Sprites arrays (every held-out split
    reads the test arrays), read once per process."""
    return _released_arrays(folder, "train" if split == "train" else "test")


@cache
def _released_arrays(folder: str, which: str) -> dict[str, np.ndarray]:
    return load_released(folder, which)


def _released_clips(folder: str, split: str, idx: np.ndarray, start, frames: int) -> dict:
    """Clips ``idx`` [B] of ``split``, ``frames`` frames from frame ``start`` [B] on."""
    d = _released(folder, split)
    if d["videos"].shape[1] < frames:
        raise StvaeError(
            f"{folder}: clips of {d['videos'].shape[1]} frames; the judge was asked for {frames}"
        )
    at = np.asarray(start)[:, None] + np.arange(frames)  # [B, frames]
    return {
        "videos": d["videos"][idx[:, None], at],
        "attributes": d["attributes"][idx],
        "attribute_names": d["attribute_names"],
        "temporal_labels": d["temporal_labels"][idx[:, None], at],
    }


def _random_clips(data: str, videos: int, frames: int, seed, split: str) -> dict:
    """``videos`` clips of ``frames`` frames of ``data``'s ``split`` from ``seed``: drawn
    by a sprites dataset, or taken at random from the field's arrays."""
    if data in DATASETS:
        return generate(data, videos, frames, seed, split)
    n, length = _released(data, split)["videos"].shape[:2]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=videos)
    return _released_clips(
        data, split, idx, rng.integers(0, max(length - frames, 0) + 1, videos), frames
    )


def _clips(seed: int, frames: int, batch: int, step: int, data: str = "sprites") -> dict:
    """Step ``step``'s batch of training clips: a pure function of its arguments."""
    return _random_clips(data, batch, frames, [seed, 7, frames, step], "train")


def _train_step(judge: Judge, opt: torch.optim.Optimizer, data: dict) -> None:
    attrs, action = _targets(data)
    a_logits, act_logits = judge(to_tensor(data["videos"]))
    loss = F.cross_entropy(a_logits.flatten(0, 1), attrs.flatten()) + F.cross_entropy(
        act_logits, action
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _cached_as(seed: int, frames: int, steps: int, batch: int, data: str = "sprites") -> str:
    """The judge's file name in the cache folder: by the dataset's name, or for a folder
    of arrays by its path and its training frames file's size and time."""
    if data not in DATASETS:
        x = Path(data).resolve() / "sprites_X_train.npy"
        stat = x.stat()
        key = f"{x}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        data = f"released-{hashlib.sha256(key).hexdigest()[:16]}"
    return f"{data}-s{seed}-n{frames}-{steps}x{batch}.safetensors"


@cache
def _trained_judge(seed: int, frames: int, steps: int, batch: int, data: str = "sprites") -> Judge:
    folder = cache_dir("judge", __file__, sp.__file__)
    name = _cached_as(seed, frames, steps, batch, data)
    with one_maker(folder, name):  # processes asking at once: one trains, the rest read
        if folder is not None and (folder / name).exists():
            judge = Judge()
            with contextlib.suppress(StvaeError):  # damaged: trained again and replaced
                load_weights(folder / name, judge)
                return judge.eval()
        judge = _train(seed, frames, steps, batch, data)
        if folder is not None:
            with contextlib.suppress(OSError, StvaeError):  # an unwritable cache is no error
                folder.mkdir(parents=True, exist_ok=True)
                meta = {"seed": seed, "frames": frames, "steps": steps, "data": data}
                save_weights(folder / name, judge, meta)
    return judge.eval()


def _train(seed: int, frames: int, steps: int, batch: int, data: str = "sprites") -> Judge:
    torch.manual_seed(seed)
    judge = Judge()
    opt = torch.optim.Adam(judge.parameters(), lr=3e-3)
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, [steps * 3 // 4], 0.1)
    # the next batch is drawn while this one trains; drawing two ahead measured no faster
    # (150 steps, AMD EPYC, 2 cores: 15.3-18.9 s against 18.2-19.1 s, noise). It trains on
    # the CPU, where returning each step's freed memory costs page faults (stvae.hostmem)
    with kept_freed_memory(), ThreadPoolExecutor(1) as ahead:
        drawn = ahead.submit(_clips, seed, frames, batch, 0, data)
        for step in range(steps):
            clips = drawn.result()
            if step + 1 < steps:
                drawn = ahead.submit(_clips, seed, frames, batch, step + 1, data)
            _train_step(judge, opt, clips)
            decay.step()
    return judge


def field_set(seed: int, frames: int, data: str = "sprites") -> dict[str, np.ndarray]:
    """The clips of dataset ``data`` the field's protocol scores (:mod:`stvae.field`):
    every held-out scoring character (``test-score``; the first :data:`FIELD_CHARACTERS`
    of them when set) in every one of the 9 action classes once (its spec's
    ``balanced``, :func:`stvae.data.sprites.balanced`: 81 characters, 729 clips), so
    that the action's marginal is uniform and a model that keeps every action reads an
    IS near 9."""
    _judged_data(data)
    rng = np.random.default_rng([seed, 10])
    if data in DATASETS:
        return DATASETS[data].balanced(frames, rng, "test-score", FIELD_CHARACTERS)
    action = _released(data, "test")["temporal_labels"][:, 0]  # [N]
    classes = np.unique(action)
    each = min(int((action == c).sum()) for c in classes)
    each = each if FIELD_CHARACTERS is None else min(each, FIELD_CHARACTERS)
    idx = np.concatenate([rng.permutation(np.flatnonzero(action == c))[:each] for c in classes])
    return _released_clips(data, "test", idx, np.zeros(len(idx), np.int64), frames)


@torch.no_grad()
def judge_probs(judge: Judge, clips: Tensor) -> tuple[Tensor, Tensor]:
    """Clips [B, N, 3, 64, 64] -> the judge's softmax outputs: p(attribute option | clip)
    [B, 4, 6] and p(action | clip) [B, 9]."""
    out_a, out_act = [], []
    for start in range(0, len(clips), 64):
        a, act = judge(clips[start : start + 64].float())
        out_a.append(a.softmax(-1))
        out_act.append(act.softmax(-1))
    return torch.cat(out_a), torch.cat(out_act)


def _verdicts(judge: Judge, clips: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Clips [B, N, 3, 64, 64] -> (attributes [B, 4], action [B]) the judge names."""
    attrs, action = judge_probs(judge, clips)
    return attrs.argmax(-1).numpy(), action.argmax(-1).numpy()


def judge_accuracy(
    judge: Judge,
    videos: int = 256,
    seed: int = 0,
    frames: int = JUDGE_FRAMES,
    data: str = "sprites",
) -> dict[str, float]:
    """The judge's accuracy per head on real clips of ``frames`` frames of ``data``'s
    held-out characters (``test-score``; a folder's test arrays)."""
    clips = _random_clips(data, videos, frames, [seed, 8], "test-score")
    attrs, action = _verdicts(judge, to_tensor(clips["videos"]))
    out = {
        name: float((attrs[:, i] == clips["attributes"][:, i]).mean())
        for i, name in enumerate(attribute_names(clips))
    }
    out["action"] = float((action == clips["temporal_labels"][:, 0]).mean())
    return out


def judge_swaps(model, data: dict, judge: Judge, seed: int = 0) -> dict[str, float]:
    """Each video's temporal codes decoded with another video's static code, judged.

    ``data``: sprites clips (the file format) of at least 2 videos; ``model``: a model
    with its own static/temporal split (``config.n_static`` > 0), grey or colour (grey
    output is shown to the judge as RGB). See :func:`judge_codes` for what is returned.
    """
    mu, _ = encode_videos(model, data["videos"])  # [V, N, F]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return judge_codes(model.decode, mu, model.config.n_static, data, judge, seed)
    finally:
        model.train(was)


@torch.no_grad()
def judge_codes(decode, mu: np.ndarray, k: int, data: dict, judge: Judge, seed: int = 0) -> dict:
    """Swaps of codes ``mu`` [V, N, F] (the first ``k`` features static) decoded by
    ``decode`` (codes [V, N, F] tensor -> logits [V, N, C, 64, 64]), judged.

    Video v's temporal codes go with the static codes of video (v + 1 + r) mod V, r random
    (``seed``), never v itself. Returns the share of swaps in which the judge names the
    temporal source's action (``action``) and each attribute of the static source (by
    attribute name); the same for the plain reconstructions (``reconstruction_<key>``);
    what chance gives (``chance_<key>``: how often the two sources share that option, so
    a swap that moved nothing still scores it) and the leak (``leak_<key>``: how often
    the judge names the *other* source's option: the temporal source's attribute, the
    static source's action).
    """
    v = len(mu)
    rng = np.random.default_rng(seed)
    partner = (np.arange(v) + 1 + rng.integers(0, v - 1, size=v)) % v
    swapped = mu.copy()
    swapped[..., :k] = mu[partner, :, :k]
    results = {}
    for name, h, static_from in (("", swapped, partner), ("reconstruction_", mu, np.arange(v))):
        x = torch.sigmoid(decode(torch.from_numpy(np.ascontiguousarray(h))).float())
        x = x.expand(-1, -1, 3, -1, -1) if x.shape[2] == 1 else x
        attrs, action = _verdicts(judge, x)
        results[f"{name}action"] = float((action == data["temporal_labels"][:, 0]).mean())
        for i, attr in enumerate(attribute_names(data)):
            results[f"{name}{attr}"] = float(
                (attrs[:, i] == data["attributes"][static_from, i]).mean()
            )
        if name == "":  # what a swap that moved nothing would score, and what leaked
            own, other = data["attributes"], data["attributes"][partner]
            labels = data["temporal_labels"][:, 0]
            results["chance_action"] = float((labels[partner] == labels).mean())
            results["leak_action"] = float((action == labels[partner]).mean())
            for i, attr in enumerate(attribute_names(data)):
                results[f"chance_{attr}"] = float((other[:, i] == own[:, i]).mean())
                results[f"leak_{attr}"] = float((attrs[:, i] == own[:, i]).mean())
    return results
