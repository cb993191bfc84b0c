"""stvae: disentangling space and time in video with hierarchical VAEs (Grathwohl & Wilson)."""

from importlib.metadata import PackageNotFoundError, version

from stvae.errors import StvaeError

try:
    __version__ = version("stvae")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["StvaeError", "__version__"]
