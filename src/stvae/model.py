"""Model configuration and construction: :class:`ModelConfig`, :func:`make_model`.

The kinds themselves live in :mod:`stvae.kinds` (their registry, ``KINDS``) on the base of
:mod:`stvae.elbo` (the beta-ELBO of eq 5). :class:`ModelConfig` holds the fields every
kind has (``kind``, ``features``, ``beta``, ``channels``) and, beside them, each kind's
own hyperparameters as that kind declares them (its ``options`` dataclass): one flat
dataclass, so ``config.json`` keeps the layout it has always had, and a field a kind
does not take must keep its default (``posterior`` is dsvae's, ``sigma2`` the random
walk's). The CLI's model flags come from the same fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from stvae.elbo import SequenceVAE
from stvae.errors import StvaeError
from stvae.kinds import KINDS
from stvae.kinds.blocks import VideoVAE
from stvae.layout import to_tensor

__all__ = [
    "ModelConfig",
    "VideoVAE",
    "SequenceVAE",
    "KINDS",
    "encode_videos",
    "make_model",
    "kind_of",
    "option_takers",
    "COMMON_FIELDS",
]

CHANNELS = (None, 1, 3)  # grey or RGB frames; None: what the data has
LIKELIHOODS = ("bernoulli", "gaussian")  # p(x | h) of eq 5's reconstruction term


def kind_of(name: str) -> type[SequenceVAE]:
    """The class registered as model kind ``name``."""
    if name not in KINDS:
        raise StvaeError(f"unknown model kind {name!r}; choose from {', '.join(KINDS)}")
    return KINDS[name]


def _option_names(kind: type[SequenceVAE]) -> set[str]:
    return {f.name for f in dataclasses.fields(kind.options)}


def _kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def _kinds_help() -> str:
    kinds = "; ".join(f"{name}: {kind.summary}" for name, kind in KINDS.items())
    return f"the model kind ({kinds})"


def option_takers(name: str) -> list[str]:
    """The registered kinds that take hyperparameter ``name`` as their own."""
    return [n for n, k in KINDS.items() if name in _option_names(k)]


@dataclass(frozen=True)
class _Common:
    """The fields of every kind (the options of each kind follow; see the module doc)."""

    kind: str = field(  # which model (stvae.kinds.KINDS)
        default="hierarchical",
        metadata={"flag": "model", "choices": _kind_names, "help": _kinds_help},
    )
    features: int = field(  # Table 1: 4 for Bouncing MNIST
        default=4, metadata={"help": "latent features per frame in total"}
    )
    beta: float = field(default=1.0, metadata={"help": "KL weight of eq 5"})
    # None: what the data has (train() fixes it, so config.json always holds a number; 1 for
    # a model without data)
    channels: int | None = field(
        default=None,
        metadata={
            "choices": (1, 3),
            "parse": "int",
            "help": "colour channels the model sees: 1 (grey) or 3 (RGB); default: what the "
            "data has (colour videos and sprites 3, Bouncing MNIST and chairs 1)",
            "alias": (
                "grayscale",
                1,
                "the same as --channels 1: colour frames become their luminance",
            ),
        },
    )
    likelihood: str = field(  # stvae 0.5 and before: Bernoulli (files without it read so)
        default="bernoulli",
        metadata={
            "choices": LIKELIHOODS,
            "help": "p(x | h) per pixel and channel: bernoulli (the paper's, default) or "
            "gaussian (mean: the decoder's sigmoid; a learned variance per channel)",
        },
    )

    def __post_init__(self) -> None:
        kind = kind_of(self.kind)
        if self.features < 1:
            raise StvaeError(f"features must be at least 1; got {self.features}")
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise StvaeError(f"beta must be a positive finite number; got {self.beta}")
        if self.channels not in CHANNELS:
            raise StvaeError(f"channels must be 1 or 3; got {self.channels!r}")
        if self.likelihood not in LIKELIHOODS:
            raise StvaeError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}; got {self.likelihood!r}"
            )
        own = _option_names(kind)
        for f in dataclasses.fields(self):
            if f.name in own or f.name in _COMMON or getattr(self, f.name) == f.default:
                continue
            takers = option_takers(f.name)
            plural = "s" if len(takers) > 1 else ""
            raise StvaeError(f"{f.name} applies to the {' and '.join(takers)} model{plural} only")
        if kind.split:
            s = getattr(self, "static_features", None)
            if s is not None and not 0 < s < self.features:
                raise StvaeError(
                    f"static_features must be between 1 and features - 1 = {self.features - 1}; "
                    f"got {s}"
                )
            if self.features < 2:
                raise StvaeError(f"the {self.kind} model needs at least 2 features")
        kind.check(self)

    @property
    def in_channels(self) -> int:
        """The channels the networks take and give (``channels``, 1 when unresolved)."""
        return self.channels or 1

    @property
    def n_static(self) -> int:
        """Number of leading static latent features: 0 for a kind without a division of
        its own (``split``), else ``static_features`` or half; for dsvae the size of f."""
        if not kind_of(self.kind).split:
            return 0
        s = getattr(self, "static_features", None)
        return s if s is not None else self.features // 2


_COMMON = frozenset(f.name for f in dataclasses.fields(_Common))
COMMON_FIELDS = _COMMON  # the fields every kind has (the rest are kinds' own options)


def _options() -> list[tuple[str, str, dataclasses.Field]]:
    """Every kind's own fields, once each (kinds sharing a field declare it alike)."""
    seen: dict[str, dataclasses.Field] = {}
    for name, kind in KINDS.items():
        for f in dataclasses.fields(kind.options):
            if f.name in seen and seen[f.name].default != f.default:
                raise TypeError(f"kind {name} declares {f.name} with another default")
            seen.setdefault(f.name, f)
    return [
        (n, f.type, field(default=f.default, metadata=dict(f.metadata))) for n, f in seen.items()
    ]


ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    _options(),
    bases=(_Common,),
    frozen=True,
    namespace={"__module__": __name__, "__doc__": _Common.__doc__},
)


def make_model(config: ModelConfig) -> nn.Module:
    """The model a config names: an instance of its kind's class in :data:`KINDS`."""
    return kind_of(config.kind)(config)


@torch.no_grad()
def encode_videos(
    model: SequenceVAE, videos: np.ndarray, batch_videos: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of every frame: [V, N, 64, 64] or [V, N, 64, 64, 3]
    (converted to the model's channels by :func:`stvae.layout.to_tensor`) -> 2 x float32
    [V, N, F].

    Runs in eval mode (batch-norm running statistics) on the model's device, in batches.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mus, logvars = [], []
    try:
        for start in range(0, len(videos), batch_videos):
            x = to_tensor(videos[start : start + batch_videos], device, model.config.in_channels)
            mu, logvar = model.encode(x)
            mus.append(mu.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(mus), np.concatenate(logvars)
