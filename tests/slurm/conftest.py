"""The Slurm tier's cluster: started once for the session (``scripts/slurm``), and left
running if it ran before; each module gets ``cluster`` (its slurm.conf) with the tests'
leftover jobs cancelled and drained nodes resumed before and after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.slurm import local_cluster


@pytest.fixture(scope="session", autouse=True)
def slurm_session() -> Iterator[Path]:
    """The local cluster for the whole session (one start and one stop, not one per
    module); every test of the tier nests its own ``local_cluster`` inside it."""
    with local_cluster() as conf:
        yield conf


@pytest.fixture(scope="module")
def cluster(slurm_session: Path) -> Iterator[Path]:
    """The local cluster's slurm.conf, clean for this module."""
    with local_cluster() as conf:
        yield conf
