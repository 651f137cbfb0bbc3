"""The spawners' plain parts, without a hub or Docker: profiles, user_options validation,
the spawn form, container specs, the GPU environment and the saved state."""

from __future__ import annotations

import asyncio
import re
import socket
from types import SimpleNamespace

import docker
import pytest
from gpuhub.containers.engine import Engine
from gpuhub.containers.spec import (
    ContainerSpecError,
    build_env,
    device_requests,
    home_volume_name,
    is_root,
    orphan_containers,
)
from gpuhub.containers.turns import BootTurns
from gpuhub.ports import free_port
from gpuhub.profiles import (
    Profile,
    ProfileConfigError,
    UserOptionsError,
    load_profiles,
    options_from_form,
    parse_bytes,
    validate_user_options,
)
from gpuhub.spawners.container import build_container_spec
from gpuhub.spawners.docker import GPUDockerSpawner
from gpuhub.spawners.errors import GPUSpawnError
from gpuhub.spawners.form import (
    ProfileChoice,
    choice_from_preview,
    quota_groups,
    quota_lines,
    render_form,
)
from gpuhub.spawners.local import GPULocalProcessSpawner
from gpuhub.spawners.progress import ProgressLog, granted_message, queue_message
from gpuhub.spawners.state import STATE_VERSION, lease_id_from_state
from jupyterhub.objects import Hub
from traitlets import TraitError

G = 1024**3
IMAGE = "gpuhub/pytorch:latest"

PROFILES = load_profiles(
    [
        {"name": "gpu", "display_name": "Whole GPUs", "image": IMAGE, "default": True,
         "shape": {"kind": "gpu", "count": 1}, "gpu_counts": [1, 2, 4],
         "cpu_limit": 8, "mem_limit": "64G", "shm_size": "8G"},
        {"name": "h100x2", "image": IMAGE, "shape": {"kind": "gpu", "count": 2, "model": "H100"}},
        {"name": "mig", "image": "gpuhub/teaching:1", "shape": {"kind": "mig", "profile": "1g.5gb"},
         "groups": ["cs101"], "shm_size": "1G"},
        {"name": "shared", "image": "gpuhub/teaching:1", "shape": {"kind": "shared"},
         "groups": ["cs101", "cs102"]},
    ]
)  # fmt: skip
BY_NAME = {p.name: p for p in PROFILES}


def lease(devices, *, id=7, node="node-1"):
    return {"id": id, "status": "active", "node": node, "devices": devices}


REAL_GPUS = lease(
    [
        {"uuid": "GPU-1111", "index": 0, "model": "NVIDIA H100 80GB HBM3", "simulated": False},
        {"uuid": "GPU-2222", "index": 1, "model": "NVIDIA H100 80GB HBM3", "simulated": False},
    ]
)
REAL_MIG = lease(
    [{"uuid": "MIG-aaaa-bbbb", "index": 0, "model": "NVIDIA A100-SXM4-40GB", "simulated": False,
      "parent_uuid": "GPU-3333", "mig_index": 2, "profile": "1g.5gb"}]
)  # fmt: skip
SIMULATED = lease(
    [{"uuid": "GPU-sim-n1-0", "index": 0, "model": "H100-80GB", "simulated": True}], id=3
)


# -- profiles ------------------------------------------------------------------------


def test_profile_defaults_and_sizes():
    p = BY_NAME["gpu"]
    assert p.display_name == "Whole GPUs" and p.gpu_counts == (1, 2, 4)
    assert (p.mem_limit, p.shm_size, p.cpu_limit) == (64 * G, 8 * G, 8.0)
    h = BY_NAME["h100x2"]
    assert h.display_name == "h100x2" and h.gpu_counts == (2,) and h.default_count == 2
    assert h.groups is None and h.allows([]) and h.mem_limit is None
    m = BY_NAME["mig"]
    assert m.gpu_counts == () and m.default_count is None and m.shape_for(None) == m.shape
    assert m.unusable_reason(["other"]) == "only for members of group cs101"
    assert BY_NAME["shared"].unusable_reason([]) == "only for members of groups cs101, cs102"
    assert p.shape_for(4).count == 4 and p.shape_for(4).kind == "gpu"


@pytest.mark.parametrize(
    "value, size",
    [("16G", 16 * G), ("512m", 512 * 1024**2), ("1.5GiB", int(1.5 * G)), ("2T", 2 * 1024**4),
     (1024, 1024), ("100", 100), ("8 GB", 8 * G)],
)  # fmt: skip
def test_parse_bytes(value, size):
    assert parse_bytes(value) == size


@pytest.mark.parametrize("value", ["lots", "-1G", "0", 0, True, "1X"])
def test_parse_bytes_refuses(value):
    with pytest.raises(ValueError):
        parse_bytes(value)


GOOD = {"name": "p", "image": IMAGE, "shape": {"kind": "gpu"}}


@pytest.mark.parametrize(
    "items, message",
    [
        ({"name": "p"}, "profiles must be a list"),
        (["p"], "profile #1 must be a dict"),
        ([{**GOOD, "colour": "red"}], "profile 'p': colour is not a profile field"),
        ([{**GOOD, "name": "Big GPU"}], "profile 'Big GPU': name must be 1-64 lower-case"),
        ([{"image": IMAGE, "shape": {"kind": "gpu"}}], "profile #1: name is required"),
        ([{**GOOD, "image": "a b"}], "image must be an image reference without spaces"),
        ([{**GOOD, "shape": {"kind": "tpu"}}], "profile 'p': shape"),
        ([{**GOOD, "shape": {"kind": "gpu", "count": 0}}], "shape.count"),
        ([{**GOOD, "mem_limit": "lots"}], "mem_limit 'lots' is not a size"),
        ([{**GOOD, "cpu_limit": 0}], "cpu_limit"),
        ([{**GOOD, "gpu_counts": [0, 1]}], "gpu_counts must be whole numbers from 1 to 64"),
        ([{**GOOD, "shape": {"kind": "shared"}, "gpu_counts": [2]}],
         "gpu_counts is only for whole-GPU shapes; a shared GPU has no count"),
        ([GOOD, GOOD], "profile names must be unique; p repeats"),
        ([{**GOOD, "default": True}, {**GOOD, "name": "q", "default": True}],
         "at most one profile may be the default; p, q all say default"),
    ],
)  # fmt: skip
def test_profile_config_errors_name_the_profile(items, message):
    with pytest.raises(ProfileConfigError) as e:
        load_profiles(items)
    assert message in str(e.value)


async def test_profiles_are_loaded_for_each_spawn():
    s = GPULocalProcessSpawner(profiles=[GOOD])
    assert [p.name for p in await s.get_profiles()] == ["p"]

    async def per_user(spawner):
        return [{**GOOD, "name": "mine"}]

    s.profiles = per_user
    assert [p.name for p in await s.get_profiles()] == ["mine"]
    s.profiles = lambda spawner: [{**GOOD, "colour": "red"}]
    with pytest.raises(GPUSpawnError, match="the GPU profiles are misconfigured: profile 'p'"):
        await s.get_profiles()
    with pytest.raises(GPUSpawnError, match="no GPU profiles are configured"):
        await GPULocalProcessSpawner().get_profiles()


def test_profiles_trait_is_checked_when_configured():
    s = GPULocalProcessSpawner()
    s.profiles = [GOOD]
    with pytest.raises(TraitError, match="GPUSpawnerMixin.profiles: profile 'p': colour"):
        s.profiles = [{**GOOD, "colour": "red"}]
    s.profiles = lambda spawner: [GOOD]  # callables are checked when called


# -- user_options --------------------------------------------------------------------


def ok(options, groups=()):
    return validate_user_options(options, PROFILES, groups)


def refused(options, groups=()) -> str:
    with pytest.raises(UserOptionsError) as e:
        ok(options, groups)
    return e.value.message


def test_valid_options():
    s = ok({})
    assert (s.profile.name, s.gpus, s.group) == ("gpu", 1, None)
    assert ok(None).profile.name == "gpu"
    s = ok({"profile": "gpu", "gpus": 4})
    assert s.gpus == 4 and s.shape.count == 4 and s.image == IMAGE
    assert ok({"profile": "gpu", "gpus": "2"}).gpus == 2
    assert ok({"profile": "h100x2"}).shape.model == "H100"
    s = ok({"profile": "mig", "group": "cs101", "gpus": 1}, ["cs101"])
    assert (s.profile.name, s.gpus, s.group) == ("mig", None, "cs101")
    assert ok({"image": "gpuhub/teaching:1"}, ["cs102"]).profile.name == "shared"
    assert ok({"image": IMAGE, "profile": "h100x2"}).profile.name == "h100x2"
    body = ok({"profile": "gpu", "gpus": 2, "group": "x"}, ["x"]).lease_body(
        user="alice", label="server:alice/"
    )
    assert body == {
        "shape": {"kind": "gpu", "count": 2}, "group": "x", "profile": "gpu",
        "label": "server:alice/", "user": "alice",
    }  # fmt: skip


@pytest.mark.parametrize(
    "options, groups, message",
    [
        ([1], (), 'user_options must be a JSON object such as {"profile": "..."}'),
        ({"profile": "gpu", "cmd": "rm -rf"}, (), "unknown option 'cmd'; the options are profile, gpus, group, image"),
        ({"mem": 1, "cpu": 2}, (), "unknown options 'cpu', 'mem'"),
        ({"profile": "tpu"}, (), "there is no profile 'tpu'; the profiles open to you are gpu, h100x2"),
        ({"profile": 3}, (), "profile must be a non-empty string"),
        ({"profile": "mig"}, ("cs102",), "profile mig is only for members of group cs101; you are not in any of them"),
        ({"profile": "shared"}, (), "profile shared is only for members of groups cs101, cs102"),
        ({"image": "evil/miner:latest"}, (), "image 'evil/miner:latest' is not offered; the images are gpuhub/pytorch:latest"),
        ({"image": "gpuhub/teaching:1"}, (), "image 'gpuhub/teaching:1' belongs to no profile open to you"),
        ({"profile": "gpu", "image": "gpuhub/teaching:1"}, ("cs101",), "image 'gpuhub/teaching:1' is not the image of profile gpu (gpuhub/pytorch:latest)"),
        ({"profile": "gpu", "gpus": 8}, (), "profile gpu offers 1, 2, 4 GPUs, not 8"),
        ({"profile": "h100x2", "gpus": 1}, (), "profile h100x2 offers 2 GPUs, not 1"),
        ({"profile": "gpu", "gpus": "two"}, (), "gpus must be a whole number such as 1 or 2, not 'two'"),
        ({"profile": "gpu", "gpus": True}, (), "gpus must be a whole number"),
        ({"profile": "gpu", "gpus": 1.5}, (), "gpus must be a whole number"),
        ({"profile": "mig", "gpus": 2}, ("cs101",), "profile mig gives a MIG 1g.5gb slice; it has no GPU count to choose"),
        ({"group": "cs101"}, (), "you are not a member of group 'cs101', so it cannot be charged"),
        ({"profile": "mig", "group": "staff"}, ("cs101", "staff"), "profile mig is for group cs101; choose one of them to charge, not staff"),
    ],
)  # fmt: skip
def test_refused_options_say_why(options, groups, message):
    assert message in refused(options, groups)


def test_no_profile_open_to_the_user():
    only_cohort = [BY_NAME["mig"]]
    with pytest.raises(UserOptionsError, match="no GPU profile is open to you"):
        validate_user_options({}, only_cohort, ["other"])


def test_options_from_form():
    form = {
        "_xsrf": ["abc"],
        "profile": ["gpu"],
        "gpus-gpu": ["2"],
        "gpus-h100x2": ["2"],
        "group": [""],
    }
    assert options_from_form(form) == {"profile": "gpu", "gpus": 2}
    assert options_from_form({"profile": ["mig"], "group": ["cs101"]}) == {
        "profile": "mig",
        "group": "cs101",
    }
    crafted = options_from_form({"profile": ["gpu"], "privileged": ["1"]})
    assert crafted == {"profile": "gpu", "privileged": "1"}
    assert "unknown option 'privileged'" in refused(crafted)


# -- the form ------------------------------------------------------------------------


def test_form_lists_profiles_with_availability_and_reasons():
    choices = [
        choice_from_preview(BY_NAME["gpu"], {"outcome": "grant", "message": "3 of 8 H100 GPUs free",
                                             "simulated": True}, "L4-24GB or H100-80GB", "0.5–2 credits/h"),
        choice_from_preview(BY_NAME["h100x2"], {"outcome": "queue",
                                                "message": "2 requests ahead of you; 0 of 8 H100 GPUs free"},
                            "H100-80GB", "≈ 4 credits/h"),
        ProfileChoice(BY_NAME["mig"], reason=BY_NAME["mig"].unusable_reason([])),
        choice_from_preview(BY_NAME["shared"], {"outcome": "refuse",
                                                "message": "user bob uses 2 of their 2 GPU units"}),
    ]  # fmt: skip
    html = render_form(choices, quotas=["Your quota: 1 of 2 GPU units in use"])
    radios = re.findall(r'<input type="radio"[^>]*>', html)
    assert len(radios) == 4
    assert 'value="gpu" checked' in radios[0] and "disabled" not in radios[0]
    assert "disabled" not in radios[1]
    assert "disabled" in radios[2] and "disabled" in radios[3]
    assert "3 of 8 H100 GPUs free" in html and "simulated" in html
    assert "2 requests ahead of you" in html
    assert "Not available: only for members of group cs101" in html
    assert "Not available: user bob uses 2 of their 2 GPU units" in html
    assert "Your quota: 1 of 2 GPU units in use" in html
    # a count select only where there is a count to choose, none for the groups here
    assert re.findall(r'<select name="([^"]+)"', html) == ["gpus-gpu"]
    assert '<option value="1" selected>1 GPU</option>' in html
    assert "8 CPUs · 64 GB memory · 8 GB /dev/shm" in html
    # the price beside the models, for the default count where the count may be chosen
    prices = re.findall(
        r'<div class="gpuhub-shape">([^<]*)<span class="gpuhub-price">([^<]*)<', html
    )
    assert prices == [
        ("1 whole GPU · L4-24GB or H100-80GB · ", "0.5–2 credits/h for 1 GPU"),
        ("2 whole H100 GPUs · H100-80GB · ", "≈ 4 credits/h"),
    ]  # fmt: skip
    # an older service says no price: none is shown
    assert "credits" not in render_form([ProfileChoice(BY_NAME["gpu"], models="H100-80GB")])


def test_form_escapes_everything():
    evil = Profile.model_validate(
        {"name": "x", "display_name": "<script>alert(1)</script>", "description": '"><img>',
         "image": "a/b:<c>", "shape": {"kind": "gpu"}}
    )  # fmt: skip
    html = render_form(
        [
            choice_from_preview(
                evil, {"outcome": "queue", "message": "<b>1</b> ahead"}, "<m>", "<p>"
            )
        ],
        quotas=["<i>q</i>"],
        groups=["<g1>", "g2"],
        notice="<n>",
    )
    for raw in ("<script>", "<img>", "<c>", "<b>", "<i>", "<g1>", "<n>", "<m>", "<p>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;1&lt;/b&gt; ahead" in html
    assert '<select name="group" id="gpuhub-group">' in html


def test_form_selection_falls_back_to_a_usable_profile():
    choices = [
        ProfileChoice(BY_NAME["gpu"], reason="quota"),
        ProfileChoice(BY_NAME["h100x2"]),
    ]
    html = render_form(choices, selected="gpu")
    assert 'value="h100x2" checked' in html and 'value="gpu" checked' not in html
    none = render_form([ProfileChoice(BY_NAME["gpu"], reason="quota")])
    assert "None of the GPU profiles is available to you now" in none and "checked" not in none


def test_quota_lines_and_groups():
    me = {
        "quotas": [
            {"kind": "user", "name": "ann", "units_active": 1.0, "units_queued": 0.0,
             "quota": {"max_units": 2, "gpu_hours": 40}, "gpu_hours_left": 38.5,
             "period": "this week (resets Monday 00:00 UTC)"},
            {"kind": "group", "name": "cs101", "units_active": 0.5, "units_queued": 1.0,
             "quota": {"max_units": 8, "gpu_hours": None}},
            {"kind": "group", "name": "lab", "quota": None, "units_active": 0},
        ]
    }  # fmt: skip
    assert quota_lines(me) == [
        "Your quota: 1 of 2 GPUs in use; 38.5 of 40 GPU-hours left this week "
        "(resets Monday 00:00 UTC)",
        "Group cs101: 0.5 of 8 GPUs in use; 1 GPU queued",
        "Group lab: no limit",
    ]
    assert quota_groups(me) == ["cs101", "lab"] and quota_lines(None) == []


# -- GPU environment and container specs ----------------------------------------------


def test_env_names_the_leased_devices_and_no_credentials():
    env = build_env(REAL_GPUS, service_url="http://hub/services/gpuhub/")
    assert env == {
        "CUDA_VISIBLE_DEVICES": "GPU-1111,GPU-2222",
        "NVIDIA_VISIBLE_DEVICES": "GPU-1111,GPU-2222",
        "GPUHUB_LEASE_ID": "7",
        "GPUHUB_SERVICE_URL": "http://hub/services/gpuhub/",
        "GPUHUB_NODE": "node-1",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    sim = build_env(SIMULATED, service_url="u")
    assert sim["GPUHUB_SIMULATED"] == "1" and sim["CUDA_VISIBLE_DEVICES"] == "GPU-sim-n1-0"
    assert "NVIDIA_DRIVER_CAPABILITIES" not in sim
    assert build_env(REAL_MIG, service_url="u")["CUDA_VISIBLE_DEVICES"] == "MIG-aaaa-bbbb"
    # the spawn profile, so that a job from this server starts in the same environment
    assert build_env({**REAL_GPUS, "profile": "h100x2"}, service_url="u")["GPUHUB_PROFILE"] == (
        "h100x2"
    )


def test_device_requests_only_for_real_devices():
    assert device_requests(REAL_GPUS) == [
        {"Driver": "nvidia", "DeviceIDs": ["GPU-1111", "GPU-2222"], "Capabilities": [["gpu"]]}
    ]
    assert device_requests(REAL_MIG)[0]["DeviceIDs"] == ["MIG-aaaa-bbbb"]
    assert device_requests(SIMULATED) == [] and device_requests(lease([])) == []


def spec(profile="gpu", the_lease=REAL_GPUS, **kw):
    args = {
        "user": "alice",
        "name": "gpuhub-alice",
        "env": build_env(the_lease, service_url="u") | {"JUPYTERHUB_API_TOKEN": "user-token"},
        "command": ["jupyterhub-singleuser"],
        **kw,
    }
    return build_container_spec(BY_NAME[profile], the_lease, **args)


def test_container_spec_for_real_gpus():
    s = spec()
    hc = s["host_config"]
    assert s["image"] == IMAGE and s["name"] == "gpuhub-alice"
    assert s["user"] == "1000:100" and not is_root(s["user"])
    assert s["command"] == ["jupyterhub-singleuser"] and s["working_dir"] == "/home/jovyan"
    assert s["environment"]["CUDA_VISIBLE_DEVICES"] == "GPU-1111,GPU-2222"
    assert s["environment"]["JUPYTERHUB_API_TOKEN"] == "user-token"
    assert s["labels"] == {
        "gpuhub.user": "alice", "gpuhub.server": "", "gpuhub.lease": "7", "gpuhub.profile": "gpu",
    }  # fmt: skip
    assert hc["privileged"] is False and hc["cap_drop"] == ["ALL"]
    assert hc["security_opt"] == ["no-new-privileges"] and hc["init"] is True
    assert hc["mem_limit"] == hc["memswap_limit"] == 64 * G
    assert hc["nano_cpus"] == 8_000_000_000 and hc["shm_size"] == 8 * G
    assert hc["device_requests"] == device_requests(REAL_GPUS)
    assert hc["binds"] == {"gpuhub-home-alice": {"bind": "/home/jovyan", "mode": "rw"}}
    assert hc["network_mode"] == "bridge" and hc["port_bindings"] == {8888: ("127.0.0.1",)}
    assert s["ports"] == {"8888/tcp": {}}
    assert "docker.sock" not in repr(s)
    # docker-py accepts it as it is (no daemon needed to build a HostConfig)
    built = docker.types.HostConfig(version="1.44", **hc)
    assert built["DeviceRequests"][0]["DeviceIDs"] == ["GPU-1111", "GPU-2222"]
    assert not built.get("Privileged") and built["NanoCpus"] == 8_000_000_000
    assert built["Binds"] == ["gpuhub-home-alice:/home/jovyan:rw"]


def test_container_spec_mig_simulated_and_networks():
    mig = spec("mig", REAL_MIG, server_name="lab")["host_config"]
    assert mig["device_requests"][0]["DeviceIDs"] == ["MIG-aaaa-bbbb"]
    assert mig["shm_size"] == G and "mem_limit" not in mig and "nano_cpus" not in mig
    sim = spec("gpu", SIMULATED)
    assert sim["host_config"]["device_requests"] == []
    assert sim["environment"]["GPUHUB_SIMULATED"] == "1"
    host = spec(network="host", port=41234, publish_ip=None)
    assert host["host_config"]["network_mode"] == "host"
    assert "ports" not in host and "port_bindings" not in host["host_config"]
    user_net = spec(network="gpuhub-net", publish_ip=None)
    assert user_net["host_config"]["network_mode"] == "gpuhub-net" and "ports" not in user_net
    other = spec(home_volume="vol-x", home_dir="/home/user", container_user="1234")
    assert other["host_config"]["binds"] == {"vol-x": {"bind": "/home/user", "mode": "rw"}}
    assert other["user"] == "1234" and other["working_dir"] == "/home/user"


def test_container_spec_takes_admin_extras_but_keeps_the_invariants():
    s = spec(
        extra_binds={"/data/shared": {"bind": "/shared", "mode": "ro"}},
        extra_host_config={"ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}],
                           "privileged": False, "mem_limit": "1G"},
        extra_create_kwargs={"hostname": "notebook"},
        extra_labels={"team": "a", "gpuhub.lease": "999"},
    )  # fmt: skip
    hc = s["host_config"]
    assert hc["binds"]["/data/shared"] == {"bind": "/shared", "mode": "ro"}
    assert hc["ulimits"] and hc["mem_limit"] == 64 * G  # the profile's limit wins
    assert s["hostname"] == "notebook" and s["labels"]["team"] == "a"
    assert s["labels"]["gpuhub.lease"] == "7"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"container_user": "root"}, "must not run as root"),
        ({"container_user": "0:0"}, "must not run as root"),
        ({"extra_host_config": {"privileged": True}}, "privileged cannot be set"),
        ({"extra_host_config": {"device_requests": []}}, "GPUs come from the lease only"),
        ({"extra_host_config": {"devices": ["/dev/nvidia0"]}}, "devices come from the lease"),
        ({"extra_host_config": {"cap_add": ["SYS_ADMIN"]}}, "cap_add cannot be set"),
        ({"extra_host_config": {"pid_mode": "host"}}, "pid_mode cannot be set"),
        ({"extra_host_config": {"network_mode": "host"}}, "set the network with network_name"),
        ({"extra_create_kwargs": {"user": "root"}}, "user cannot be set"),
        ({"extra_create_kwargs": {"environment": {}}}, "may not set environment"),
        ({"extra_binds": {"/var/run/docker.sock": "/var/run/docker.sock"}}, "container engine socket"),
        ({"extra_host_config": {"binds": {"/run/docker.sock": {"bind": "/d.sock"}}}}, "socket"),
        ({"extra_host_config": {"mounts": [{"Source": "/var/run/docker.sock"}]}}, "socket"),
    ],
)  # fmt: skip
def test_container_spec_refuses_what_breaks_an_invariant(kw, message):
    with pytest.raises(ContainerSpecError, match=re.escape(message)):
        spec(**kw)


def test_home_volume_names():
    assert home_volume_name("alice") == "gpuhub-home-alice"
    a, b = home_volume_name("Alice@Example.org"), home_volume_name("alice@example.org")
    assert a != b and a.startswith("gpuhub-home-alice-example.org-")
    assert re.match(r"^[a-z0-9][a-z0-9_.-]+$", home_volume_name("Ünïcode user/..")) is not None


# -- the mixin's plain parts -----------------------------------------------------------


def test_state_versions():
    assert lease_id_from_state({}) == (None, None)
    assert lease_id_from_state({"pid": 5}) == (None, None)  # a spawner without GPUs
    assert lease_id_from_state({"gpuhub_state_version": 1, "lease_id": 9}) == (9, None)
    assert lease_id_from_state({"gpuhub_state_version": 1}) == (None, None)
    lid, warning = lease_id_from_state({"gpuhub_state_version": 2, "lease_id": 9, "more": 1})
    assert lid == 9 and "newer than this hub's" in warning
    for bad in ({"gpuhub_state_version": "1", "lease_id": 9},
                {"gpuhub_state_version": 0, "lease_id": 9},
                {"gpuhub_state_version": 1, "lease_id": "9"},
                {"gpuhub_state_version": 1, "lease_id": True}):  # fmt: skip
        lid, warning = lease_id_from_state(bad)
        assert lid is None and "not adopted" in warning


def test_state_round_trip_keeps_the_parent_state():
    s = GPULocalProcessSpawner()
    s.load_state({"pid": 1234, "gpuhub_state_version": STATE_VERSION, "lease_id": 42})
    assert s.pid == 1234 and s.lease_id == 42
    assert s.get_state() == {"pid": 1234, "gpuhub_state_version": 1, "lease_id": 42}
    fresh = GPULocalProcessSpawner()
    fresh.load_state({"pid": 77})
    assert fresh.lease_id is None and fresh.get_state() == {"pid": 77}


def test_queue_and_grant_messages():
    assert queue_message({"position": 3}) == "Waiting for a GPU: 2 requests ahead of you"
    assert queue_message({"position": 2}) == "Waiting for a GPU: 1 request ahead of you"
    assert queue_message({"position": 1}) == "Waiting for a GPU: you are next in the queue"
    assert queue_message({"position": None}) == "Waiting for a GPU in the queue"
    why = "Queued at position 2: all 4 H100 GPUs are held; no estimate."
    assert queue_message({"position": 2, "waiting": {"summary": why}}) == why
    assert queue_message({"position": 2, "waiting": None}).endswith("1 request ahead of you")
    assert granted_message(REAL_GPUS) == "Got 2 × NVIDIA H100 80GB HBM3 on node-1 (lease 7)"
    assert granted_message(SIMULATED) == "Got 1 × H100-80GB (simulated) on node-1 (lease 3)"
    assert "MIG 1g.5gb slice of NVIDIA A100" in granted_message(REAL_MIG)


def test_spawn_errors_carry_their_sentence():
    e = GPUSpawnError(403, "user bob uses 2 of their 2 GPU units (100% used)")
    assert e.status_code == 403 and e.jupyterhub_message.endswith("(100% used)")
    assert e.log_message % e.args == e.message  # a '%' in the message is no format string


async def test_progress_log_is_followed_by_every_reader():
    log = ProgressLog()
    log.add("a", 10)

    async def read():
        return [e async for e in log.follow()]

    readers = [asyncio.ensure_future(read()) for _ in range(2)]
    await asyncio.sleep(0)
    log.add("b")
    await asyncio.sleep(0)
    log.close()
    for r in readers:
        assert await r == [{"message": "a", "progress": 10}, {"message": "b"}]
    assert await read() == [{"message": "a", "progress": 10}, {"message": "b"}]


def test_service_url_for_servers():
    s = GPULocalProcessSpawner(gpuhub_url="http://127.0.0.1:10101/services/gpuhub/")
    assert s.service_url_for_server() == "http://127.0.0.1:10101/services/gpuhub/"
    s.public_hub_url = "https://hub.example.org/prefix/hub/"
    s.gpuhub_url = "http://127.0.0.1:10101/prefix/services/gpuhub/"
    assert s.service_url_for_server() == "https://hub.example.org/prefix/services/gpuhub/"
    s.notebook_service_url = "http://gpuhub.internal/services/gpuhub/"
    assert s.service_url_for_server() == "http://gpuhub.internal/services/gpuhub/"


# -- the Docker spawner, without Docker -------------------------------------------------


def docker_spawner(**kw) -> GPUDockerSpawner:
    user = SimpleNamespace(name="alice", groups=[], url="/user/alice/", escaped_name="alice")
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    return GPUDockerSpawner(user=user, hub=hub, **kw)


def test_free_port_is_free():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_free_ports_come_from_below_the_ephemeral_range():
    """Where outgoing connections never take their local ends (gpuhub.ports)."""
    from gpuhub.ports import LOWEST, ephemeral_start

    top = ephemeral_start()
    if top - LOWEST < 1000:
        pytest.skip(f"this host's ephemeral range starts at {top}: no room below it")
    assert all(LOWEST <= free_port() < top for _ in range(20))


def test_a_port_handed_out_is_not_handed_out_again_before_its_server_binds(monkeypatch):
    """Servers waiting for a boot turn bind their ports seconds after the draw: two draws in
    that window must differ even when the random draw repeats itself."""
    import gpuhub.ports as ports

    draws = iter([20001, 20001, 20001, 20002])
    monkeypatch.setattr(ports.random, "randrange", lambda lo, hi: next(draws))
    monkeypatch.setattr(ports, "ephemeral_start", lambda: 32768)
    monkeypatch.setattr(ports, "_handed", {})
    assert [ports.free_port(), ports.free_port()] == [20001, 20002]
    monkeypatch.setattr(ports.time, "monotonic", lambda: 10**9)  # long after: drawn again
    draws = iter([20001])
    assert ports.free_port() == 20001


async def test_host_network_picks_a_free_port_and_reports_it():
    s = docker_spawner(network_name="host")
    selection = validate_user_options({"profile": "gpu"}, PROFILES, [])
    await s.prepare_server(selection, SIMULATED)
    assert s.image == IMAGE and s.ip == "127.0.0.1" and 1024 < s.port < 65536
    assert await s.get_ip_and_port() == ("127.0.0.1", s.port)
    s._selection, s.lease = selection, SIMULATED
    built = s.container_spec(["jupyterhub-singleuser"])
    assert built["host_config"]["network_mode"] == "host" and "ports" not in built
    assert built["host_config"]["device_requests"] == []
    assert built["environment"]["CUDA_VISIBLE_DEVICES"] == "GPU-sim-n1-0"
    assert built["environment"]["JUPYTERHUB_SERVICE_URL"].startswith(f"http://127.0.0.1:{s.port}")
    assert built["name"] == "gpuhub-alice" and built["user"] == "1000:100"


async def test_bridge_network_keeps_dockerspawner_defaults():
    s = docker_spawner()
    selection = validate_user_options({"profile": "gpu", "gpus": 2}, PROFILES, [])
    await s.prepare_server(selection, REAL_GPUS)
    assert (s.ip, s.port) == ("0.0.0.0", 8888)
    s._selection, s.lease = selection, REAL_GPUS
    built = s.container_spec(None)
    assert built["host_config"]["port_bindings"] == {8888: ("127.0.0.1",)}
    assert built["host_config"]["device_requests"][0]["DeviceIDs"] == ["GPU-1111", "GPU-2222"]
    assert await s.check_allowed(IMAGE) == IMAGE
    with pytest.raises(GPUSpawnError, match="is not offered"):
        await s.check_allowed("other/image")


def test_docker_spawner_settings():
    s = docker_spawner(docker_threads=5)
    assert s.remove is True and s.prefix == "gpuhub"
    # spawners configured alike share the process's engine and its threads
    assert s.engine is docker_spawner(docker_threads=5).engine is Engine.instance(s.engine.settings)
    assert s.executor is s.engine.thread_pool and s.executor._max_workers == 5
    with pytest.raises(TraitError, match="must not be root"):
        docker_spawner(container_user="root")


def test_orphan_containers():
    containers = [
        {"Id": "a", "Labels": {"gpuhub.lease": "1"}},
        {"Id": "b", "Labels": {"gpuhub.lease": "2"}},
        {"Id": "c", "Labels": {"gpuhub.lease": "not-a-number"}},
    ]
    assert [c["Id"] for c in orphan_containers(containers, [1, 3])] == ["b", "c"]


# -- boots in turns ------------------------------------------------------------------------


async def test_boot_turns_admit_in_order_up_to_the_limit():
    turns = BootTurns(2)
    order: list[str] = []

    async def boot(name: str, hold: asyncio.Event) -> None:
        await turns.acquire()
        order.append(name)
        await hold.wait()
        turns.release()

    holds = {n: asyncio.Event() for n in "abcde"}
    tasks = {}
    for n in "abcde":
        tasks[n] = asyncio.ensure_future(boot(n, holds[n]))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == ["a", "b"] and (turns.booting, turns.waiting) == (2, 3)
    assert not turns.free()
    tasks["d"].cancel()  # a spawn cancelled while it waits gives up its place
    await asyncio.sleep(0)
    assert turns.waiting == 2
    holds["b"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c"] and (turns.booting, turns.waiting) == (2, 1)
    for n in "ace":
        holds[n].set()
    await asyncio.gather(*(tasks[n] for n in "abce"))
    assert order == ["a", "b", "c", "e"] and (turns.booting, turns.waiting) == (0, 0)
    assert turns.free()


async def test_a_turn_granted_to_a_cancelled_wait_passes_on():
    turns = BootTurns(1)
    await turns.acquire()
    first = asyncio.ensure_future(turns.acquire())
    second = asyncio.ensure_future(turns.acquire())
    await asyncio.sleep(0)
    turns.release()  # the turn goes to `first` ...
    first.cancel()  # ... which is cancelled before it runs: `second` gets it
    await asyncio.sleep(0)
    await asyncio.wait_for(second, 1)
    assert first.cancelled() and (turns.booting, turns.waiting) == (1, 0)
    turns.release()
    assert turns.booting == 0 and turns.free()


async def test_no_limit_never_waits():
    turns = BootTurns(0)
    for _ in range(50):
        await asyncio.wait_for(turns.acquire(), 1)
    assert turns.free() and turns.booting == 50


def test_concurrent_boots_is_never_negative():
    with pytest.raises(TraitError):
        docker_spawner(concurrent_boots=-1)


async def test_wait_for_server_asks_the_servers_api_until_it_answers():
    from tornado import web
    from tornado.httpserver import HTTPServer

    seen: list[str] = []

    class Api(web.RequestHandler):
        def get(self):
            seen.append(self.request.path)
            self.write({})

    port = free_port()
    s = docker_spawner(http_timeout=10)
    s.server = SimpleNamespace(base_url="/user/alice/")

    async def listen_later():
        await asyncio.sleep(0.3)  # refused until then
        server = HTTPServer(web.Application([(r"/user/alice/api", Api)]))
        server.listen(port, "127.0.0.1")
        return server

    later = asyncio.ensure_future(listen_later())
    assert await s.wait_for_server("127.0.0.1", port) is True
    assert seen == ["/user/alice/api"]
    (await later).stop()
