"""``python -m gpuhub.cli``: the same as the ``gpuhub`` command."""

import sys

from .main import main

sys.exit(main())
