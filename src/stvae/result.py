"""One evaluation result: what :func:`stvae.evaluate.evaluate_model` makes, ``eval.json``
holds, and every reader (the CLI's summary, the grids' report rows, figures' division,
the learning curve) takes.

:class:`EvalResult` has one writer (:meth:`EvalResult.to_dict`, the ``eval.json`` layout)
and one reader (:meth:`EvalResult.from_dict`); nothing else spells eval.json's keys. The
layout (docs/design.md, "Evaluation result"): run facts, ``elbo``, ``probe_sets`` and
``skipped``; then, per probe, the keys of one static target with the probe's suffix
(none for ``linear``, ``_rbf`` for ``rbf``): ``disentanglement`` (eq 19's result, as
:func:`stvae.probes.disentanglement` returns it), ``d_score``, ``static_accuracy`` and
``static_chance`` (Tables 2-3). Data with several static attributes (sprites) keeps
those keys per attribute under ``attributes.<name>``, and the top level's ``d_score`` and
``static_accuracy`` are then their means. ``swaps`` (judged swaps, with chance and
leak rates) and ``field`` (the field's protocol, :mod:`stvae.field`) where a judge ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stvae.checkpoint import read_json
from stvae.errors import StvaeError
from stvae.probes import Eq19

__all__ = [
    "EVAL_VERSION",
    "SUFFIX",
    "PROBE_NAMES",
    "EvalResult",
    "draw_cell",
    "Scores",
    "read_result",
]

EVAL_VERSION = 2  # 2: both probes, disjoint fit/score images, the travel-range grid
SUFFIX = {"linear": "", "rbf": "_rbf"}  # eval.json keys: d_score, d_score_rbf, ...
PROBE_NAMES = {"linear": "linear SVM (the paper's text)", "rbf": "RBF SVC (the authors' code)"}
SINGLE = "static_labels"  # the target's name when the data has one static label
FALLBACK = 0.5  # a judge's head naming one class for more of the clips has fallen back
# what the field protocol's dynamics direction decodes (stvae.field): the prior's means
# along a drawn path (C-DSVAE's), or the draw
DYNAMICS = ("means", "draws")
_DECODED = {"means": "its means decoded", "draws": "its draws decoded"}


def check_dynamics(dynamics: str) -> str:
    """``dynamics`` if it is one of :data:`DYNAMICS`, else one line (StvaeError)."""
    if dynamics not in DYNAMICS:
        raise StvaeError(f"dynamics must be one of {', '.join(DYNAMICS)}; got {dynamics!r}")
    return dynamics


@dataclass(frozen=True)
class Scores:
    """One static target (the digit, a chair, one sprites attribute) under one probe.

    ``disentanglement``: eq 19's result (:class:`stvae.probes.Eq19`; None when the data
    has no temporal target);
    ``static_accuracy`` / ``static_chance``: Tables 2-3's accuracy read from the static
    factor and its chance level. Linear probe only: ``static_in_temporal`` (the static
    target read from the temporal factor) and, on chairs, ``order_between`` (eq 19 with
    the order-aware probe)."""

    static_accuracy: float
    static_chance: float
    disentanglement: Eq19 | None = None
    static_in_temporal: dict | None = None
    order_between: Eq19 | None = None

    @property
    def d_score(self) -> float | None:
        return None if self.disentanglement is None else self.disentanglement.d_score

    def to_dict(self, sfx: str) -> dict:
        out: dict = {}
        if self.disentanglement is not None:
            out[f"disentanglement{sfx}"] = self.disentanglement.to_dict()
            out[f"d_score{sfx}"] = self.d_score
        if self.order_between is not None:
            out["disentanglement_order_between"] = self.order_between.to_dict()
        if self.static_in_temporal is not None:
            out["static_in_temporal"] = self.static_in_temporal
        out[f"static_accuracy{sfx}"] = self.static_accuracy
        out[f"static_chance{sfx}"] = self.static_chance
        return out

    @classmethod
    def from_dict(cls, d: dict, sfx: str) -> Scores | None:
        """The target's scores under the probe of suffix ``sfx``; None when not scored."""
        if f"static_accuracy{sfx}" not in d:
            return None
        linear = sfx == SUFFIX["linear"]
        found, between = d.get(f"disentanglement{sfx}"), d.get("disentanglement_order_between")
        return cls(
            static_accuracy=float(d[f"static_accuracy{sfx}"]),
            static_chance=float(d[f"static_chance{sfx}"]),
            disentanglement=None if found is None else Eq19.from_dict(found),
            static_in_temporal=d.get("static_in_temporal") if linear else None,
            order_between=Eq19.from_dict(between) if linear and between else None,
        )


@dataclass
class EvalResult:
    """A run scored on held-out data (``eval.json``).

    ``targets[probe][name]``: :class:`Scores` per probe (``linear``, ``rbf``) and static
    target; ``attributes``: the target names when the data has several (sprites), else
    None and the one target is named ``static_labels``. ``elbo``: the negative ELBO terms
    in nats per frame; ``probe_sets[probe]``: which videos each probe was fitted and
    scored on; ``swaps``: judged swaps on sprites; ``field``: the field's protocol
    (:func:`stvae.field.field_protocol`, with the judge's own accuracy); ``options``: the
    kind's own hyperparameters and the likelihood it trained with (older files: {})."""

    model: str
    features: int
    static_features: int
    beta: float
    seed: int
    data: str
    videos: int
    temporal_definition: str | None
    elbo: dict
    probe_sets: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    targets: dict = field(default_factory=dict)
    attributes: list | None = None
    swaps: dict | None = None
    # the kind's own options and the likelihood, as trained ({"posterior": "full", ...});
    # before ``field``, whose name hides dataclasses.field in the rest of the class body
    options: dict = field(default_factory=dict)
    field: dict | None = None
    eval_version: int = EVAL_VERSION

    # the readers' questions

    @property
    def probes(self) -> list[str]:
        """The probes that scored something, in SUFFIX order."""
        return [p for p in SUFFIX if self.targets.get(p)]

    def first(self, probe: str, name: str | None = None) -> Scores | None:
        """The scores of static target ``name`` (default: the first, in the order scored;
        eval.json keeps attributes in name order): the one target, or a sprites attribute,
        whose division a baseline's figures use."""
        found = self.targets.get(probe) or {}
        if name is not None and name in found:
            return found[name]
        return next(iter(found.values()), None)

    def d_score(self, probe: str = "rbf") -> float | None:
        """Eq 19 under ``probe``: the one target's, or the mean over the attributes."""
        return self._mean(probe, lambda s: s.d_score)

    def static_accuracy(self, probe: str = "rbf") -> float | None:
        """Tables 2-3's static accuracy under ``probe`` (the mean over attributes)."""
        return self._mean(probe, lambda s: s.static_accuracy)

    def _mean(self, probe: str, get) -> float | None:
        values = [get(s) for s in (self.targets.get(probe) or {}).values()]
        values = [v for v in values if v is not None]
        if not values:
            return None
        return values[0] if self.attributes is None else float(np.mean(values))

    def describe(self) -> str:
        """What ``stvae evaluate`` prints: one line per section, in eval.json's order."""
        lines = [
            f"{self.model} model, {self.features} features, beta {self.beta:g}, "
            f"on {self.videos} videos of {self.data}",
            "  -ELBO " + "  ".join(f"{k} {v:.2f}" for k, v in self.elbo.items()) + " (nats/frame)",
            f"  location labels: {self.temporal_definition}",
        ]
        for p in SUFFIX:
            lines += self._describe_probe(p)
        lines += _describe_swaps(self.swaps)
        lines += _describe_field(self.field)
        first = self.first("linear") if self.attributes is None else None
        if first is not None and first.static_in_temporal:
            leak = first.static_in_temporal
            lines.append(
                f"  static target from the temporal features centred per video "
                f"{leak['centred']:.3f}, from their per-video means {leak['video_mean']:.3f}"
            )
        if first is not None and first.order_between:
            b = first.order_between
            lines.append(
                f"  with an order-aware probe (differences of the three frames): d-score "
                f"{b.d_score:.3f}, order from temporal {b.temporal_acc_from_temporal:.3f},"
                f" from static {b.temporal_acc_from_static:.3f}"
            )
        lines += [f"  skipped {s}" for s in self.skipped]
        return "\n".join(lines)

    def _describe_probe(self, p: str) -> list[str]:
        lines = []
        sets = self.probe_sets.get(p)
        if sets:
            overlap = sets["image_overlap"]
            lines.append(
                f"  {PROBE_NAMES[p]}: fitted on {sets['fit_videos']} videos of {sets['fit']}, "
                f"scored on {sets['score_videos']} of {sets['score']}"
                + ("" if overlap is None else f" (images shared: {overlap:.3f})")
            )
        targets = self.targets.get(p) or {}
        if self.attributes is None:
            for s in targets.values():
                if s.disentanglement:
                    lines += _describe_score(s.disentanglement)
                lines.append(
                    f"    static accuracy (Tables 2-3) {s.static_accuracy:.3f}  "
                    f"(chance {s.static_chance:.3f})"
                )
            return lines
        for attr, s in targets.items():  # sprites: each attribute against the action
            if s.d_score is not None:
                lines.append(
                    f"    {attr:<9} d-score {s.d_score:.3f}  from static "
                    f"{s.static_accuracy:.3f} (chance {s.static_chance:.3f})"
                )
        if self.d_score(p) is not None:
            lines.append(
                f"    mean over the attributes: d-score {self.d_score(p):.3f}, "
                f"static accuracy {self.static_accuracy(p):.3f}"
            )
        return lines

    # the one writer and the one reader of eval.json

    def to_dict(self) -> dict:
        """The eval.json layout of the module doc."""
        out: dict = {
            "eval_version": self.eval_version,
            "model": self.model,
            "features": self.features,
            "static_features": self.static_features,
            "options": self.options,
            "beta": self.beta,
            "seed": self.seed,
            "data": self.data,
            "videos": self.videos,
            "temporal_definition": self.temporal_definition,
            "elbo": self.elbo,
            "probe_sets": self.probe_sets,
            "skipped": self.skipped,
        }
        if self.attributes is not None:
            out["attributes"] = {name: {} for name in self.attributes}
        for p, sfx in SUFFIX.items():
            for name, scores in (self.targets.get(p) or {}).items():
                (out["attributes"][name] if self.attributes is not None else out).update(
                    scores.to_dict(sfx)
                )
            if self.attributes is not None:
                for key, value in (
                    (f"d_score{sfx}", self.d_score(p)),
                    (f"static_accuracy{sfx}", self.static_accuracy(p)),
                ):
                    if value is not None:
                        out[key] = value
        if self.swaps is not None:
            out["swaps"] = self.swaps
        if self.field is not None:
            out["field"] = self.field
        return out

    @classmethod
    def from_dict(cls, d: dict, where: str = "eval.json") -> EvalResult:
        """Reads :meth:`to_dict`'s layout (and version 1's, which lacks ``probe_sets``)."""
        if not isinstance(d, dict):
            raise StvaeError(f"{where}: not an evaluation result (expected a JSON object)")
        try:
            attrs = d.get("attributes")
            sections = attrs if attrs is not None else {SINGLE: d}
            targets = {}
            for p, sfx in SUFFIX.items():
                found = {name: Scores.from_dict(sec, sfx) for name, sec in sections.items()}
                found = {name: s for name, s in found.items() if s is not None}
                if found:
                    targets[p] = found
            return cls(
                model=d["model"],
                features=int(d["features"]),
                static_features=int(d.get("static_features", 0)),
                beta=float(d["beta"]),
                seed=int(d["seed"]),
                data=d["data"],
                videos=int(d["videos"]),
                temporal_definition=d.get("temporal_definition"),
                elbo=dict(d["elbo"]),
                probe_sets=dict(d.get("probe_sets", {})),
                skipped=list(d.get("skipped", [])),
                targets=targets,
                attributes=None if attrs is None else list(attrs),
                swaps=d.get("swaps"),
                field=d.get("field"),
                options=dict(d.get("options", {})),
                eval_version=int(d.get("eval_version", 1)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise StvaeError(
                f"{where}: not an evaluation result ({type(e).__name__}: {e})"
            ) from None


def _describe_score(d: Eq19) -> list[str]:
    """The lines of one eq-19 result: score, division, the four accuracies and chance."""
    lines = [
        f"    d-score (eq 19) {d.d_score:.3f}   ceiling {d.ceiling:.2f} "
        f"({d.ceiling_this_balance:.2f} with this data's class balance)",
        f"    division: static {d.static_set} temporal {d.temporal_set} ({d.division})",
    ]
    chosen = d.chosen_on_fit
    if chosen:
        lines.append(
            f"    division chosen on the fitting videos alone: static {chosen.static_set}, "
            f"d-score {chosen.d_score:.3f}"
        )
    return lines + [
        "    accuracy           static target   temporal target",
        f"    static features    {d.static_acc_from_static:>13.3f}   "
        f"{d.temporal_acc_from_static:>15.3f}",
        f"    temporal features  {d.static_acc_from_temporal:>13.3f}   "
        f"{d.temporal_acc_from_temporal:>15.3f}",
        f"    chance             {d.static_chance:>13.3f}   {d.temporal_chance:>15.3f}",
    ]


def _describe_swaps(swaps: dict | None) -> list[str]:
    """Sprites: the judged swaps beside the judge's own accuracy on real clips."""
    if not swaps:
        return []
    judge = swaps["judge_accuracy"]
    attrs = [k for k in judge if k != "action"]
    lines = [
        f"  swaps, judged: action kept {swaps['action']:.3f}, attributes taken "
        + ", ".join(f"{a} {swaps[a]:.3f}" for a in attrs)
        + f" (the judge on real clips: action {judge['action']:.3f}, attributes "
        + ", ".join(f"{judge[a]:.3f}" for a in attrs)
        + ")"
    ]
    if "chance_action" in swaps:  # evaluations since the leak rates were added
        keys = ["action", *attrs]
        lines.append(
            "    chance (the sources share it) "
            + ", ".join(f"{k} {swaps['chance_' + k]:.3f}" for k in keys)
            + "; leaked (the other source's) "
            + ", ".join(f"{k} {swaps['leak_' + k]:.3f}" for k in keys)
        )
    return lines


def draw_cell(d: dict) -> str:
    """A field score over prior draws, ``{"mean", "sd"}``, as "0.423 ± 0.016"."""
    return f"{d['mean']:.3f} ± {d['sd']:.3f}"


def _describe_field(found: dict | None) -> list[str]:
    """Sprites: the field's protocol, both directions, mean ± sd over the prior draws."""
    if not found:
        return []
    judge = found["judge_accuracy"]
    lines = [
        "  the field's protocol (judge on real held-out clips: "
        + ", ".join(f"{k} {v:.3f}" for k, v in judge.items())
        + ")"
    ]
    if "not_applicable" in found:
        return lines + [f"    not applicable: {found['not_applicable']}"]

    cell = draw_cell
    first, second = found["static_from_prior"], found["dynamics_from_prior"]
    lines.append(
        f"    static from the prior, action judged ({found['draws']} draws): "
        + ", ".join(f"{k} {cell(v)}" for k, v in first.items())
    )
    lines.append(
        f"    dynamics from the prior ({_DECODED[found.get('dynamics', 'draws')]}), attributes "
        "judged: " + ", ".join(f"{k} {cell(v)}" for k, v in second.items())
    )
    if "reconstruction" in found:  # evaluations since it was recorded
        lines.append(
            "    reconstructions judged (no prior draw): "
            + ", ".join(f"{k} {v:.3f}" for k, v in found["reconstruction"].items())
        )
    if "fallback" not in found:  # evaluations before the fallback shares were added
        return lines
    fb = found["fallback"]
    lines.append(
        "    chance (the scored clips' commonest class) "
        + ", ".join(f"{k} {v:.3f}" for k, v in found["chance"].items())
    )
    lines.append(
        "    the judge's fallback (share of clips given its commonest verdict): "
        + "reconstructions "
        + ", ".join(f"{k} {v:.3f}" for k, v in fb["reconstruction"].items())
        + "; static from the prior: action "
        + cell(fb["static_from_prior"]["action"])
        + "; dynamics from the prior: "
        + ", ".join(f"{k} {cell(v)}" for k, v in fb["dynamics_from_prior"].items())
    )
    fell = [f"reconstructions {k}" for k, v in fb["reconstruction"].items() if v > FALLBACK]
    for direction in ("static_from_prior", "dynamics_from_prior"):
        words = direction.replace("_", " ")
        fell += [f"{words} {k}" for k, v in fb[direction].items() if v["mean"] > FALLBACK]
    if fell:
        lines.append(
            f"    fell back (one class for over {FALLBACK:.0%} of the clips; its accuracy is "
            "that class's share, not what the model kept): " + ", ".join(fell)
        )
    return lines


def read_result(path: str | Path) -> EvalResult:
    """An ``eval.json`` file as an :class:`EvalResult` (one clear error when it is not)."""
    return EvalResult.from_dict(read_json(path), str(path))
