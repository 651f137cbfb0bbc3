"""The Docker engine for the tests that use one: a client that fails with the way to get
an engine and gpuhub's images, and the removal of what a module left on it.

``GPUHUB_TEST_NO_DOCKER=1`` skips those tests (``skip_without_docker``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import docker
import pytest

NO_DOCKER = os.environ.get("GPUHUB_TEST_NO_DOCKER") == "1"
HINT = (
    "Run `scripts/setup test` (it starts dockerd and builds gpuhub's images) or set "
    "GPUHUB_TEST_NO_DOCKER=1 to leave the Docker tests out."
)


def skip_without_docker() -> None:
    """Skip the calling test or fixture when ``GPUHUB_TEST_NO_DOCKER=1``."""
    if NO_DOCKER:
        pytest.skip("GPUHUB_TEST_NO_DOCKER=1: the Docker tests are off")


def engine_client(*images: str, timeout: int = 120, **kw: Any) -> docker.APIClient:
    """A client of the engine (``kw``: ``base_url`` and the like), failing the test with
    what to do when no engine answers or one of ``images`` is missing."""
    skip_without_docker()
    try:
        client = docker.APIClient(version="auto", timeout=timeout, **kw)  # asks its version
    except docker.errors.DockerException as e:
        pytest.fail(
            f"These tests need a Docker engine, and none answers ({e}). {HINT}", pytrace=False
        )
    for image in images:
        try:
            client.inspect_image(image)
        except docker.errors.ImageNotFound:
            client.close()
            pytest.fail(f"The image {image} is missing. {HINT}", pytrace=False)
    return client


def remove_leftovers(
    client: docker.APIClient,
    *,
    filters: Mapping[str, str],
    keep: Callable[[dict], bool] = lambda c: True,
    volumes: str | None = None,
) -> None:
    """Remove the containers ``filters`` finds (those ``keep`` says are the module's, of
    them), one by one, and the volumes whose names start with ``volumes``."""
    for c in client.containers(all=True, filters=dict(filters)):
        if keep(c):
            try:
                client.remove_container(c["Id"], force=True)
            except docker.errors.NotFound:
                pass
    if volumes:
        for v in client.volumes(filters={"name": volumes}).get("Volumes") or ():
            if v["Name"].startswith(volumes):
                client.remove_volume(v["Name"], force=True)
