"""``python -m stvae ...`` is the ``stvae`` command (also for ``torchrun -m stvae``)."""

import sys

from stvae.cli import main

if __name__ == "__main__":  # not when a spawned data worker imports it
    sys.exit(main())
