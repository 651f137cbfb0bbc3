"""DockerSpawner's settings in gpuhub's profile model, and what the spawn form says.

Plain functions (:mod:`gpuhub.spawners.docker_settings`) and spawners configured the
traitlets way, without Docker or a hub: which settings become profile defaults and
bounds, which are refused or warned about (by name), and how the container spec and
``check_allowed`` follow. The engine-level check is in ``test_spawner_docker.py``.
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
from dockerspawner import DockerSpawner
from gpuhub.profiles import ProfileConfigError, load_profiles, shape_of, validate_user_options
from gpuhub.spawners.docker import GPUDockerSpawner
from gpuhub.spawners.docker_settings import (
    DockerSettings,
    allowed_image_set,
    apply_settings,
    derive_profiles,
    findings,
)
from gpuhub.spawners.errors import GPUSpawnError
from gpuhub.spawners.local import GPULocalProcessSpawner
from jupyterhub.objects import Hub
from tornado import web
from traitlets import TraitError
from traitlets.config import Config

from tests.support.paths import DOCS

G, M = 1024**3, 1024**2
IMAGE = "gpuhub/pytorch:latest"
DOCS = DOCS / "reference" / "dockerspawner.md"

ITEMS = [
    {"name": "big", "image": IMAGE, "shape": {"kind": "gpu", "count": 1},
     "cpu_limit": 8, "mem_limit": "64G", "shm_size": "8G", "default": True},
    {"name": "plain", "shape": {"kind": "gpu", "count": 1}},
    {"name": "staff", "image": "gpuhub/staff:1", "shape": {"kind": "shared"}, "groups": ["staff"]},
]  # fmt: skip
PROFILES = load_profiles(ITEMS)
LEASE = {"id": 9, "status": "active", "node": "n1",
         "devices": [{"uuid": "GPU-sim-n1-0", "index": 0, "model": "H100", "simulated": True}]}  # fmt: skip


def settings(**kw) -> DockerSettings:
    return DockerSettings(**{"image": "gpuhub/base:latest", **kw})


# -- profiles with DockerSpawner's image, limits and allowed_images -------------------------


def test_image_and_limits_are_defaults_for_profiles_that_set_none():
    big, plain, staff = apply_settings(PROFILES, settings(cpu_limit=16, mem_limit=64 * G))
    assert (big.image, big.cpu_limit, big.mem_limit) == (IMAGE, 8, 64 * G)  # its own
    assert (plain.image, plain.cpu_limit, plain.mem_limit) == ("gpuhub/base:latest", 16, 64 * G)
    assert plain.shm_size is None and staff.groups == ("staff",)
    # nothing configured: the profiles as they are (an image is still needed)
    assert apply_settings(PROFILES, settings())[1].mem_limit is None
    assert apply_settings(PROFILES[:1], DockerSettings()) == PROFILES[:1]


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"image": None}, "profile plain names no image and c.DockerSpawner.image is not set; "
                          "give the profile an image or set c.DockerSpawner.image"),
        ({"mem_limit": 16 * G}, "profile big sets mem_limit 64 GB, above c.DockerSpawner.mem_limit "
                                "16 GB, which bounds every profile"),
        ({"cpu_limit": 2.5}, "profile big sets cpu_limit 8 CPUs, above c.DockerSpawner.cpu_limit "
                             "2.5 CPUs"),
        ({"allowed_images": frozenset({IMAGE, "gpuhub/staff:1"})},
         "profile plain runs image gpuhub/base:latest, which c.DockerSpawner.allowed_images does "
         "not allow (gpuhub/pytorch:latest, gpuhub/staff:1)"),
        ({"allowed_images": frozenset({IMAGE, "gpuhub/base:latest"})},
         "profile staff runs image gpuhub/staff:1, which c.DockerSpawner.allowed_images"),
    ],
)  # fmt: skip
def test_profiles_outside_the_settings_are_refused_by_name(kw, message):
    with pytest.raises(ProfileConfigError) as e:
        apply_settings(PROFILES, settings(**kw))
    assert message in str(e.value)


@pytest.mark.parametrize(
    "value, images",
    [
        ({}, None), (None, None), ("*", None), ([], None),
        ({"pytorch": IMAGE, "base": "gpuhub/base"}, {IMAGE, "gpuhub/base"}),
        ([IMAGE], {IMAGE}),
    ],
)  # fmt: skip
def test_allowed_images_as_a_set(value, images):
    assert allowed_image_set(value) == (None if images is None else frozenset(images))


# -- settings that cannot apply ------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, setting, words, refuse",
    [
        ({"remove": False}, "c.DockerSpawner.remove",
         "keeps a stopped server's container (its logs and files) only until the server "
         "starts again", False),
        ({"extra_host_config": {"device_requests": [{"Count": -1}]}},
         "c.DockerSpawner.extra_host_config", "GPUs come from the lease only", True),
        ({"extra_host_config": {"privileged": True}},
         "c.DockerSpawner.extra_host_config", "privileged cannot be set", True),
        ({"extra_create_kwargs": {"user": "root"}},
         "c.DockerSpawner.extra_create_kwargs", "user cannot be set", True),
        ({"extra_host_config": {"mem_limit": "2g"}}, "c.DockerSpawner.extra_host_config",
         "sets mem_limit, which does not apply as given: memory comes from the profile's "
         "mem_limit or c.DockerSpawner.mem_limit", False),
        ({"extra_host_config": {"cpu_period": 50000}}, "c.DockerSpawner.extra_host_config",
         "CPUs come from the profile's cpu_limit or c.DockerSpawner.cpu_limit", False),
        ({"extra_create_kwargs": {"working_dir": "/tmp"}}, "c.DockerSpawner.extra_create_kwargs",
         "the working directory is GPUDockerSpawner.home_dir", False),
        ({"custom_options_form": True}, "c.Spawner.options_form",
         "replaces gpuhub's profile form: users choose profiles", False),
        ({"mem_guarantee": G}, "c.Spawner.mem_guarantee", "is not applied to containers", False),
        ({"environment": {"CUDA_VISIBLE_DEVICES": "0"}}, "c.Spawner.environment",
         "sets CUDA_VISIBLE_DEVICES, which every server gets from its GPU lease", False),
        ({"volume_targets": ("/home/jovyan/",)}, "c.DockerSpawner.volumes",
         "where the home volume gpuhub-home-<user> is mounted", True),
    ],
)  # fmt: skip
def test_settings_that_cannot_apply_are_named_with_their_replacement(kw, setting, words, refuse):
    found = findings(settings(**kw))
    assert [(f.setting, f.refuse) for f in found] == [(setting, refuse)], found
    assert words in found[0].message


def test_plain_settings_have_no_findings():
    assert findings(settings(cpu_limit=2, mem_limit=G, allowed_images=frozenset({IMAGE}))) == []


# -- the spawner, configured the traitlets way ----------------------------------------------


def spawner(cls=GPUDockerSpawner, name: str = "alice", groups=(), **config) -> GPUDockerSpawner:
    c = Config()
    c.GPUSpawnerMixin.profiles = ITEMS
    for key, value in config.items():
        section, trait = key.split("__")
        c[section][trait] = value
    user = SimpleNamespace(
        name=name, groups=[SimpleNamespace(name=g) for g in groups], url=f"/user/{name}/",
        escaped_name=name,
    )  # fmt: skip
    return cls(user=user, hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"), config=c)


@pytest.fixture(autouse=True)
def fresh_reports(monkeypatch):
    """Each test sees the start-up findings logged again."""
    monkeypatch.setattr(GPUDockerSpawner, "_reported", set())


async def test_dockerspawner_settings_reach_the_profiles_and_the_container(caplog):
    config = {
        "DockerSpawner__image": "gpuhub/base:latest",
        "DockerSpawner__mem_limit": "2G",
        "Spawner__cpu_limit": 8.0,  # JupyterHub's Spawner settings are the same traits
        "DockerSpawner__allowed_images": [IMAGE, "gpuhub/base:latest", "gpuhub/staff:1"],
    }
    # profile big sets 64G, above the 2G bound: said when the spawner is made, not at a spawn
    with pytest.raises(TraitError) as e:
        spawner(**config)
    assert "profile big sets mem_limit 64 GB, above c.DockerSpawner.mem_limit 2 GB" in str(e.value)
    assert "GPU servers cannot start until then" in caplog.text

    s = spawner(DockerSpawner__image="gpuhub/base:latest", DockerSpawner__mem_limit="64G",
                DockerSpawner__cpu_limit=8)  # fmt: skip
    by_name = {p.name: p for p in await s.get_profiles()}
    assert by_name["plain"].image == "gpuhub/base:latest" and by_name["plain"].mem_limit == 64 * G
    selection = validate_user_options({"profile": "plain"}, list(by_name.values()), [])
    await s.prepare_server(selection, LEASE)
    s._selection, s.lease = selection, LEASE
    built = s.container_spec(["jupyterhub-singleuser"])
    assert built["image"] == s.image == "gpuhub/base:latest"
    assert built["host_config"]["mem_limit"] == 64 * G
    assert built["host_config"]["nano_cpus"] == 8 * 10**9
    # the configured image stays the default of the next spawn
    assert s.docker_settings().image == "gpuhub/base:latest"


async def test_callable_limits_are_per_user():
    def per_user(spawner) -> str:
        return {"alice": "4G"}.get(spawner.user.name, "1G")

    assert spawner(name="alice", DockerSpawner__mem_limit=per_user).mem_limit == 4 * G
    bob = spawner(name="bob", DockerSpawner__mem_limit=per_user, DockerSpawner__image=IMAGE)
    assert bob.docker_settings().mem_limit == G
    with pytest.raises(GPUSpawnError, match="profile big sets mem_limit 64 GB, above"):
        await bob.get_profiles()


async def test_a_profile_without_an_image_runs_dockerspawners_default_image():
    s = spawner()
    assert s.image == DockerSpawner().image  # quay.io/jupyterhub/singleuser:<version>
    assert {p.name: p.image for p in await s.get_profiles()}["plain"] == s.image


async def test_refused_settings_are_raised_when_the_spawner_is_made(caplog):
    """A setting that makes every spawn impossible is raised (and logged) when JupyterHub
    makes the spawner, at its start for running servers; warnings are logged once."""
    volumes = {"data-{username}": "/home/jovyan"}
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            with pytest.raises(TraitError) as e:
                spawner(DockerSpawner__image=IMAGE, DockerSpawner__volumes=volumes)
        spawner(DockerSpawner__image=IMAGE, Spawner__mem_guarantee="1G")
        spawner(DockerSpawner__image=IMAGE, Spawner__mem_guarantee="1G")  # logged once
    assert str(e.value).startswith("GPUDockerSpawner cannot start GPU servers: ")
    assert "c.DockerSpawner.volumes mounts a volume on /home/jovyan" in str(e.value)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].endswith("GPU servers cannot start until then.")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("c.Spawner.mem_guarantee is not applied" in m for m in warnings) == 1


async def test_per_user_settings_are_checked_at_each_spawn_instead():
    def per_user(spawner) -> str:
        return "2G"

    s = spawner(DockerSpawner__image=IMAGE, DockerSpawner__mem_limit=per_user)  # no raise
    with pytest.raises(GPUSpawnError) as e:
        await s.get_profiles()
    assert e.value.status_code == 500 and "profile big sets mem_limit 64 GB" in e.value.message


async def test_check_allowed_outside_a_spawn_works_as_dockerspawners():
    s = spawner(DockerSpawner__image="gpuhub/base:latest",
                DockerSpawner__allowed_images={"pytorch": IMAGE, "base": "gpuhub/base:latest",
                                               "staff": "gpuhub/staff:1"})  # fmt: skip
    assert await s.check_allowed(IMAGE) == IMAGE
    assert await s.check_allowed("pytorch") == IMAGE  # a name resolves to its image
    assert await s.check_allowed("gpuhub/base:latest") == "gpuhub/base:latest"
    with pytest.raises(GPUSpawnError) as e:  # profile staff is not open to alice
        await s.check_allowed("gpuhub/staff:1")
    assert e.value.status_code == 400
    assert "the images are gpuhub/base:latest, gpuhub/pytorch:latest" in e.value.message
    staff = spawner(groups=["staff"], DockerSpawner__image=IMAGE)
    assert await staff.check_allowed("gpuhub/staff:1") == "gpuhub/staff:1"
    # while a server starts or runs, only its profile's image; after it stops, all again
    selection = validate_user_options({"profile": "big"}, await s.get_profiles(), [])
    s._selection = selection
    with pytest.raises(
        GPUSpawnError, match="is not offered for profile big, which runs gpuhub/pytorch:latest"
    ):
        await s.check_allowed("gpuhub/base:latest")
    s._selection = None
    assert await s.check_allowed("base") == "gpuhub/base:latest"


# -- a DockerSpawner configuration as it is: no gpuhub profiles ------------------------------

BASE = "gpuhub/base:latest"
NAMED = {"PyTorch": IMAGE, "Base": BASE}  # DockerSpawner's allowed_images with names


def migrated(**config) -> GPUDockerSpawner:
    """A spawner of a DockerSpawner configuration that sets no gpuhub profiles."""
    return spawner(GPUSpawnerMixin__profiles=[], **config)


@pytest.mark.parametrize(
    "choices, shapes, names",
    [
        ([(IMAGE, IMAGE)], [{"kind": "gpu", "count": 1}], ["pytorch"]),
        ([("a", "registry:5000/Team/My_Image:V1.2"), ("b", "quay.io/x/scipy@sha256:" + "a" * 64)],
         [{"kind": "gpu", "count": 1}], ["my_image-v1.2", "scipy"]),
        ([("a", "a/nb:latest"), ("b", "b/nb"), ("c", "a/nb:latest")],
         [{"kind": "gpu", "count": 1}], ["nb", "nb-2"]),  # one image under two names: one
        ([("x", IMAGE)], [{"kind": "gpu", "count": 2, "model": "H100"},
                          {"kind": "mig", "profile": "1g.5gb"}, {"kind": "shared"}],
         ["pytorch-gpu2-h100", "pytorch-mig-1g.5gb", "pytorch-shared"]),
        ([("x", "///")], [{"kind": "gpu", "count": 1}], ["image"]),
    ],
)  # fmt: skip
def test_derived_profiles_have_valid_names_made_from_their_images(choices, shapes, names):
    profiles = derive_profiles(choices, [shape_of(x) for x in shapes])
    assert [p.name for p in profiles] == names
    assert load_profiles(profiles) == profiles  # valid, unique, one default
    assert [p.default for p in profiles] == [True] + [False] * (len(names) - 1)


async def test_without_profiles_each_allowed_image_becomes_a_profile(caplog):
    with caplog.at_level(logging.INFO):
        s = migrated(DockerSpawner__image=BASE, DockerSpawner__allowed_images=NAMED,
                     DockerSpawner__cpu_limit=2, DockerSpawner__mem_limit="4G")  # fmt: skip
    profiles = await s.get_profiles()
    assert [(p.name, p.display_name, p.image) for p in profiles] == [
        ("pytorch", "PyTorch", IMAGE), ("base", "Base", BASE)]  # fmt: skip
    assert all((p.cpu_limit, p.mem_limit) == (2, 4 * G) for p in profiles)  # the image's limits
    assert all(p.shape == shape_of({"kind": "gpu", "count": 1}) for p in profiles)
    assert [p.name for p in profiles if p.default] == ["base"]  # c.DockerSpawner.image
    assert (await s.selection_from({})).profile.name == "base"
    # said when the hub makes the spawner
    assert "profiles derived from DockerSpawner's settings: pytorch (gpuhub/pytorch:latest" in (
        caplog.text
    )
    html = await s.render_options_form()  # the service is not configured: no live availability
    assert re.findall(r'name="profile"[^>]*value="([^"]+)"', html) == ["pytorch", "base"]
    # the one image, and the shapes an admin chooses
    one = migrated(DockerSpawner__image=BASE, GPUDockerSpawner__default_gpu_shapes=[
        {"kind": "gpu", "count": 2}, {"kind": "mig", "profile": "1g.5gb"}])  # fmt: skip
    assert [(p.name, p.image, p.display_name) for p in await one.get_profiles()] == [
        ("base-gpu2", BASE, f"{BASE} · 2 whole GPUs"),
        ("base-mig-1g.5gb", BASE, f"{BASE} · a MIG 1g.5gb slice"),
    ]  # fmt: skip


def test_no_image_and_no_profiles_is_raised_when_the_spawner_is_made():
    with pytest.raises(
        TraitError, match="no GPU profiles are configured and c.DockerSpawner.image"
    ):
        migrated(DockerSpawner__image="")


def test_default_gpu_shapes_are_checked_when_configured():
    with pytest.raises(TraitError, match=r"default_gpu_shapes #2 .* is not a GPU shape"):
        migrated(GPUDockerSpawner__default_gpu_shapes=[{"kind": "gpu"}, {"kind": "tpu"}])
    with pytest.raises(TraitError):
        migrated(GPUDockerSpawner__default_gpu_shapes=[])


async def started_as_dockerspawner_starts(s: GPUDockerSpawner, user_options: dict) -> str:
    """The image ``s`` would run for ``user_options``: JupyterHub's apply_user_options step,
    the mixin's start up to the lease, then DockerSpawner's ``start`` choice of image."""
    await s.apply_user_options(s, user_options)
    s.user_options = user_options
    selection = await s.selection_from(s.user_options)
    s._selection = selection
    await s.prepare_server(selection, LEASE)
    if s.user_options.get("image"):  # as DockerSpawner.start
        s.image = await s.check_allowed(s.user_options["image"])
    s.lease = LEASE
    assert s.container_spec(None)["image"] == s.image
    return s.image


@pytest.mark.parametrize("chosen", [BASE, "Base"])  # an image, or its allowed_images name
async def test_user_options_image_starts_an_allowed_image(chosen):
    s = migrated(DockerSpawner__image=IMAGE, DockerSpawner__allowed_images=NAMED)
    assert await started_as_dockerspawner_starts(s, {"image": chosen}) == BASE
    assert s._selection.profile.name == "base"
    # DockerSpawner's own form field
    s = migrated(DockerSpawner__image=IMAGE, DockerSpawner__allowed_images=NAMED)
    assert (
        await started_as_dockerspawner_starts(s, s.options_from_form({"image": [chosen]})) == BASE
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image": "alpine"}, "image 'alpine' is not offered; the images are gpuhub/base:latest, "
                              "gpuhub/pytorch:latest"),
        ({"profile": "pytorch", "image": BASE}, "image 'gpuhub/base:latest' is not the image of "
                                                "profile pytorch (gpuhub/pytorch:latest)"),
        ({"image": ["x"]}, "image must be a non-empty string"),
    ],
)  # fmt: skip
async def test_user_options_image_not_allowed_is_a_400_naming_it(options, message):
    s = migrated(DockerSpawner__image=IMAGE, DockerSpawner__allowed_images=NAMED)
    with pytest.raises(GPUSpawnError) as e:
        await s.apply_user_options(s, options)
    assert isinstance(e.value, web.HTTPError) and e.value.status_code == 400
    assert message in e.value.message
    with pytest.raises(GPUSpawnError) as e:  # DockerSpawner's check, outside a spawn
        await s.check_allowed("alpine")
    assert e.value.status_code == 400
    assert "the images are gpuhub/base:latest, gpuhub/pytorch:latest" in e.value.message


async def test_allowed_images_star_runs_the_image_a_user_names():
    s = migrated(DockerSpawner__image=BASE, DockerSpawner__allowed_images="*",
                 DockerSpawner__mem_limit="4G")  # fmt: skip
    assert [p.name for p in await s.get_profiles()] == ["base"]
    assert await started_as_dockerspawner_starts(s, {"image": IMAGE}) == IMAGE
    assert (s._selection.profile.name, s._selection.profile.mem_limit) == ("pytorch", 4 * G)
    s = migrated(DockerSpawner__image=BASE, DockerSpawner__allowed_images="*")
    assert (await s.selection_from({"image": "x/base"})).profile.name == "base-2"  # base is taken
    assert await migrated(DockerSpawner__allowed_images="*").check_allowed("any/image:1") == (
        "any/image:1"
    )
    with pytest.raises(GPUSpawnError) as e:
        await s.apply_user_options(s, {"image": "not an image"})
    assert e.value.status_code == 400 and "is not an image reference" in e.value.message


async def test_image_is_dockerspawners_from_construction():
    """``self.image`` is c.DockerSpawner.image (or DockerSpawner's default) before any
    start, as DockerSpawner's own methods expect, and again for the next start."""
    assert migrated().image == DockerSpawner().image
    s = migrated(DockerSpawner__image=BASE, DockerSpawner__allowed_images=NAMED,
                 DockerSpawner__name_template="{prefix}-{imagename}-{username}")  # fmt: skip
    assert s.image == BASE and s.container_name == "gpuhub-gpuhub-base-latest-alice"
    assert s.get_env()["JUPYTER_IMAGE_SPEC"] == BASE
    # (the command and the pull read that image on the real engine: tests/docker,
    # test_the_command_and_the_pull_come_from_the_configured_image)
    # a start of another image, then a stop: the next start's default is still BASE
    assert await started_as_dockerspawner_starts(s, {"image": "PyTorch"}) == IMAGE
    s._selection = None
    assert s.docker_settings().image == BASE
    assert (await s.selection_from({})).image == BASE


async def test_remove_false_keeps_a_container_until_the_next_start(caplog):
    with caplog.at_level(logging.WARNING):
        s = migrated(DockerSpawner__image=BASE, DockerSpawner__remove=False)  # no refusal
    assert "c.DockerSpawner.remove = False keeps a stopped server's container" in caplog.text
    assert s.will_resume is False  # JupyterHub gives each start a new token
    # remove = True is gpuhub's default; what each does to a kept container, on the real
    # engine: tests/docker, test_remove_false_keeps_the_stopped_container_until_the_next_start
    assert migrated(DockerSpawner__image=BASE).remove is True


def test_mounts_links_and_templates_reach_the_container():
    s = spawner(
        DockerSpawner__image=IMAGE,
        DockerSpawner__mounts=[{"source": "data-{username}", "target": "/data", "type": "volume"}],
        DockerSpawner__links={"db": "db"},
        DockerSpawner__extra_create_kwargs={"hostname": "nb-{username}"},
        DockerSpawner__extra_host_config={"ulimits": [{"Name": "nofile", "Soft": 4096, "Hard": 4096}]},
    )  # fmt: skip
    s._selection = validate_user_options({"profile": "big"}, PROFILES, [])
    s.lease = LEASE
    built = s.container_spec(["jupyterhub-singleuser"])
    assert built["hostname"] == "nb-alice"
    mounts = built["host_config"]["mounts"]
    assert [(m["Source"], m["Target"]) for m in mounts] == [("data-alice", "/data")]
    assert built["host_config"]["links"] == {"db": "db"}
    assert built["host_config"]["ulimits"][0]["Soft"] == 4096


def test_a_mount_of_the_docker_socket_is_refused():
    s = spawner(
        DockerSpawner__image=IMAGE,
        DockerSpawner__mounts=[{"source": "/var/run/docker.sock", "target": "/d", "type": "bind"}],
    )
    s._selection = validate_user_options({"profile": "big"}, PROFILES, [])
    s.lease = LEASE
    with pytest.raises(ValueError, match="container engine socket"):
        s.container_spec(None)


def test_every_dockerspawner_setting_is_in_the_mapping_table():
    """docs/reference/dockerspawner.md names each configurable trait of DockerSpawner and
    the Spawner traits whose meaning changes, so none is left out silently."""
    text = DOCS.read_text()
    table = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            table |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    names = set(DockerSpawner.class_own_traits(config=True))
    names |= {"mem_limit", "cpu_limit", "mem_guarantee", "cpu_guarantee", "options_form",
              "options_from_form", "environment", "cmd", "image"}  # fmt: skip
    assert sorted(names - table) == []


# -- what the spawn form says a server is -----------------------------------------------------


async def test_form_of_the_local_spawner_says_what_a_local_server_is():
    local = spawner(GPULocalProcessSpawner)
    html = await local.render_options_form()
    assert "processes on this machine" in html and "hub&#x27;s own Python environment" in html
    assert "no container image and no CPU or memory limits" in html
    assert IMAGE not in html and "CPUs" not in html and "memory ·" not in html
    assert "/dev/shm" not in html and "64 GB" not in html
    assert "<legend>GPUs</legend>" in html
    assert re.findall(r'name="profile"[^>]*value="([^"]+)"', html) == ["big", "plain", "staff"]
    assert "1 whole GPU" in html or "1 GPU" in html


async def test_form_of_the_docker_spawner_shows_images_and_limits():
    docker = spawner(DockerSpawner__image="gpuhub/base:latest", DockerSpawner__mem_limit="64G")
    html = await docker.render_options_form()
    assert f"<code>{IMAGE}</code>" in html and "<code>gpuhub/base:latest</code>" in html
    assert "8 CPUs · 64 GB memory · 8 GB /dev/shm" in html
    assert "processes on this machine" not in html
    assert "<legend>Environment and GPUs</legend>" in html
