"""The one exception type for errors a user can cause (files, flags, data), and the check
of the one input every command takes: a seed."""

from numbers import Integral


class StvaeError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with 2."""


def check_seed(seed, name: str = "seed"):
    """``seed`` as numpy's generators take it (a whole number, 0 or more, or a list of
    them), returned unchanged; anything else is refused in one line naming ``name``."""
    parts = seed if isinstance(seed, (list, tuple)) else [seed]
    if not parts or any(isinstance(s, bool) or not isinstance(s, Integral) or s < 0 for s in parts):
        raise StvaeError(f"{name} must be a whole number, 0 or more; got {seed!r}")
    return seed
