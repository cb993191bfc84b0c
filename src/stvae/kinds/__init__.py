"""The registry of model kinds: name -> class (a :class:`stvae.elbo.SequenceVAE`).

Nothing else in the package names a kind: the CLI's choices and help, the fields of
:class:`stvae.model.ModelConfig`, the grids' Table 1 rows and whether a kind has a
static/temporal division of its own all come from here. A new kind is one new module
in this package and one line below (docs/design.md).
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
