"""Linear probes of learned features: the disentanglement score of eq 19 and Tables 2-3.

The core functions take arrays (features [V, N, F], labels, seed) and return dicts of
named numbers. Every frame is one sample. Classifiers are L2-regularised linear SVMs
(scikit-learn's LinearSVC, squared hinge) on standardised features, trained on half of
the videos and scored on the other half, so no video is both seen and scored.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from stvae.checkpoint import write_json
from stvae.data import held_out, load_dataset, to_tensor
from stvae.errors import StvaeError
from stvae.model import encode_videos
from stvae.train import load_run

__all__ = [
    "video_split",
    "linear_accuracy",
    "chance_accuracy",
    "factor_probe",
    "disentanglement",
    "static_in_temporal",
    "order_task",
    "between_features",
    "feature_subsets",
    "probe_model",
    "probe_run",
    "static_accuracy",
    "encode_run",
    "evaluate_run",
    "elbo_terms",
]


def video_split(videos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint halves of the video indices (train, test) from ``seed``."""
    if videos < 2:
        raise StvaeError(f"linear probes need at least 2 labelled videos; got {videos}")
    order = np.random.default_rng(seed).permutation(videos)
    half = videos // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _frames(a: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """Per-frame samples of the chosen videos: [V, N, ...] -> [len(videos) * N, ...]."""
    sel = a[videos]
    return sel.reshape(sel.shape[0] * sel.shape[1], *sel.shape[2:])


def linear_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int = 0
) -> float:
    """Test accuracy of an L2 linear SVM fitted on (x_train, y_train): [M, D], [M] -> float."""
    if len(np.unique(y_train)) < 2:
        return float(np.mean(y_test == y_train[0]))
    clf = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=5000, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    return float(np.mean(clf.predict(x_test) == y_test))


def chance_accuracy(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy of always answering the most frequent training label (the best blind guess)."""
    values, counts = np.unique(y_train, return_counts=True)
    return float(np.mean(y_test == values[np.argmax(counts)]))


def _per_frame(labels: np.ndarray, frames: int) -> np.ndarray:
    """Video labels [V] or frame labels [V, N] -> [V, N]."""
    return np.repeat(labels[:, None], frames, axis=1) if labels.ndim == 1 else labels


def factor_probe(
    features: np.ndarray,
    targets: dict[str, np.ndarray],
    subsets: dict[str, list[int]],
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of every (feature subset, target) pair on held-out videos.

    features: [V, N, F]; targets: name -> [V] or [V, N] labels; subsets: name -> feature
    indices. Returns ``"<target>_from_<subset>"`` accuracies and ``"<target>_chance"``.
    """
    v, n = features.shape[:2]
    train, test = video_split(v, seed)
    out = {}
    for t_name, labels in targets.items():
        y = _per_frame(labels, n)
        y_train, y_test = _frames(y, train), _frames(y, test)
        out[f"{t_name}_chance"] = chance_accuracy(y_train, y_test)
        for s_name, idx in subsets.items():
            x = features[..., idx]
            out[f"{t_name}_from_{s_name}"] = linear_accuracy(
                _frames(x, train), y_train, _frames(x, test), y_test, seed
            )
    return out


Task = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def frame_task(labels: np.ndarray, frames: int) -> Task:
    """Every frame is a sample: (x [V, N, k], videos) -> ([len(videos) * N, k], labels)."""
    y = _per_frame(labels, frames)
    return lambda x, videos: (_frames(x, videos), _frames(y, videos))


ORDERS = ((0, 1, 2), (2, 1, 0), (0, 2, 1), (1, 0, 2))  # the first two are "in order"


ORDER_PROBES = ("concat", "between")


def between_features(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Features of a triplet shown as (a, b, c), each [M, k], from which a *linear* probe can
    read order: per feature, (b - a)(c - b) (> 0 when b lies between a and c) and
    |c - a| - |b - a| - |c - b| (0 when it does, negative otherwise) -> [M, 2k]."""
    return np.concatenate([(b - a) * (c - b), np.abs(c - a) - np.abs(b - a) - np.abs(c - b)], 1)


def order_task(
    videos: int, frames: int, seed: int, per_video: int = 8, probe: str = "concat"
) -> Task:
    """Section 4.1's temporal task for chairs: are 3 frames, given in this order, temporally
    ordered? Frames i < j < k of one video shown as (i, j, k) or (k, j, i) are (label 1),
    as (i, k, j) or (j, i, k) are not (label 0). ``per_video`` triplets per video, balanced
    by construction. The sample is the three frames' features side by side [3k]
    (``probe="concat"``, the paper's wording), or :func:`between_features` [2k]
    (``probe="between"``): ordered means (z2 - z1)(z3 - z2) > 0 for a monotone feature, a
    product that no linear function of the concatenation expresses."""
    if frames < 3:
        raise StvaeError(f"the temporal-order task needs at least 3 frames a video; got {frames}")
    if probe not in ORDER_PROBES:
        raise StvaeError(f"order probe must be one of {', '.join(ORDER_PROBES)}; got {probe!r}")
    rng = np.random.default_rng([seed, 3])
    picks = np.sort(
        np.stack([rng.choice(frames, 3, replace=False) for _ in range(videos * per_video)]), axis=1
    )
    arrangement = rng.integers(0, len(ORDERS), size=videos * per_video)
    shown = np.take_along_axis(picks, np.asarray(ORDERS)[arrangement], axis=1)
    shown = shown.reshape(videos, per_video, 3)
    labels = (arrangement < 2).astype(np.int64).reshape(videos, per_video)

    def make(x: np.ndarray, vids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        trip = x[vids[:, None, None], shown[vids]]  # [len(vids), per_video, 3, k]
        trip = trip.reshape(len(vids) * per_video, 3, -1)
        if probe == "between":
            return between_features(trip[:, 0], trip[:, 1], trip[:, 2]), labels[vids].reshape(-1)
        return trip.reshape(len(trip), -1), labels[vids].reshape(-1)

    return make


def disentanglement(
    features: np.ndarray,
    static_labels: np.ndarray,
    temporal_labels: np.ndarray | None = None,
    static_features: int = 0,
    seed: int = 0,
    temporal_task: str = "labels",
    order_probe: str = "concat",
    memo: dict | None = None,
) -> dict:
    """The disentanglement score of eq 19.

    features: [V, N, F]; static_labels: [V] or [V, N] (the digit, the chair).
    The temporal target is ``temporal_labels`` [V, N] per frame (the 3x3 location) with
    ``temporal_task="labels"``, or the triplet order task of :func:`order_task` (chairs)
    with ``temporal_task="order"``, its samples made as ``order_probe`` says. With
    ``static_features`` = k > 0 the division is the model's own (first k features static,
    the rest temporal); with 0 (baselines) the score is the maximum over every division of
    the features into two non-empty sets. ``memo`` (a dict, empty at first) keeps the
    probes' accuracies between calls on the same features, labels and seed, so scoring
    with another ``order_probe`` refits only the temporal probes.

    a_s(S) = acc(S, y_s) / acc(S, y_t), a_t(S) = acc(S, y_t) / acc(S, y_s),
    score = sqrt(a_s(H_s) a_t(H_t)).
    """
    v, n, f = features.shape
    if f < 2:
        raise StvaeError("the disentanglement score needs at least 2 features")
    train, test = video_split(v, seed)
    if temporal_task == "order":
        temporal = order_task(v, n, seed, probe=order_probe)
    elif temporal_labels is not None:
        temporal = frame_task(temporal_labels, n)
    else:
        raise StvaeError("the disentanglement score needs temporal labels or the order task")
    tasks = {"static": frame_task(static_labels, n), "temporal": temporal}
    cache = {} if memo is None else memo
    probe = {"static": "", "temporal": order_probe if temporal_task == "order" else ""}

    def acc(idx: tuple[int, ...], target: str) -> float:
        key = (idx, target, probe[target])
        if key not in cache:
            x = features[..., list(idx)]
            x_train, y_train = tasks[target](x, train)
            x_test, y_test = tasks[target](x, test)
            cache[key] = linear_accuracy(x_train, y_train, x_test, y_test, seed)
        return cache[key]

    if static_features:
        if not 0 < static_features < f:
            raise StvaeError(f"static_features must be in 1..{f - 1}; got {static_features}")
        divisions = [tuple(range(static_features))]
    else:
        divisions = [
            c for k in range(1, f) for c in itertools.combinations(range(f), k)
        ]  # every ordered split: S is the static set, its complement the temporal one
    best = None
    for s_idx in divisions:
        t_idx = tuple(i for i in range(f) if i not in s_idx)
        a_s = acc(s_idx, "static") / max(acc(s_idx, "temporal"), 1e-12)
        a_t = acc(t_idx, "temporal") / max(acc(t_idx, "static"), 1e-12)
        score = math.sqrt(a_s * a_t)
        if best is None or score > best["d_score"]:
            best = {
                "d_score": score,
                "static_set": list(s_idx),
                "temporal_set": list(t_idx),
                "static_acc_from_static": acc(s_idx, "static"),
                "temporal_acc_from_static": acc(s_idx, "temporal"),
                "temporal_acc_from_temporal": acc(t_idx, "temporal"),
                "static_acc_from_temporal": acc(t_idx, "static"),
            }
    chance, classes = {}, {}
    for name, task in tasks.items():
        (_, y_train), (_, y_test) = task(features, train), task(features, test)
        chance[name] = chance_accuracy(y_train, y_test)
        classes[name] = len(np.unique(np.concatenate([y_train, y_test])))
    return {
        **best,
        "division": "model" if static_features else f"best of {len(divisions)}",
        "temporal_task": temporal_task,
        **({"order_probe": order_probe} if temporal_task == "order" else {}),
        "static_chance": chance["static"],
        "temporal_chance": chance["temporal"],
        # Perfect probes with balanced classes: sqrt(K_t * K_s); with the class balance
        # of this data, a blind probe does better than 1/K, so the reachable top is lower.
        "ceiling": math.sqrt(classes["static"] * classes["temporal"]),
        "ceiling_this_balance": math.sqrt(1.0 / chance["static"] * 1.0 / chance["temporal"]),
    }


def static_in_temporal(
    features: np.ndarray, static_labels: np.ndarray, temporal_set: list[int], seed: int = 0
) -> dict[str, float]:
    """Where a temporal set's knowledge of the static target lives (a diagnostic beside
    eq 19, not in the paper).

    features: [V, N, F]; static_labels: [V] or [V, N]; temporal_set: feature indices.
    The static probe of eq 19 is fitted again on the set split in two: ``centred``, each
    video's features minus their mean over its N frames (only what changes within a
    video), and ``video_mean``, that mean repeated over the frames (only what is constant
    in a video). Static knowledge in ``video_mean`` alone is a per-video offset: static
    information the temporal factor holds beside the static one.
    """
    x = features[..., list(temporal_set)]
    mean = np.broadcast_to(x.mean(axis=1, keepdims=True), x.shape)
    v, n = x.shape[:2]
    train, test = video_split(v, seed)
    task = frame_task(static_labels, n)
    out = {}
    for name, z in (("centred", x - mean), ("video_mean", mean)):
        (x_train, y_train), (x_test, y_test) = task(z, train), task(z, test)
        out[name] = linear_accuracy(x_train, y_train, x_test, y_test, seed)
    return out


def feature_subsets(features: int, static_features: int) -> dict[str, list[int]]:
    """The model's own factors: static and temporal for the hierarchical model, else all."""
    if static_features:
        return {
            "static": list(range(static_features)),
            "temporal": list(range(static_features, features)),
        }
    return {"all": list(range(features))}


def probe_model(model, data: dict[str, np.ndarray], seed: int = 0) -> dict[str, float]:
    """Accuracy of predicting each label of ``data`` from each factor of ``model``.

    ``data`` is a dataset in the file format (``videos`` and labels); the digit/identity
    target is ``static_labels``, the location/pose target ``temporal_labels``.
    """
    mu, _ = encode_videos(model, data["videos"])
    targets = {k: data[k] for k in ("static_labels", "temporal_labels") if k in data}
    if not targets:
        return {}
    cfg = model.config
    return factor_probe(mu, targets, feature_subsets(cfg.features, cfg.n_static), seed)


def probe_run(run_dir, videos: int = 256, seed: int = 0) -> dict:
    """The quick check after training: :func:`probe_model` on the run's held-out data.

    For a generated dataset, ``videos`` fresh videos of held-out digit images; for a file,
    the file itself (so not held out) when it carries labels.
    """

    model, config = load_run(run_dir)
    data = held_out(config.data, videos, seed)
    where = (
        "held-out digits" if config.data.generated else f"{config.data.source}, seen in training"
    )
    if "static_labels" not in data and "temporal_labels" not in data:
        return {"accuracies": {}, "skipped": f"{config.data.source} carries no labels"}
    return {
        "accuracies": probe_model(model, data, seed),
        "videos": len(data["videos"]),
        "data": where,
    }


def static_accuracy(
    features: np.ndarray, static_labels: np.ndarray, static_features: int, seed: int = 0
) -> dict[str, float]:
    """Tables 2-3: the static label from the static features of the hierarchical model
    (``static_features`` > 0), or from all features of a baseline (0). features: [V, N, F]."""
    f = features.shape[-1]
    idx = list(range(static_features)) if static_features else list(range(f))
    probe = factor_probe(features, {"static": static_labels}, {"features": idx}, seed)
    return {
        "static_accuracy": probe["static_from_features"],
        "static_chance": probe["static_chance"],
    }


def _as_data(data, config) -> dict[str, np.ndarray]:
    """A dataset dict as it is, or read from a path with the run's clip settings."""
    if isinstance(data, (str, Path)):
        return load_dataset(data, config.data.frames, config.data.clip_stride)
    return data


def encode_run(run_dir, data) -> dict[str, np.ndarray]:
    """Features of every frame of ``data`` (a dataset dict, or a path that
    :func:`stvae.data.load_dataset` reads) under a run's model: ``mu``, ``logvar``
    [V, N, F], ``static_features`` (leading static features; 0 for the baselines) and
    ``data``'s labels."""
    model, config = load_run(run_dir)
    data = _as_data(data, config)
    mu, logvar = encode_videos(model, data["videos"])
    out = {"mu": mu, "logvar": logvar, "static_features": np.array(config.model.n_static)}
    out.update({k: v for k, v in data.items() if k != "videos"})
    return out


@torch.no_grad()
def elbo_terms(
    model, videos: np.ndarray, batch_videos: int = 32, seed: int = 0
) -> dict[str, float]:
    """Per-frame reconstruction and KL terms (eval mode, one posterior sample) over ``videos``."""
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    totals: dict[str, float] = {}
    for start in range(0, len(videos), batch_videos):
        chunk = videos[start : start + batch_videos]
        out = model.eval()(to_tensor(chunk, device), beta=1.0)
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + v.item() * len(chunk)
    terms = {k: v / len(videos) for k, v in totals.items() if k != "loss"}
    terms["negative_elbo"] = terms["reconstruction"] + terms["kl"]
    return terms


def evaluate_run(run_dir, data=None, seed: int = 0) -> dict:
    """Scores a run and writes ``eval.json`` into it.

    ``data`` (a dataset dict or a path) defaults to the run's held-out set (fresh Bouncing
    MNIST videos of held-out digits). Reports the negative ELBO terms always; with both
    label kinds, the score of eq 19 and the static accuracy of Tables 2-3, each with its
    chance level. On chairs (the order task) also ``disentanglement_order_between``: the
    same score with the order-aware probe of :func:`order_task`. With the score, also
    ``static_in_temporal`` (:func:`static_in_temporal` on the score's temporal set).
    """
    model, config = load_run(run_dir)
    source = str(data) if isinstance(data, (str, Path)) else "given videos"
    data = _as_data(data, config)
    if data is None:
        data = held_out(config.data, seed=seed)
        source = f"held-out {config.data.source}" if config.data.generated else config.data.source
    mu, _ = encode_videos(model, data["videos"])
    k = config.model.n_static
    result: dict = {
        "model": config.model.kind,
        "features": config.model.features,
        "static_features": k,
        "beta": config.model.beta,
        "seed": config.seed,
        "data": source,
        "videos": int(len(data["videos"])),
        "elbo": elbo_terms(model, data["videos"], seed=seed),
        "skipped": [],
    }
    order = config.data.source == "chairs"  # section 4.1: the chairs' temporal target
    if "static_labels" in data and ("temporal_labels" in data or order):
        memo: dict = {}  # the static probes are fitted once for both order probes
        result["disentanglement"] = disentanglement(
            mu,
            data["static_labels"],
            data.get("temporal_labels"),
            k,
            seed,
            temporal_task="order" if order else "labels",
            memo=memo,
        )
        if order:  # the same score with a probe that can read order (see order_task)
            result["disentanglement_order_between"] = disentanglement(
                mu, data["static_labels"], None, k, seed, "order", "between", memo
            )
        result["static_in_temporal"] = static_in_temporal(
            mu, data["static_labels"], result["disentanglement"]["temporal_set"], seed
        )
    else:
        result["skipped"].append("disentanglement score: needs static_labels and temporal_labels")
    if "static_labels" in data:
        result.update(static_accuracy(mu, data["static_labels"], k, seed))
    else:
        result["skipped"].append("static accuracy: needs static_labels")
    write_json(Path(run_dir) / "eval.json", result)
    return result
