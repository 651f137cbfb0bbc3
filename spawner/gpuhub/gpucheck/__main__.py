"""``python -m gpuhub.gpucheck``: see :mod:`gpuhub.gpucheck.cli`."""

import sys

from .cli import main

sys.exit(main())
