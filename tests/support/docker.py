"""The Docker engine for the tests that use one: gpuhub's images built for this
checkout, a client that fails with the way to get an engine, and the removal of what a
module left on it.

The images are built here, by the first Docker test of a session, not by
``scripts/setup``: a run without Docker tests (the unit tier, the inner loop) never waits
for them, and a run with them never tests an image older than the checkout. When nothing
changed the build takes a second or two (Docker's cache). Every test that talks to the
engine runs on one xdist worker (``worker_group`` in tests/conftest.py), so one build
serves them all.

``GPUHUB_TEST_NO_DOCKER=1`` skips those tests (``skip_without_docker``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

import docker
import pytest

from tests.support.paths import REPO

NO_DOCKER = os.environ.get("GPUHUB_TEST_NO_DOCKER") == "1"
HINT = (
    "Run `scripts/setup test` (it starts dockerd and makes the Debian base image) or set "
    "GPUHUB_TEST_NO_DOCKER=1 to leave the Docker tests out."
)


#: The local Debian image (made by ``scripts/images base``) gpuhub's images are built FROM.
DEBIAN_BASE = "gpuhub/debian-base:bookworm"
_built: list[bool] = []


def skip_without_docker() -> None:
    """Skip the calling test or fixture when ``GPUHUB_TEST_NO_DOCKER=1``."""
    if NO_DOCKER:
        pytest.skip("GPUHUB_TEST_NO_DOCKER=1: the Docker tests are off")


def docker_works() -> str | None:
    """None when a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "there is no docker command"
    r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else f"`docker info` failed: {r.stderr.strip()[:500]}"


def ensure_images() -> None:
    """Build gpuhub's four images FROM the local Debian base, once per session (Docker's
    cache makes it quick when nothing changed); fail with what to do without an engine."""
    skip_without_docker()
    if _built:
        return
    why = docker_works()
    if why:
        pytest.fail(f"These tests need a Docker engine, and {why}. {HINT}", pytrace=False)
    for cmd in (["base"], ["build", "--base", DEBIAN_BASE]):
        r = subprocess.run(
            [str(REPO / "scripts" / "images"), *cmd],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        if r.returncode:
            pytest.fail(f"scripts/images {' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
    _built.append(True)


def engine_client(*images: str, timeout: int = 120, **kw: Any) -> docker.APIClient:
    """A client of the engine (``kw``: ``base_url`` and the like), gpuhub's images built
    first, failing the test with what to do when no engine answers or one of ``images``
    is missing."""
    ensure_images()
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


def read_home(user: str, path: str) -> str:
    """A file of ``user``'s home volume (``gpuhub-home-<user>``), read by a throwaway
    container of ``gpuhub/base`` without a network."""
    r = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"gpuhub-home-{user}:/h:ro",
         "gpuhub/base:latest", "cat", f"/h/{path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout
