"""Fixtures of the hub tier: a hub on the default configuration for the CLI's modules."""

from __future__ import annotations

import pytest

from tests.support.cli import ADMIN
from tests.support.hub import Hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("cli")).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def admin_token(hub: Hub) -> str:
    return hub.add_user(ADMIN)
