"""The service offers the profiles the hub's spawners offer (``gpuhub.service.spawn_profiles``).

A DockerSpawner configuration without gpuhub profiles: the spawner derives profiles from
``image``/``allowed_images`` and ``default_gpu_shapes``, and the service, which loads the
same configuration file, derives the same ones (one rule: ``default_profiles``), so that
``GET /me/options`` lists them and jobs may run them.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from gpuhub.profiles import ProfileConfigError, shape_of
from gpuhub.service.app import GpuhubService
from gpuhub.service.spawn_profiles import configured, hub_profiles, hub_spawner_class
from gpuhub.spawners.docker import GPUDockerSpawner
from gpuhub.spawners.docker_settings import default_profiles
from gpuhub.spawners.local import GPULocalProcessSpawner
from jupyterhub.objects import Hub
from jupyterhub.spawner import LocalProcessSpawner
from traitlets.config import Config

G = 1024**3
PYTORCH, BASE = "gpuhub/pytorch:latest", "gpuhub/base:latest"
SHAPES = [{"kind": "gpu", "count": 1}, {"kind": "shared"}]

log = logging.getLogger("test")


def docker_config(**settings) -> Config:
    """A hub configuration of the Docker spawner that sets no gpuhub profiles."""
    c = Config()
    c.JupyterHub.spawner_class = "gpu-docker"
    for key, value in settings.items():
        section, trait = key.split("__")
        c[section][trait] = value
    return c


def spawner_profiles(config: Config) -> list:
    """What a GPUDockerSpawner made with ``config`` derives (``derived_profiles``)."""
    user = SimpleNamespace(name="alice", groups=[], url="/user/alice/", escaped_name="alice")
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    return GPUDockerSpawner(user=user, hub=hub, config=config).derived_profiles()


def test_default_profiles_one_per_allowed_image_and_shape():
    profiles = default_profiles(BASE, {"PyTorch": PYTORCH, "Base": BASE}, SHAPES)
    assert [(p.name, p.image, p.default) for p in profiles] == [
        ("pytorch-gpu1", PYTORCH, False), ("pytorch-shared", PYTORCH, False),
        ("base-gpu1", BASE, True), ("base-shared", BASE, False),
    ]  # fmt: skip
    assert profiles[1].shape == shape_of({"kind": "shared"})
    # a list as configured (DockerSpawner makes it a dict of each image to itself)
    assert [p.name for p in default_profiles("", ["a/x:1", "b/y"], SHAPES[:1])] == ["x-1", "y"]
    # empty or "*": the one image; no image either: none
    assert [p.image for p in default_profiles(BASE, "*", SHAPES[:1])] == [BASE]
    assert [p.image for p in default_profiles(BASE, {}, SHAPES[:1])] == [BASE]
    assert default_profiles("", {}, SHAPES) == []
    with pytest.raises(ProfileConfigError, match=r"default_gpu_shapes #2 \{'kind': 'tpu'\}"):
        default_profiles(BASE, {}, [{"kind": "gpu"}, {"kind": "tpu"}])


def test_the_service_derives_what_the_spawner_derives():
    config = docker_config(
        DockerSpawner__image=BASE,
        DockerSpawner__allowed_images={"PyTorch": PYTORCH, "Base": BASE},
        Spawner__mem_limit="4G",
        DockerSpawner__cpu_limit=2,
        GPUDockerSpawner__default_gpu_shapes=SHAPES,
    )
    profiles = hub_profiles(config, log)
    assert [p.name for p in profiles] == ["pytorch-gpu1", "pytorch-shared", "base-gpu1",
                                          "base-shared"]  # fmt: skip
    assert all((p.cpu_limit, p.mem_limit) == (2, 4 * G) for p in profiles)  # as the spawner's
    derived = spawner_profiles(config)
    assert [p.model_copy(update={"cpu_limit": 2, "mem_limit": 4 * G}) for p in derived] == (
        profiles
    )


def test_with_nothing_configured_dockerspawners_default_image_is_the_profile():
    profiles = hub_profiles(docker_config(), log)
    assert [p.image for p in profiles] == [GPUDockerSpawner().image]
    assert profiles == spawner_profiles(docker_config())


def test_configured_profiles_get_dockerspawners_image_and_limits():
    config = docker_config(
        GPUSpawnerMixin__profiles=[
            {"name": "a", "shape": {"kind": "gpu", "count": 1}},
            {"name": "b", "shape": {"kind": "shared"}, "image": PYTORCH, "mem_limit": "1G"},
        ],
        DockerSpawner__image=BASE,
        DockerSpawner__mem_limit="8G",
    )
    assert [(p.name, p.image, p.mem_limit) for p in hub_profiles(config, log)] == [
        ("a", BASE, 8 * G), ("b", PYTORCH, 1 * G),
    ]  # fmt: skip


def test_settings_of_the_spawner_class_and_its_bases_apply_most_derived_last():
    config = docker_config(
        Spawner__mem_limit="1G", DockerSpawner__mem_limit="2G", DockerSpawner__image=BASE
    )
    assert configured(config, GPUDockerSpawner, "mem_limit") == "2G"
    assert configured(config, GPUDockerSpawner, "image") == BASE
    assert configured(Config(), GPUDockerSpawner, "default_gpu_shapes") == [SHAPES[0]]
    assert hub_spawner_class(config) is GPUDockerSpawner
    assert hub_spawner_class(Config()) is LocalProcessSpawner  # JupyterHub's default
    c = Config()
    c.JupyterHub.spawner_class = "gpuhub.spawners.local.GPULocalProcessSpawner"
    assert hub_spawner_class(c) is GPULocalProcessSpawner


def test_the_local_spawner_and_other_spawners_keep_the_profiles_as_configured():
    items = [{"name": "a", "shape": {"kind": "gpu", "count": 1}}]
    c = Config()
    c.JupyterHub.spawner_class = "gpu-local"
    c.GPULocalProcessSpawner.profiles = items  # its own section counts too
    assert hub_profiles(c, log) == items
    c = Config()
    c.GPUSpawnerMixin.profiles = items
    assert hub_profiles(c, log) == items  # JupyterHub's LocalProcessSpawner: as before


def test_what_depends_on_the_user_is_said_and_left_out(caplog):
    with caplog.at_level(logging.WARNING):
        per_user_images = docker_config(DockerSpawner__allowed_images=lambda spawner: [BASE])
        assert hub_profiles(per_user_images, log) == []
        assert hub_profiles(docker_config(GPUSpawnerMixin__profiles=lambda s: []), log) == []
        limits = docker_config(DockerSpawner__image=BASE, DockerSpawner__mem_limit=lambda s: "1G")
        assert [p.mem_limit for p in hub_profiles(limits, log)] == [None]
    assert "c.DockerSpawner.allowed_images: a callable (per user)" in caplog.text
    assert "c.GPUSpawnerMixin.profiles is a callable (per user)" in caplog.text
    assert "c.DockerSpawner.mem_limit: a callable (per user)" in caplog.text


def test_what_the_spawner_refuses_is_logged_and_offers_nothing(caplog):
    outside = docker_config(DockerSpawner__image=BASE, DockerSpawner__allowed_images=[PYTORCH],
                            GPUSpawnerMixin__profiles=[{"name": "a", "shape": SHAPES[0]}])  # fmt: skip
    with caplog.at_level(logging.ERROR):
        assert hub_profiles(outside, log) == []
        assert hub_profiles(docker_config(GPUDockerSpawner__default_gpu_shapes=[{}]), log) == []
    assert "profile a runs image gpuhub/base:latest, which c.DockerSpawner.allowed_images" in (
        caplog.text
    )
    with pytest.raises(ValueError, match="c.GPUSpawnerMixin.profiles: "):
        hub_profiles(docker_config(GPUSpawnerMixin__profiles=[{"name": "a"}]), log)


def test_the_service_started_on_a_dockerspawner_config_offers_its_profiles(tmp_path):
    """The real path: the service loads the hub's configuration file, and its job manager
    (which ``GET /me/options`` and job requests read) has the derived profiles."""
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        "c.JupyterHub.spawner_class = 'gpu-docker'\n"
        f"c.DockerSpawner.image = {BASE!r}\n"
        f"c.DockerSpawner.allowed_images = {{'PyTorch': {PYTORCH!r}, 'Base': {BASE!r}}}\n"
        f"c.GPUDockerSpawner.default_gpu_shapes = {SHAPES!r}\n"
    )
    app = GpuhubService()
    app.initialize(
        [
            f"--config={config}",
            "--GpuhubService.inventory_class=simulated",
            f"--GpuhubService.db_url=sqlite:///{tmp_path}/x.sqlite",
        ]
    )
    try:
        assert [(p.name, p.default) for p in app.jobs.profiles] == [
            ("pytorch-gpu1", False), ("pytorch-shared", False),
            ("base-gpu1", True), ("base-shared", False),
        ]  # fmt: skip
    finally:
        app.scheduler.engine.dispose()
