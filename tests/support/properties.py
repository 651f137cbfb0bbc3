"""How many examples the property tests try: all of them in CI, a quarter on a developer's
machine, so that the unit tier stays a quick inner loop.

CI is told by the ``CI`` variable that CI systems set (``.ci/run`` sets it too);
``GPUHUB_TEST_EXAMPLES=full`` asks for every example anywhere. A failure found in CI
replays locally with the seed Hypothesis prints.
"""

from __future__ import annotations

import os

FULL = bool(os.environ.get("CI")) or os.environ.get("GPUHUB_TEST_EXAMPLES") == "full"


def examples(n: int) -> int:
    """``n`` in CI (or with ``GPUHUB_TEST_EXAMPLES=full``), else a quarter of it (at least 5)."""
    return n if FULL else max(5, n // 4)
