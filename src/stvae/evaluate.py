"""Scoring a run: the ELBO, the disentanglement score of eq 19 and the static accuracy of
Tables 2-3 under two protocols, written to ``eval.json``.

The cores are pure functions of arrays in :mod:`stvae.probes` (re-exported here); this
module makes the labelled videos they are fitted and scored on, encodes them with a
run's model and calls them.

Protocols (``probe``):

* ``linear``, the paper's text: linear SVMs fitted on videos of one half of the held-out
  digit images and scored on videos of the other half (chairs: the 10 held-out chairs
  on the 5-degree view grid, scored on views half a step off it);
* ``rbf``, the authors' code, which made the paper's numbers: ``SVC()`` (RBF kernel)
  fitted on videos of the *training* digit images and scored on the same held-out
  videos as ``linear``; for chairs (whose classes are the held-out chairs themselves)
  fitted on the same videos as ``linear``, with the authors' order triplets (frames s,
  s + 2, s + 4).

Fitting and scoring sets share no image (``image_overlap`` in eval.json, 0 for
generated data). With a data file (``data=``), both probes are fitted on a random half
of its videos and scored on the other half; whether images repeat across the halves is
then unknown.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stvae.checkpoint import write_json
from stvae.data import DataConfig, generate, held_out, load_dataset, to_tensor
from stvae.errors import StvaeError, check_seed
from stvae.hostmem import keeps_freed_memory
from stvae.kinds import KINDS
from stvae.layout import LUMA
from stvae.model import encode_videos
from stvae.probes import (
    PROBES,
    chance_accuracy,
    disentanglement,
    factor_probe,
    feature_subsets,
    linear_accuracy,
    order_task,
    rbf_accuracy,
    static_accuracy,
    static_in_temporal,
    video_split,
)
from stvae.result import EVAL_VERSION, SUFFIX, EvalResult, Scores, check_dynamics
from stvae.rundir import load_run

__all__ = [
    "EVAL_VERSION",
    "EvalResult",
    "SUFFIX",
    "PROBE_CHOICES",
    "probe_sets",
    "image_overlap",
    "probe_run",
    "encode_run",
    "evaluate_run",
    "evaluate_model",
    "static_targets",
    "elbo_terms",
    # the cores, from stvae.probes
    "PROBES",
    "chance_accuracy",
    "disentanglement",
    "factor_probe",
    "feature_subsets",
    "linear_accuracy",
    "order_task",
    "rbf_accuracy",
    "static_accuracy",
    "static_in_temporal",
    "video_split",
]

PROBE_CHOICES = ("linear", "rbf", "both")
PROBE_SEED = 2_000_003  # probe sets never share a stream with training or held_out()
PROBE_VIDEOS = 256  # videos in each probe set unless a caller says otherwise


def probe_sets(
    config: DataConfig, videos: int | None = None, seed: int = 0, score_videos: int | None = None
) -> dict:
    """The labelled videos each protocol is fitted and scored on, for a generated dataset.

    Returns ``{"score": data, "fit": {"linear": data, "rbf": data}, "describe": {...}}``,
    each ``data`` a dataset dict of ``videos`` videos (default :data:`PROBE_VIDEOS`; file
    format, with ``image_ids``), the score set of ``score_videos`` (default ``videos``);
    the score set is shared. See the module doc for which images each set shows.
    """
    if not config.generated:
        raise StvaeError(f"{config.source}: probe sets are made for generated data only")
    for name, n in (("videos", videos), ("score_videos", score_videos)):
        if n is not None and n < 2:
            raise StvaeError(f"{name} must be at least 2; got {n}")
    videos = videos or PROBE_VIDEOS

    def make(split: str, k: int) -> dict:
        return generate(
            config.source,
            score_videos or videos if split == "test-score" else videos,
            config.frames,
            [PROBE_SEED, seed, k],
            split,
            **config.settings(),
        )

    fit_linear = make("test-fit", 1)
    spec = config.spec
    if not spec.training_images:  # the held-out classes are the classes themselves
        return {
            "score": make("test-score", 3),
            "fit": {"linear": fit_linear, "rbf": fit_linear},
            "describe": {
                "score": spec.describe["score"],
                "linear": spec.describe["fit"],
                "rbf": spec.describe["fit"],
            },
        }
    held = spec.describe["held"]
    return {
        "score": make("test-score", 3),
        "fit": {"linear": fit_linear, "rbf": make("train", 2)},
        "describe": {
            "score": held.format("B"),
            "linear": held.format("A"),
            "rbf": f"training {spec.describe['images']}",
        },
    }


def image_overlap(fit: dict, score: dict) -> float | None:
    """Share of the scoring frames whose image (digit image, or chair view) some fitting
    frame also shows; None without ``image_ids``. ids: [V] per video or [V, N] per frame."""
    if "image_ids" not in fit or "image_ids" not in score:
        return None
    frames = score["videos"].shape[1]
    ids = score["image_ids"]
    ids = np.repeat(ids[:, None], frames, 1) if ids.ndim == 1 else ids
    return float(np.isin(ids, fit["image_ids"]).mean())


def _labels(data: dict) -> dict[str, np.ndarray]:
    return {k: data[k] for k in ("static_labels", "temporal_labels", "attributes") if k in data}


def static_targets(data: dict) -> dict[str, np.ndarray]:
    """The static targets of a dataset, each [V]: its attributes by name when it has them
    (``attributes`` [V, A] and ``attribute_names`` [A]; sprites: skin, hair, top,
    trousers), else ``static_labels`` (the digit, the chair) as ``{"static_labels": ...}``."""
    if "attributes" in data:
        attrs = data["attributes"]
        names = data.get("attribute_names", [f"attribute_{i}" for i in range(attrs.shape[1])])
        return {str(name): attrs[:, i] for i, name in enumerate(names)}
    return {"static_labels": data["static_labels"]} if "static_labels" in data else {}


def _targets(data: dict) -> dict[str, np.ndarray]:
    """Every label of ``data`` as one target each, for :func:`factor_probe`."""
    out = static_targets(data)
    if "temporal_labels" in data:
        out["temporal_labels"] = data["temporal_labels"]
    return out


def _probe_inputs(model, fit: dict, score: dict, cache: dict, seed: int):
    """What a probe is fitted and scored on: (mu [V, N, F], labels, (fit, score) videos).

    With ``fit is score`` one set is halved at random (:func:`video_split`); else the two
    sets' encodings are stacked, fitting videos first. ``cache`` keeps encodings by set.
    """
    for d in (fit, score):
        if id(d) not in cache:
            cache[id(d)] = encode_videos(model, d["videos"])[0]
    if fit is score:
        mu, labels, split = cache[id(fit)], _labels(fit), video_split(len(fit["videos"]), seed)
    else:
        vf, vs = len(fit["videos"]), len(score["videos"])
        mu = np.concatenate([cache[id(fit)], cache[id(score)]])
        scored = _labels(score)
        labels = {k: np.concatenate([v, scored[k]]) for k, v in _labels(fit).items() if k in scored}
        split = (np.arange(vf), np.arange(vf, vf + vs))
    if "attribute_names" in score:  # names, not per-video labels: taken once, not stacked
        labels["attribute_names"] = score["attribute_names"]
    return mu, labels, split


def probe_run(run_dir, videos: int | None = None, seed: int = 0) -> dict:
    """The quick check after training: each label from each factor, with both probes.

    For a generated dataset, fitted and scored on the probe sets of :func:`probe_sets`
    (``videos`` videos each); for a file, on halves of the file itself (so not held out)
    when it carries labels. Returns ``{"accuracies": {probe: {...}}, ...}``.
    """
    model, config = load_run(run_dir)
    if config.data.generated:
        sets = probe_sets(config.data, videos, seed)
        pairs = {p: (sets["fit"][p], sets["score"]) for p in PROBES}
        where = "held-out " + config.data.spec.statics
    else:
        data = held_out(config.data, videos or PROBE_VIDEOS, seed)
        if not _labels(data):
            return {"accuracies": {}, "skipped": f"{config.data.source} carries no labels"}
        pairs = {p: (data, data) for p in PROBES}
        where = f"{config.data.source}, seen in training"
    cache: dict = {}
    subsets = feature_subsets(config.model.features, config.model.n_static)
    accuracies = {}
    for p, (fit, score) in pairs.items():
        mu, labels, split = _probe_inputs(model, fit, score, cache, seed)
        accuracies[p] = factor_probe(mu, _targets(labels), subsets, seed, p, split)
    return {"accuracies": accuracies, "videos": len(pairs["linear"][1]["videos"]), "data": where}


def _as_data(data, config) -> dict[str, np.ndarray]:
    """A dataset dict as it is, or read from a path with the run's clip settings."""
    if isinstance(data, (str, Path)):
        return load_dataset(data, config.data.frames, config.data.clip_stride, "test")
    return data


@keeps_freed_memory
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
    """Per-frame reconstruction and KL terms (eval mode, one posterior sample) over ``videos``.

    Beside them ``reconstruction_floor``: what the reconstruction term (eq 5's Bernoulli
    likelihood, per pixel and channel value) would be for a perfect decoder, the summed
    entropy H(x) = -x log x - (1 - x) log(1 - x) of the frames' values in [0, 1], per
    frame. It is 0 for black-and-white frames and large for grey levels and colours (a
    value of 0.5 costs log 2 however well it is predicted), so ``reconstruction`` minus
    the floor is what compares across datasets and channels. For colour frames also
    ``reconstruction_colourless``: the term of a perfect decoder that draws every pixel
    grey at its luminance (BT.601, as :func:`stvae.data.to_tensor` converts), so its
    excess over the floor is what colour is worth to the likelihood, in nats per frame.
    Both are Bernoulli quantities: a model with a Gaussian likelihood has neither.
    """
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    totals: dict[str, float] = {}
    for start in range(0, len(videos), batch_videos):
        chunk = videos[start : start + batch_videos]
        x = to_tensor(chunk, device, model.config.in_channels)  # [B, N, C, 64, 64]
        out = model.eval()(x, beta=1.0)
        x, frames = x.double(), x.shape[0] * x.shape[1]
        if model.config.likelihood == "bernoulli":  # the floors of a Bernoulli term
            out["reconstruction_floor"] = F.binary_cross_entropy(x, x, reduction="sum") / frames
            if x.shape[2] == 3:
                luma = torch.tensor(LUMA, dtype=x.dtype, device=x.device)
                grey = torch.einsum("bncij,c->bnij", x, luma).unsqueeze(2).expand_as(x)
                colourless = F.binary_cross_entropy(grey.clamp(0, 1), x, reduction="sum")
                out["reconstruction_colourless"] = colourless / frames
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + v.item() * len(chunk)
    terms = {k: v / len(videos) for k, v in totals.items() if k != "loss"}
    terms["negative_elbo"] = terms["reconstruction"] + terms["kl"]
    return terms


def _options(model_config) -> dict:
    """What eval.json records of how the model was built beyond its kind and sizes: the
    kind's own options (stvae.kinds, e.g. dsvae's posterior) and the likelihood."""
    own = [f.name for f in fields(KINDS[model_config.kind].options)]
    return {n: getattr(model_config, n) for n in (*own, "likelihood")}


def _temporal_definition(data: dict) -> str:
    """What the location labels mean, as eval.json records it."""
    if "temporal_definition" in data:
        return str(data["temporal_definition"])
    if "temporal_labels" not in data:
        return "none"
    if "positions" in data:  # an stvae Bouncing MNIST file from before the definition was kept
        return "unrecorded (Bouncing MNIST files of stvae < 0.2 used thirds of the frame)"
    return "the data's own"


def _static_scores(
    mu: np.ndarray,
    static: np.ndarray,
    temporal: np.ndarray | None,
    k: int,
    p: str,
    split,
    seed: int,
    order: bool,
    scores: bool,
    memo: dict,
    name: str,
) -> Scores:
    """One static target (``name``) under probe ``p``: eq 19 against the temporal target
    (when ``scores``) and the static accuracy of Tables 2-3. ``memo`` keeps probe
    accuracies on these features: the static ones for both order probes, the temporal
    ones for every static target."""
    d = between = leak = None
    if scores:
        common = dict(seed=seed, memo=memo, probe=p, split=split, static_key=name)
        d = disentanglement(
            mu,
            static,
            temporal,
            k,
            temporal_task="order" if order else "labels",
            order_picks="spaced" if p == "rbf" else "any",
            **common,
        )
        if p == "linear":
            if order:  # the same score with a probe that can read order (order_task)
                between = disentanglement(
                    mu, static, None, k, temporal_task="order", order_probe="between", **common
                )
            leak = static_in_temporal(mu, static, d.temporal_set, seed, split)
    acc = static_accuracy(mu, static, k, seed, p, split)
    return Scores(
        static_accuracy=acc["static_accuracy"],
        static_chance=acc["static_chance"],
        disentanglement=d,
        static_in_temporal=leak,
        order_between=between,
    )


@keeps_freed_memory
def evaluate_run(
    run_dir,
    data=None,
    seed: int = 0,
    probe: str = "both",
    videos: int | None = None,
    out: str | Path | None = None,
    dynamics: str = "means",
) -> EvalResult:
    """Scores a run, writes ``eval.json`` into it (or to ``out``) and returns it as an
    :class:`~stvae.result.EvalResult` (its ``to_dict()`` is the file).

    ``data`` (a dataset dict or a path) defaults to the run's probe sets
    (:func:`probe_sets`, ``videos`` videos in each) for generated data, else the run's
    data file. ``probe``:
    ``linear``, ``rbf`` or ``both`` (see the module doc). Reports the negative ELBO terms
    on the scoring videos always; with both label kinds, for each probe the score of
    eq 19 (``disentanglement``, ``disentanglement_rbf``, and ``d_score``,
    ``d_score_rbf``) and the static accuracy of Tables 2-3 (``static_accuracy``,
    ``static_accuracy_rbf``), each with chance levels, division and the fitting and
    scoring sets behind it. On chairs also ``disentanglement_order_between`` (linear,
    the order-aware triplet features of :func:`order_task`), and with the linear score
    ``static_in_temporal`` on its temporal set. Data with several static attributes
    (sprites) is scored once per attribute (:func:`static_targets`) against the same
    temporal target, under ``attributes.<name>`` with the keys above; ``d_score`` and
    ``static_accuracy`` (and their ``_rbf`` twins) are then the means over attributes
    (a baseline's division is chosen for each attribute on its own). On sprites, a model
    with its own split also gets ``swaps``: the share of decoded swaps in which a judge
    classifier (:mod:`stvae.judge`, its own accuracy on real held-out clips beside)
    names the temporal source's action and each attribute of the static source, and
    ``field``: the field's protocol (:mod:`stvae.field`; ``dynamics``: what its second
    direction decodes, the prior's means or its draws).
    """
    check_seed(seed)
    check_dynamics(dynamics)
    model, config = load_run(run_dir)
    out = Path(run_dir) / "eval.json" if out is None else Path(out)
    if not out.parent.is_dir():
        raise StvaeError(f"{out.parent}: output folder does not exist")
    sets = probe_sets(config.data, videos, seed) if data is None and config.data.generated else None
    result = evaluate_model(model, config, data, seed, probe, sets=sets, dynamics=dynamics)
    write_json(out, result.to_dict())
    return result


def _scoring_sets(config, data, sets: dict | None, probes: list[str], seed: int):
    """(scoring videos, {probe: (fitting, scoring videos)}, {probe: (their names)}, the
    data's name): the probe sets of generated data, else halves of the given videos."""
    if data is None and config.data.generated:
        sets = sets if sets is not None else probe_sets(config.data, seed=seed)
        score = sets["score"]
        pairs = {p: (sets["fit"][p], score) for p in probes}
        named = {p: (sets["describe"][p], sets["describe"]["score"]) for p in probes}
        return score, pairs, named, f"held-out {config.data.source}"
    source = str(data) if isinstance(data, (str, Path)) else "given videos"
    score = _as_data(data, config)
    if score is None:
        score, source = held_out(config.data, seed=seed), config.data.source
    halves = "a random half of the videos"
    pairs = {p: (score, score) for p in probes}
    return score, pairs, {p: (halves, "the other half") for p in probes}, source


def _judged(model, config, score: dict, result: EvalResult, seed: int, dynamics: str) -> None:
    """Data with a judge (:func:`stvae.judge.has_judge`; sprites, and folders of the
    field's Sprites arrays): swaps (a model with its own split) on the scoring set and
    the field's protocol (:mod:`stvae.field`) on its class-balanced set
    (:func:`stvae.judge.field_set`, its size as ``field.clips``), judged by a classifier
    trained on the ground truth on clips of the scored length, its own accuracy on real
    held-out clips beside each."""
    from stvae.field import field_protocol, unused_direction
    from stvae.judge import field_set, has_judge, judge_accuracy, judge_swaps, train_judge

    frames, name = score["videos"].shape[1], config.data.source
    if not has_judge(name):  # data with attributes but no judge (a file of labelled clips)
        return
    classifier = train_judge(seed, frames, data=name)
    accuracy = judge_accuracy(classifier, seed=seed, frames=frames, data=name)
    k, f = config.model.n_static, config.model.features
    if k:
        result.swaps = {"judge_accuracy": accuracy, **judge_swaps(model, score, classifier, seed)}
        division = (list(range(k)), list(range(k, f)))
    else:  # a baseline: the division evaluate chose for the first attribute
        scores = result.first("linear") or result.first("rbf")
        d = scores.disentanglement if scores is not None else None
        division = d.sets if d else None
    try:
        if division is None:
            raise NotImplementedError("no division of its features was chosen")
        clips = field_set(seed, frames, name)  # class-balanced: every character x action
        found = field_protocol(model, clips, division, classifier, seed=seed, dynamics=dynamics)
    except NotImplementedError as e:
        result.field = {"not_applicable": str(e), "judge_accuracy": accuracy}
        return
    result.field = {"judge_accuracy": accuracy, "clips": len(clips["videos"]), **found}
    unused = None if k else unused_direction(found["change"], division)
    if unused:  # a baseline's division that redraws nothing: its scores kept beside
        result.field["not_applicable"] = unused


@keeps_freed_memory
def evaluate_model(
    model,
    config,
    data=None,
    seed: int = 0,
    probe: str = "both",
    sets: dict | None = None,
    judge: bool = True,
    cache: dict | None = None,
    dynamics: str = "means",
) -> EvalResult:  # long: every probe's targets and then the judged scores, in one result
    """What :func:`evaluate_run` (whose ``dynamics`` this is) writes to ``eval.json``, for
    a model in hand (a run's :class:`TrainConfig` beside it). ``sets``: this config's
    :func:`probe_sets` made once by the caller (a learning curve scores many snapshots on
    the same sets); ``judge``: False leaves out sprites' judge (swaps, the field's
    protocol); ``cache``: the posterior means of each video set, by ``id`` of its dict."""
    if probe not in PROBE_CHOICES:
        raise StvaeError(f"probe must be one of {', '.join(PROBE_CHOICES)}; got {probe!r}")
    probes = list(PROBES) if probe == "both" else [probe]
    cache = {} if cache is None else cache
    score, pairs, named, source = _scoring_sets(config, data, sets, probes, seed)
    k = config.model.n_static
    spec = config.data.spec
    order = spec is not None and spec.temporal_task == "order"  # section 4.1: chairs
    statics = static_targets(score)
    scores = bool(statics) and ("temporal_labels" in score or order)
    result = EvalResult(
        model=config.model.kind,
        features=config.model.features,
        static_features=k,
        beta=config.model.beta,
        seed=config.seed,
        data=source,
        videos=int(len(score["videos"])),
        temporal_definition=_temporal_definition(score),
        elbo=elbo_terms(model, score["videos"], seed=seed),
        attributes=list(statics) if len(statics) > 1 else None,  # sprites
        options=_options(config.model),
    )
    if not scores:
        result.skipped.append("disentanglement score: needs static_labels and temporal_labels")
    if not statics:
        result.skipped.append("static accuracy: needs static_labels")
        pairs = {}  # nothing to probe
    for p, (fit, scored) in pairs.items():
        mu, labels, split = _probe_inputs(model, fit, scored, cache, seed)
        result.probe_sets[p] = dict(
            zip(("fit", "score"), named[p], strict=True),
            fit_videos=len(split[0]),
            score_videos=len(split[1]),
            image_overlap=None if fit is scored else image_overlap(fit, scored),
        )
        memo: dict = {}
        temporal = labels.get("temporal_labels")
        result.targets[p] = {
            name: _static_scores(mu, y, temporal, k, p, split, seed, order, scores, memo, name)
            for name, y in static_targets(labels).items()
        }
    if judge and "attributes" in score:
        _judged(model, config, score, result, seed, dynamics)
    return result
