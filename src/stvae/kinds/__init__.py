"""The registry of model kinds: name -> class (a :class:`stvae.elbo.SequenceVAE`).

No code branches on a kind's name: the CLI's choices and help, the fields of
:class:`stvae.model.ModelConfig`, the grids' Table 1 rows and whether a kind has a
static/temporal division of its own (``split``) all come from here. Names appear
elsewhere only as data: the default kind (:mod:`stvae.model`), the paper's three models
with their published numbers and the sizes each grid runs them at
(:mod:`stvae.data.spec`, :mod:`stvae.data.registry`), and the report's table of what the
hierarchical model's temporal factor knows of the static label (:mod:`stvae.report`).
A new kind is one new module in this package and one line below (docs/design.md).
"""

from stvae.kinds.blocks import Hierarchical, Slow, Vae
from stvae.kinds.dsvae import DSVAE

__all__ = ["KINDS"]

KINDS = {
    "hierarchical": Hierarchical,
    "slow": Slow,
    "vae": Vae,
    "dsvae": DSVAE,
}
