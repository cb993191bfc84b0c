"""Probes of learned features: the disentanglement score of eq 19 and Tables 2-3, as pure
functions of arrays (features [V, N, F], labels, seed) that return named numbers (eq 19:
an :class:`Eq19`, the one place its keys are spelled).

Two probes, each a classifier fitted on the frames of some videos and scored on the
frames of others (every frame, or for the chairs' order task every frame triplet, is one
sample):

* ``linear``, the paper's text (section 4.1): an L2-regularised linear SVM (scikit-learn's
  LinearSVC, squared hinge, C = 1) on standardised features;
* ``rbf``, the authors' evaluation code, which produced the paper's numbers:
  ``sklearn.svm.SVC()`` with its defaults (RBF kernel, C = 1, gamma = 'scale'), on the raw
  features. No subsampling: 256 videos x 16 frames a side fit in about 0.5 s per probe on
  our CPU, so a baseline's 14 divisions (Bouncing MNIST, 4 features) cost seconds, the
  chairs' 254 divisions (8 features) a few minutes and the sprites' four attributes
  against 254 divisions (about 2,500 fits a probe) 11-12 minutes in one process (their
  grid's ``slow`` and ``vae`` runs); accuracies are cached per
  (feature subset, target, probe, split) so nothing is fitted twice. A baseline's
  divisions are fitted in parallel processes (:data:`PARALLEL_MIN` fits or more; one
  process per available CPU, or ``STVAE_PROBE_WORKERS``): each fit is deterministic on
  its own (LinearSVC reseeds its generator per fit), so the numbers equal one process's.

Which videos a probe is fitted on and scored on is the caller's ``split`` (two arrays of
video indices); :func:`video_split` halves one set at random when there is no other.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from stvae.errors import StvaeError

__all__ = [
    "PROBES",
    "video_split",
    "linear_accuracy",
    "rbf_accuracy",
    "chance_accuracy",
    "factor_probe",
    "frame_task",
    "order_task",
    "between_features",
    "disentanglement",
    "Division",
    "Eq19",
    "static_in_temporal",
    "static_accuracy",
    "feature_subsets",
]

Split = tuple[np.ndarray, np.ndarray]  # (fit videos, score videos): indices into [V]


def video_split(videos: int, seed: int) -> Split:
    """Disjoint halves of the video indices (fit, score) from ``seed``."""
    if videos < 2:
        raise StvaeError(f"probes need at least 2 labelled videos; got {videos}")
    order = np.random.default_rng(seed).permutation(videos)
    half = videos // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _frames(a: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """Per-frame samples of the chosen videos: [V, N, ...] -> [len(videos) * N, ...]."""
    sel = a[videos]
    return sel.reshape(sel.shape[0] * sel.shape[1], *sel.shape[2:])


# scikit-learn (with scipy and pandas: seconds) is imported by the fits, not by this module,
# so that commands and processes that fit no probe (`stvae train --no-check`, `--help`)
# start without it


def _fit_score(clf, x_fit, y_fit, x_score, y_score) -> float:
    from sklearn.exceptions import ConvergenceWarning

    if len(np.unique(y_fit)) < 2:
        return float(np.mean(y_score == y_fit[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_fit, y_fit)
    return float(np.mean(clf.predict(x_score) == y_score))


def linear_accuracy(
    x_fit: np.ndarray, y_fit: np.ndarray, x_score: np.ndarray, y_score: np.ndarray, seed: int = 0
) -> float:
    """Score accuracy of an L2 linear SVM fitted on (x_fit, y_fit): [M, D], [M] -> float."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    clf = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=5000, random_state=seed))
    return _fit_score(clf, x_fit, y_fit, x_score, y_score)


def rbf_accuracy(
    x_fit: np.ndarray, y_fit: np.ndarray, x_score: np.ndarray, y_score: np.ndarray, seed: int = 0
) -> float:
    """Score accuracy of ``SVC()`` with scikit-learn's defaults (RBF kernel, C = 1, gamma
    'scale'), the authors' probe: [M, D], [M] -> float. Deterministic; ``seed`` is unused."""
    from sklearn.svm import SVC

    return _fit_score(SVC(), x_fit, y_fit, x_score, y_score)


PROBES: dict[str, Callable[..., float]] = {"linear": linear_accuracy, "rbf": rbf_accuracy}


def _probe(name: str) -> Callable[..., float]:
    if name not in PROBES:
        raise StvaeError(f"probe must be one of {', '.join(PROBES)}; got {name!r}")
    return PROBES[name]


def chance_accuracy(y_fit: np.ndarray, y_score: np.ndarray) -> float:
    """Accuracy of always answering the most frequent fitting label (the best blind guess)."""
    values, counts = np.unique(y_fit, return_counts=True)
    return float(np.mean(y_score == values[np.argmax(counts)]))


def _per_frame(labels: np.ndarray, frames: int) -> np.ndarray:
    """Video labels [V] or frame labels [V, N] -> [V, N]."""
    return np.repeat(labels[:, None], frames, axis=1) if labels.ndim == 1 else labels


def factor_probe(
    features: np.ndarray,
    targets: dict[str, np.ndarray],
    subsets: dict[str, list[int]],
    seed: int = 0,
    probe: str = "linear",
    split: Split | None = None,
) -> dict[str, float]:
    """Accuracy of every (feature subset, target) pair, fitted and scored on disjoint videos.

    features: [V, N, F]; targets: name -> [V] or [V, N] labels; subsets: name -> feature
    indices; ``split`` (default: :func:`video_split`). Returns ``"<target>_from_<subset>"``
    accuracies and ``"<target>_chance"``.
    """
    accuracy = _probe(probe)
    v, n = features.shape[:2]
    fit, score = video_split(v, seed) if split is None else split
    out = {}
    for t_name, labels in targets.items():
        y = _per_frame(labels, n)
        y_fit, y_score = _frames(y, fit), _frames(y, score)
        out[f"{t_name}_chance"] = chance_accuracy(y_fit, y_score)
        for s_name, idx in subsets.items():
            x = features[..., idx]
            out[f"{t_name}_from_{s_name}"] = accuracy(
                _frames(x, fit), y_fit, _frames(x, score), y_score, seed
            )
    return out


Task = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def frame_task(labels: np.ndarray, frames: int) -> Task:
    """Every frame is a sample: (x [V, N, k], videos) -> ([len(videos) * N, k], labels)."""
    y = _per_frame(labels, frames)
    return lambda x, videos: (_frames(x, videos), _frames(y, videos))


ORDERS = ((0, 1, 2), (2, 1, 0), (0, 2, 1), (1, 0, 2))  # the first two are "in order"
ORDER_PROBES = ("concat", "between")
ORDER_PICKS = ("any", "spaced")


def between_features(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Features of a triplet shown as (a, b, c), each [M, k], from which a *linear* probe can
    read order: per feature, (b - a)(c - b) (> 0 when b lies between a and c) and
    |c - a| - |b - a| - |c - b| (0 when it does, negative otherwise) -> [M, 2k]."""
    return np.concatenate([(b - a) * (c - b), np.abs(c - a) - np.abs(b - a) - np.abs(c - b)], 1)


def order_task(
    videos: int,
    frames: int,
    seed: int,
    per_video: int = 8,
    probe: str = "concat",
    picks: str = "any",
) -> Task:
    """Section 4.1's temporal task for chairs: are 3 frames, given in this order, temporally
    ordered? Frames i < j < k of one video shown as (i, j, k) or (k, j, i) are (label 1),
    as (i, k, j) or (j, i, k) are not (label 0); ``per_video`` triplets per video, each
    arrangement equally likely. ``picks="any"`` draws i < j < k anywhere in the video;
    ``picks="spaced"`` takes frames s, s + 2, s + 4 of 5 consecutive frames, as the
    authors' code does (their negatives (0, 4, 2) and (2, 0, 4) are these two
    arrangements). The sample is the three frames' features side by side [3k]
    (``probe="concat"``, the paper's wording), or :func:`between_features` [2k]
    (``probe="between"``): ordered means (z2 - z1)(z3 - z2) > 0 for a monotone feature, a
    product that no linear function of the concatenation expresses (a kernel can)."""
    if probe not in ORDER_PROBES:
        raise StvaeError(f"order probe must be one of {', '.join(ORDER_PROBES)}; got {probe!r}")
    if picks not in ORDER_PICKS:
        raise StvaeError(f"order picks must be one of {', '.join(ORDER_PICKS)}; got {picks!r}")
    need = 5 if picks == "spaced" else 3
    if frames < need:
        raise StvaeError(
            f"the temporal-order task needs at least {need} frames a video; got {frames}"
        )
    rng = np.random.default_rng([seed, 3])
    m = videos * per_video
    if picks == "spaced":
        chosen = rng.integers(0, frames - 4, size=m)[:, None] + np.array([0, 2, 4])
    else:
        chosen = np.sort(np.stack([rng.choice(frames, 3, replace=False) for _ in range(m)]), 1)
    arrangement = rng.integers(0, len(ORDERS), size=m)
    shown = np.take_along_axis(chosen, np.asarray(ORDERS)[arrangement], axis=1)
    shown = shown.reshape(videos, per_video, 3)
    labels = (arrangement < 2).astype(np.int64).reshape(videos, per_video)

    def make(x: np.ndarray, vids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        trip = x[vids[:, None, None], shown[vids]]  # [len(vids), per_video, 3, k]
        trip = trip.reshape(len(vids) * per_video, 3, -1)
        if probe == "between":
            return between_features(trip[:, 0], trip[:, 1], trip[:, 2]), labels[vids].reshape(-1)
        return trip.reshape(len(trip), -1), labels[vids].reshape(-1)

    return make


PARALLEL_MIN = 64  # fits below this many run in this process (workers cost a second to start)


def probe_workers() -> int:
    """Processes for a batch of probe fits: ``STVAE_PROBE_WORKERS`` or the CPUs available."""
    given = os.environ.get("STVAE_PROBE_WORKERS", "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise StvaeError(f"STVAE_PROBE_WORKERS must be a positive integer; got {given!r}")
        return int(given)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _fit_all(jobs: Iterable[tuple], count: int, workers: int | None) -> list[float]:
    """``accuracy(x_fit, y_fit, x_score, y_score, seed)`` for each of ``count`` job tuples
    (accuracy first; made as they are fitted), in ``workers`` processes (None:
    :func:`probe_workers`, and only from PARALLEL_MIN jobs)."""
    if workers is None:
        workers = probe_workers() if count >= PARALLEL_MIN else 1
    if workers <= 1 or count < 2:
        return [job[0](*job[1:]) for job in jobs]
    from joblib import Parallel, delayed  # scikit-learn's own dependency

    return Parallel(n_jobs=min(workers, count))(delayed(job[0])(*job[1:]) for job in jobs)


def _divisions(f: int, static_features: int) -> list[tuple[int, ...]]:
    """The static sets to try: the model's own (first k features), or every non-empty proper
    subset for a baseline (k = 0); the temporal set is the complement."""
    if static_features:
        if not 0 < static_features < f:
            raise StvaeError(f"static_features must be in 1..{f - 1}; got {static_features}")
        return [tuple(range(static_features))]
    return [c for k in range(1, f) for c in itertools.combinations(range(f), k)]


@dataclass(frozen=True)
class Division:
    """Eq 19 for one division of the features: its score, the two sets (feature indices)
    and the four probe accuracies of a_s and a_t."""

    d_score: float
    static_set: list[int]
    temporal_set: list[int]
    static_acc_from_static: float
    temporal_acc_from_static: float
    temporal_acc_from_temporal: float
    static_acc_from_temporal: float

    @property
    def sets(self) -> tuple[list[int], list[int]]:
        """(static set, temporal set)."""
        return self.static_set, self.temporal_set

    @property
    def accuracies(self) -> dict[str, float]:
        """The four accuracies by name (``<target>_acc_from_<factor>``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Division)[3:]}

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Division)}

    @classmethod
    def from_dict(cls, d: dict) -> Division:
        return cls(**_division_fields(d))


def _division_fields(d: dict) -> dict:
    """A :class:`Division`'s fields from its :meth:`~Division.to_dict` (or an Eq19's)."""
    return {f.name: d[f.name] for f in dataclasses.fields(Division)}


@dataclass(frozen=True)
class Eq19(Division):
    """What :func:`disentanglement` returns: the scored division and how it was found.

    ``division``: "model" (the kind's own) or "best of N" (a baseline, every division
    tried); ``chosen_on_fit``: a baseline's division chosen on the fitting videos alone;
    ``static_chance`` / ``temporal_chance``: a blind probe's accuracies; ``ceiling``: the
    top score with balanced classes, ``ceiling_this_balance`` with this data's balance;
    ``order_probe`` / ``order_picks``: the chairs' order task's settings (None for
    labels). :meth:`to_dict` is eval.json's layout of it (docs/design.md)."""

    probe: str = "linear"
    division: str = "model"
    temporal_task: str = "labels"
    static_chance: float = 0.0
    temporal_chance: float = 0.0
    ceiling: float = 0.0
    ceiling_this_balance: float = 0.0
    order_probe: str | None = None
    order_picks: str | None = None
    chosen_on_fit: Division | None = None

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.chosen_on_fit is not None:
            out["chosen_on_fit"] = self.chosen_on_fit.to_dict()
        out.update(probe=self.probe, division=self.division, temporal_task=self.temporal_task)
        if self.order_probe is not None:
            out.update(order_probe=self.order_probe, order_picks=self.order_picks)
        out.update(
            static_chance=self.static_chance,
            temporal_chance=self.temporal_chance,
            ceiling=self.ceiling,
            ceiling_this_balance=self.ceiling_this_balance,
        )
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Eq19:
        chosen = d.get("chosen_on_fit")
        return cls(
            **_division_fields(d),
            probe=d.get("probe", "linear"),
            division=d["division"],
            temporal_task=d.get("temporal_task", "labels"),
            static_chance=d["static_chance"],
            temporal_chance=d["temporal_chance"],
            ceiling=d["ceiling"],
            ceiling_this_balance=d["ceiling_this_balance"],
            order_probe=d.get("order_probe"),
            order_picks=d.get("order_picks"),
            chosen_on_fit=None if chosen is None else Division.from_dict(chosen),
        )


def disentanglement(  # long: eq 19's closures share one memo of fitted probes over every division
    features: np.ndarray,
    static_labels: np.ndarray,
    temporal_labels: np.ndarray | None = None,
    static_features: int = 0,
    seed: int = 0,
    temporal_task: str = "labels",
    order_probe: str = "concat",
    memo: dict | None = None,
    probe: str = "linear",
    split: Split | None = None,
    order_picks: str = "any",
    static_key: str = "",
    workers: int | None = None,
) -> Eq19:
    """The disentanglement score of eq 19.

    features: [V, N, F]; static_labels: [V] or [V, N] (the digit, the chair).
    The temporal target is ``temporal_labels`` [V, N] per frame (the 3x3 location) with
    ``temporal_task="labels"``, or the triplet order task of :func:`order_task` (chairs)
    with ``temporal_task="order"``, its samples made as ``order_probe`` and
    ``order_picks`` say. ``probe`` is the classifier (:data:`PROBES`); ``split`` the
    (fit, score) videos (default: :func:`video_split` of all V). With ``static_features``
    = k > 0 the division is the model's own (first k features static, the rest temporal);
    with 0 (baselines) the score is the maximum over every division of the features into
    two non-empty sets (the paper's rule, which selects on the scored accuracies), and
    ``chosen_on_fit`` adds the division chosen without looking at the scored videos:
    the fitting videos are halved, the division with the best score fitted on one half
    and scored on the other wins, and it is then fitted and scored as the headline is.
    ``memo`` (a dict, empty at first) keeps accuracies between calls on the same
    features, labels and seed, so scoring with another ``order_probe`` refits only the
    temporal probes; ``static_key`` names the static target in it, so calls for several
    static targets (sprites' attributes) share one memo and fit the temporal probes once.
    ``workers``: processes for a baseline's fits (None: see the module doc; 1: this one).

    a_s(S) = acc(S, y_s) / acc(S, y_t), a_t(S) = acc(S, y_t) / acc(S, y_s),
    score = sqrt(a_s(H_s) a_t(H_t)).
    """
    v, n, f = features.shape
    if f < 2:
        raise StvaeError("the disentanglement score needs at least 2 features")
    accuracy = _probe(probe)
    fit, score = video_split(v, seed) if split is None else split
    if temporal_task == "order":
        temporal = order_task(v, n, seed, probe=order_probe, picks=order_picks)
    elif temporal_labels is not None:
        temporal = frame_task(temporal_labels, n)
    else:
        raise StvaeError("the disentanglement score needs temporal labels or the order task")
    tasks = {"static": frame_task(static_labels, n), "temporal": temporal}
    cache = {} if memo is None else memo
    kind = {"static": static_key, "temporal": ""}
    if temporal_task == "order":
        kind["temporal"] = f"{order_probe}/{order_picks}"
    halves = {"score": (fit, score)}
    if not static_features:  # the fitting videos halved, for the choice made on them alone
        a, b = video_split(len(fit), seed + 1)
        halves["fit"] = (fit[a], fit[b])

    chance, classes = {}, {}  # before any probe is fitted: a score that cannot be is refused
    for name, task in tasks.items():
        (_, y_fit), (_, y_score) = task(features, fit), task(features, score)
        chance[name] = chance_accuracy(y_fit, y_score)
        classes[name] = len(np.unique(np.concatenate([y_fit, y_score])))
        if chance[name] == 0:  # eq 19's ceiling, and a blind probe's, would divide by 0
            raise StvaeError(
                f"too few videos to score: no scoring video shows the fitting videos' most "
                f"common {name} class ({len(fit)} fitting and {len(score)} scoring videos); "
                "score on more labelled videos (evaluate's probe sets hold 256 each)"
            )

    def key_of(idx: tuple[int, ...], target: str, where: str) -> tuple:
        return (idx, target, kind[target], probe, where)

    def job(idx: tuple[int, ...], target: str, where: str) -> tuple:
        x = features[..., list(idx)]
        x_fit, y_fit = tasks[target](x, halves[where][0])
        x_score, y_score = tasks[target](x, halves[where][1])
        return (accuracy, x_fit, y_fit, x_score, y_score, seed)

    def acc(idx: tuple[int, ...], target: str, where: str = "score") -> float:
        key = key_of(idx, target, where)
        if key not in cache:
            cache[key] = _fit_all([job(idx, target, where)], 1, 1)[0]
        return cache[key]

    def score_of(s_idx: tuple[int, ...], where: str = "score") -> float:
        t_idx = tuple(i for i in range(f) if i not in s_idx)
        a_s = acc(s_idx, "static", where) / max(acc(s_idx, "temporal", where), 1e-12)
        a_t = acc(t_idx, "temporal", where) / max(acc(t_idx, "static", where), 1e-12)
        return math.sqrt(a_s * a_t)

    def described(s_idx: tuple[int, ...]) -> Division:
        t_idx = tuple(i for i in range(f) if i not in s_idx)
        return Division(
            d_score=score_of(s_idx),
            static_set=list(s_idx),
            temporal_set=list(t_idx),
            static_acc_from_static=acc(s_idx, "static"),
            temporal_acc_from_static=acc(s_idx, "temporal"),
            temporal_acc_from_temporal=acc(t_idx, "temporal"),
            static_acc_from_temporal=acc(t_idx, "static"),
        )

    divisions = _divisions(f, static_features)
    if len(divisions) > 1:  # a baseline: every subset is fitted for both targets; at once
        wanted = [
            (idx, target, where)
            for where in halves
            for idx in divisions
            for target in tasks
            if key_of(idx, target, where) not in cache
        ]
        found = _fit_all((job(*w) for w in wanted), len(wanted), workers)
        cache.update({key_of(*w): a for w, a in zip(wanted, found, strict=True)})
    best = described(max(divisions, key=score_of))
    chosen = None
    if not static_features:
        chosen = described(max(divisions, key=lambda s: score_of(s, "fit")))
    order = temporal_task == "order"
    return Eq19(
        **best.to_dict(),
        probe=probe,
        division="model" if static_features else f"best of {len(divisions)}",
        temporal_task=temporal_task,
        static_chance=chance["static"],
        temporal_chance=chance["temporal"],
        # Perfect probes with balanced classes: sqrt(K_t * K_s); with the class balance
        # of this data, a blind probe does better than 1/K, so the reachable top is lower.
        ceiling=math.sqrt(classes["static"] * classes["temporal"]),
        ceiling_this_balance=math.sqrt(1.0 / chance["static"] * 1.0 / chance["temporal"]),
        order_probe=order_probe if order else None,
        order_picks=order_picks if order else None,
        chosen_on_fit=chosen,
    )


def static_in_temporal(
    features: np.ndarray,
    static_labels: np.ndarray,
    temporal_set: list[int],
    seed: int = 0,
    split: Split | None = None,
) -> dict[str, float]:
    """Where a temporal set's knowledge of the static target lives (a diagnostic beside
    eq 19, not in the paper).

    features: [V, N, F]; static_labels: [V] or [V, N]; temporal_set: feature indices.
    The linear static probe of eq 19 is fitted again on the set split in two: ``centred``,
    each video's features minus their mean over its N frames (only what changes within a
    video), and ``video_mean``, that mean repeated over the frames (only what is constant
    in a video). Static knowledge in ``video_mean`` alone is a per-video offset: static
    information the temporal factor holds beside the static one.
    """
    x = features[..., list(temporal_set)]
    mean = np.broadcast_to(x.mean(axis=1, keepdims=True), x.shape)
    v, n = x.shape[:2]
    fit, score = video_split(v, seed) if split is None else split
    task = frame_task(static_labels, n)
    out = {}
    for name, z in (("centred", x - mean), ("video_mean", mean)):
        (x_fit, y_fit), (x_score, y_score) = task(z, fit), task(z, score)
        out[name] = linear_accuracy(x_fit, y_fit, x_score, y_score, seed)
    return out


def feature_subsets(features: int, static_features: int) -> dict[str, list[int]]:
    """The model's own factors: static and temporal for the hierarchical model, else all."""
    if static_features:
        return {
            "static": list(range(static_features)),
            "temporal": list(range(static_features, features)),
        }
    return {"all": list(range(features))}


def static_accuracy(
    features: np.ndarray,
    static_labels: np.ndarray,
    static_features: int,
    seed: int = 0,
    probe: str = "linear",
    split: Split | None = None,
) -> dict[str, float]:
    """Tables 2-3: the static label from the static features of the hierarchical model
    (``static_features`` > 0), or from all features of a baseline (0). features: [V, N, F]."""
    f = features.shape[-1]
    idx = list(range(static_features)) if static_features else list(range(f))
    found = factor_probe(features, {"static": static_labels}, {"features": idx}, seed, probe, split)
    return {
        "static_accuracy": found["static_from_features"],
        "static_chance": found["static_chance"],
    }
