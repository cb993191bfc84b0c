"""Sprites scored as the sequential-disentanglement field scores it.

The papers after DSVAE (S3VAE, R-WAE, C-DSVAE, SPYL, SKD, DBSE) report Sprites with one
protocol: a judge classifier trained on the ground truth (here :mod:`stvae.judge`) names
what decoded videos show, in two directions:

* **static from the prior** (``static_from_prior``): keep each test video's temporal
  code, draw the static code from the model's prior, decode, and judge the *action*:
  accuracy against the video's own action, the Inception Score
  ``IS = exp(E_x KL(p(y|x) || p(y)))``, the conditional entropy ``H(y|x)`` (lower: the
  judge is sure) and the marginal entropy ``H(y)`` (higher: actions of every kind; at
  most ln 9), with ``p(y)`` the mean of the judge's softmax over the test videos;
* **dynamics from the prior** (``dynamics_from_prior``): keep the static code, draw the
  temporal code from the prior, decode, and judge each of the four *attributes*
  against the video's own. As C-DSVAE does, what is decoded is by default the prior's
  mean at each frame along the drawn path (``dynamics="means"``: E[z_t | z_<t], the
  per-video draw of eq 7 as part of the past; :meth:`stvae.priors.BlockPrior.means`);
  ``dynamics="draws"`` decodes the draw itself (as every row scored before this option
  did). The result says which (``dynamics``).

Each direction is repeated with ``draws`` independent prior draws; every number is the
mean and the sample standard deviation over the draws. Beside the accuracies, each head
(the action, each attribute) has its ``chance`` (:func:`top_share` of the scored set's
true classes) and its ``fallback``: the share of clips the judge gives its single most
frequent class, on the reconstructions and in both directions. A judge that cannot read
a decoder's clips names one class for most of them (more than :data:`FALLBACK`): that
head's accuracy is then the share of that class, not what the model kept. The codes kept
are the posterior means (:func:`stvae.model.encode_videos`). The prior is the model's own
(:meth:`stvae.elbo.SequenceVAE.prior_sample`): eq 7's per-video mean and eq 8's random
walk for the hierarchical model, N(0, I) for dsvae's f and its LSTM prior for z; a
baseline's features split by the division ``evaluate`` chose, each drawn from its
feature's prior (every kind's features are independent a priori).
"""

from __future__ import annotations

import statistics

import numpy as np
import torch

from stvae.judge import attribute_names, judge_probs
from stvae.model import encode_videos
from stvae.result import FALLBACK, check_dynamics

__all__ = [
    "FALLBACK",
    "top_share",
    "decoded_batches",
    "field_protocol",
    "inception_scores",
    "redraw_change",
    "unused_direction",
    "with_prior",
    "FIELD_DRAWS",
    "MIN_CHANGE",
]

FIELD_DRAWS = 3  # prior draws per direction (the field repeats its protocol)
# A baseline's direction whose redraw changes the decoded clips by less than this fraction
# of what redrawing every feature changes redraws features its decoder does not use: its
# scores would be the reconstruction's, not a draw's (docs/results.md, the field's
# protocol: the VAE's static feature 0.5%, the slow model's 15%, split models 47-83%).
MIN_CHANGE = 0.05


def inception_scores(p: np.ndarray) -> dict[str, float]:
    """The judge's softmax outputs p(y|x) [V, K] -> ``IS``, ``H(y|x)`` and ``H(y)`` (nats).

    IS = exp(mean_x KL(p(y|x) || p(y))) = exp(H(y) - H(y|x)), p(y) = mean_x p(y|x)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    marginal = p.mean(0)
    h_y_x = float(-(p * np.log(p)).sum(-1).mean())
    h_y = float(-(marginal * np.log(marginal)).sum())
    kl = float((p * (np.log(p) - np.log(marginal))).sum(-1).mean())
    return {"IS": float(np.exp(kl)), "H(y|x)": h_y_x, "H(y)": h_y}


def top_share(classes: np.ndarray) -> float:
    """The share of the most frequent value of ``classes`` [V]: for true labels, the
    accuracy of always naming the commonest class (a head's chance); for the judge's
    verdicts, how much of the set it gives one class (its fallback)."""
    _, counts = np.unique(np.asarray(classes), return_counts=True)
    return float(counts.max() / counts.sum())


def with_prior(mu: np.ndarray, prior: np.ndarray, idx: list[int]) -> np.ndarray:
    """Codes mu [V, N, F] with the features ``idx`` taken from the prior draw ``prior``
    (same shape) and the rest kept: ``idx`` the static set draws the static code from the
    prior (the first direction), the temporal set the dynamics (the second). mu is not
    changed."""
    h = mu.copy()
    h[..., idx] = prior[..., idx]
    return h


@torch.no_grad()
def decoded_batches(model, h: np.ndarray, batch: int = 32, logits: bool = False):
    """Codes h [V, ..., F] (any float dtype) decoded in batches of ``batch`` along the first
    axis, in eval mode, on the model's device: yields the frames' means [B, ..., C, H, W]
    (sigmoid of the decoder's logits; with ``logits`` the logits themselves), float32 on
    the CPU."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(h), batch):
            codes = torch.from_numpy(np.ascontiguousarray(h[start : start + batch], np.float32))
            out = model.decode(codes.to(device)).float()
            yield (out if logits else torch.sigmoid(out)).cpu()
    finally:
        model.train(was)


@torch.no_grad()
def _judged(model, h: np.ndarray, judge) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes h [V, N, F] decoded (grey shown to the judge as RGB) and judged: the judge's
    softmax outputs (attributes [V, 4, 6], action [V, 9])."""
    attrs, actions = [], []
    for x in decoded_batches(model, h):
        x = x.expand(-1, -1, 3, -1, -1) if x.shape[2] == 1 else x
        a, act = judge_probs(judge, x)
        attrs.append(a)
        actions.append(act)
    return torch.cat(attrs), torch.cat(actions)


def redraw_change(model, mu: np.ndarray, prior: np.ndarray, division) -> dict[str, float]:
    """How much each direction changes what is decoded: the mean absolute change of every
    pixel of every decoded frame (0-1) from the reconstruction of the codes mu [V, N, F]
    when the static set of ``division`` is taken from the prior draw ``prior`` (same
    shape; ``"static"``), when the temporal set is (``"temporal"``), and when every
    feature is (``"all"``)."""
    s_idx, t_idx = list(division[0]), list(division[1])
    changed = {
        "static": with_prior(mu, prior, s_idx),
        "temporal": with_prior(mu, prior, t_idx),
        "all": prior,
    }
    sums, count = dict.fromkeys(changed, 0.0), 0
    streams = [decoded_batches(model, mu)] + [decoded_batches(model, h) for h in changed.values()]
    for plain, *others in zip(*streams, strict=True):
        for name, x in zip(changed, others, strict=True):
            sums[name] += float((x - plain).abs().sum())
        count += plain.numel()
    return {name: total / count for name, total in sums.items()}


def unused_direction(change: dict[str, float], division) -> str | None:
    """Why the field's protocol does not apply to a division whose static or temporal
    redraw changes the decoded clips by less than :data:`MIN_CHANGE` of a full redraw
    (``change``: :func:`redraw_change`), or None when both directions change them."""
    for side, idx in (("static", division[0]), ("temporal", division[1])):
        share = change[side] / change["all"] if change["all"] > 0 else 0.0
        if share < MIN_CHANGE:
            return (
                f"drawing the {side} set (features {list(idx)}) from the prior changes the "
                f"decoded clips by {share:.1%} of a full redraw (below {MIN_CHANGE:.0%}): "
                "the decoder does not use it"
            )
    return None


def _summary(values: list[float]) -> dict[str, float]:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": float(statistics.mean(values)), "sd": float(sd)}


def field_protocol(
    model,
    data: dict,
    division: tuple[list[int], list[int]],
    judge,
    draws: int = FIELD_DRAWS,
    seed: int = 0,
    dynamics: str = "means",
) -> dict:  # long: both directions, their draws and every head's fallback in one pass
    """Both directions of the field's protocol (module doc) on the test clips ``data``
    (sprites, the file format: ``videos``, ``attributes`` [V, 4], ``temporal_labels``
    [V, N]) for a model with ``prior_sample``; ``division``: (static, temporal) feature
    indices; ``dynamics``: what the second direction decodes
    (:data:`stvae.result.DYNAMICS`, module doc). Returns ``{"draws", "dynamics",
    "static_set", "temporal_set", "static_from_prior": {"action_accuracy", "IS",
    "H(y|x)", "H(y)"}, "dynamics_from_prior": {attribute: accuracy}, "change":
    :func:`redraw_change` of the first draw, "reconstruction": {head: the judge's
    accuracy on the plain reconstructions}, "chance": {head: share}, "fallback":
    {"reconstruction": {head: share}, "static_from_prior": {"action": ...},
    "dynamics_from_prior": {attribute: ...}}}``, every score of a draw as ``{"mean",
    "sd"}`` over the draws."""
    check_dynamics(dynamics)
    mu, _ = encode_videos(model, data["videos"])  # [V, N, F]
    v, n = mu.shape[:2]
    s_idx, t_idx = list(division[0]), list(division[1])
    action = data["temporal_labels"][:, 0]
    attributes = data["attributes"]
    first: dict[str, list[float]] = {}
    names = attribute_names(data)
    second: dict[str, list[float]] = {name: [] for name in names}
    p_attrs, p_action = _judged(model, mu, judge)  # the reconstructions
    verdict, named = p_action.argmax(-1).numpy(), p_attrs.argmax(-1).numpy()  # [V], [V, 4]
    fallback = {"reconstruction": _top_shares(verdict, named, names)}
    kept = {"action": float((verdict == action).mean())}
    kept.update({n: float((named[:, i] == attributes[:, i]).mean()) for i, n in enumerate(names)})
    falls: dict[str, dict[str, list[float]]] = {"static_from_prior": {"action": []}}
    falls["dynamics_from_prior"] = {name: [] for name in names}
    for r in range(draws):
        prior = _prior(model, v, n, seed * 1_000 + r)
        if r == 0:
            change = redraw_change(model, mu, prior, (s_idx, t_idx))
        _, p_action = _judged(model, with_prior(mu, prior, s_idx), judge)
        found = {"action_accuracy": float((p_action.argmax(-1).numpy() == action).mean())}
        found.update(inception_scores(p_action.numpy()))
        for key, value in found.items():
            first.setdefault(key, []).append(value)
        falls["static_from_prior"]["action"].append(top_share(p_action.argmax(-1).numpy()))
        moves = _prior(model, v, n, seed * 1_000 + r, True) if dynamics == "means" else prior
        p_attrs, _ = _judged(model, with_prior(mu, moves, t_idx), judge)
        named = p_attrs.argmax(-1).numpy()  # [V, 4]
        for i, name in enumerate(names):
            second[name].append(float((named[:, i] == attributes[:, i]).mean()))
            falls["dynamics_from_prior"][name].append(top_share(named[:, i]))
    for direction, heads in falls.items():
        fallback[direction] = {k: _summary(vs) for k, vs in heads.items()}
    chance = _top_shares(action, attributes, names)
    return {
        "draws": draws,
        "dynamics": dynamics,
        "static_set": s_idx,
        "temporal_set": t_idx,
        "static_from_prior": {k: _summary(vs) for k, vs in first.items()},
        "dynamics_from_prior": {k: _summary(vs) for k, vs in second.items()},
        "change": change,
        "reconstruction": kept,
        "chance": chance,
        "fallback": fallback,
    }


def _prior(model, videos: int, frames: int, seed: int, means: bool = False) -> np.ndarray:
    """The model's prior draw from ``seed`` [V, N, F] (float32), or with ``means`` the
    conditional means along that draw's path."""
    g = torch.Generator().manual_seed(seed)
    return model.prior_sample(videos, frames, g, means=means).float().cpu().numpy()


def _top_shares(action, attributes, names: list[str]) -> dict[str, float]:
    """:func:`top_share` of each head: classes of the action [V] and of the attributes
    [V, 4] named ``names`` (true labels: each head's chance; the judge's verdicts: its
    fallback)."""
    out = {"action": top_share(action)}
    out.update({name: top_share(attributes[:, i]) for i, name in enumerate(names)})
    return out
