"""``python -m stvae ...`` is the ``stvae`` command (also for ``torchrun -m stvae``)."""

import sys

from stvae.cli import main

sys.exit(main())
