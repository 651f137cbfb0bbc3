"""A CPU-only profile (``"shape": None``) in every part that reads profiles, without a hub:
the profile model and ``user_options``, the spawn form, the server's environment and
container, the spawner's start (which must not reach the service), ``GET /me/options``'s
entry, jobs (which need a GPU) and the CLI's table."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml
from gpuhub.cli.render import options_report
from gpuhub.containers.spec import no_gpu_env
from gpuhub.jobs.errors import JobInvalid
from gpuhub.jobs.intake import select_profile
from gpuhub.jobs.models import JobRequest
from gpuhub.profiles import (
    ProfileConfigError,
    UserOptionsError,
    default_gpu_profile,
    load_profiles,
    validate_user_options,
)
from gpuhub.service.options import profile_option
from gpuhub.spawners.container import ContainerSpecError, build_container_spec
from gpuhub.spawners.docker import GPUDockerSpawner
from gpuhub.spawners.errors import GPUSpawnError
from gpuhub.spawners.form import ProfileChoice, cpu_choice, render_form
from gpuhub.spawners.local import LOCAL_PROCESS, GPULocalProcessSpawner
from gpuhub.terms import describe, shape_text
from jsonschema import Draft202012Validator
from jupyterhub.objects import Hub
from jupyterhub.spawner import SimpleLocalProcessSpawner

from tests.support.paths import REPO

IMAGE = "gpuhub/pytorch:latest"
CPU = {"name": "cpu", "display_name": "No GPU (CPU only)", "image": IMAGE, "shape": None,
       "description": "For editing code and reading data.", "cpu_limit": 2, "mem_limit": "8G"}  # fmt: skip
GPU1 = {"name": "gpu-1", "image": IMAGE, "shape": {"kind": "gpu", "count": 1}, "default": True}
MIG = {"name": "mig", "image": IMAGE, "shape": {"kind": "mig", "profile": "1g.5gb"},
       "groups": ["cs101"]}  # fmt: skip
PROFILES = load_profiles([GPU1, MIG, CPU])
# a teaching site that preselects the CPU profile
CPU_FIRST = load_profiles([{**CPU, "default": True}, MIG, {**GPU1, "default": False}])


def by_name(profiles, name):
    return next(p for p in profiles if p.name == name)


# -- the profile model and user_options ---------------------------------------------------


def test_a_profile_without_a_shape_is_cpu_only():
    cpu = by_name(PROFILES, "cpu")
    assert not cpu.has_gpu and cpu.shape is None
    assert cpu.gpu_counts == () and cpu.choosable_counts == () and cpu.default_count is None
    assert cpu.shape_for(None) is None and cpu.shape_for(2) is None
    assert by_name(PROFILES, "gpu-1").has_gpu
    assert describe(None) == shape_text(None) == "no GPU"


@pytest.mark.parametrize(
    "item, message",
    [
        # a forgotten shape is an error, never a server without GPUs
        ({"name": "p", "image": IMAGE}, "profile 'p': shape is required"),
        ({**CPU, "gpu_counts": [1]}, "gpu_counts is only for whole-GPU shapes; this profile has no GPU"),
        ({**CPU, "shape": {"kind": "none"}}, "profile 'cpu': shape"),
    ],
)  # fmt: skip
def test_cpu_profile_config_errors(item, message):
    with pytest.raises(ProfileConfigError) as e:
        load_profiles([item])
    assert message in str(e.value)


def test_user_options_of_a_cpu_profile_ask_the_scheduler_for_nothing():
    s = validate_user_options({"profile": "cpu"}, PROFILES, [])
    assert s.profile.name == "cpu" and s.shape is None and s.gpus is None
    assert not s.needs_lease and s.image == IMAGE
    with pytest.raises(ValueError, match="profile cpu has no GPU: there is no lease to ask for"):
        s.lease_body(user="ann", label="server:ann/")
    assert validate_user_options({"profile": "cpu", "gpus": 0}, PROFILES, []).gpus is None
    with pytest.raises(UserOptionsError) as e:
        validate_user_options({"profile": "cpu", "gpus": 1}, PROFILES, [])
    assert e.value.option == "gpus"
    assert e.value.message == (
        "profile cpu has no GPU (CPU only); leave gpus out or choose a profile with GPUs"
    )
    # the spawn form's default stays the configured one
    assert validate_user_options({}, PROFILES, []).profile.name == "gpu-1"
    assert validate_user_options({}, CPU_FIRST, []).profile.name == "cpu"


def test_work_for_the_pool_takes_the_default_gpu_profile():
    assert default_gpu_profile(PROFILES, []).name == "gpu-1"
    assert default_gpu_profile(CPU_FIRST, []).name == "gpu-1"  # the default has no GPU
    assert default_gpu_profile(CPU_FIRST, ["cs101"]).name == "mig"  # the first open one
    assert default_gpu_profile(load_profiles([CPU]), []) is None


# -- jobs need a GPU ----------------------------------------------------------------------


def job(**kw) -> JobRequest:
    return JobRequest.model_validate({"path": "train.py", "script": "print(1)", **kw})


def test_a_job_without_a_profile_takes_the_default_gpu_profile():
    assert select_profile(job(), CPU_FIRST, []).profile.name == "gpu-1"
    assert select_profile(job(), PROFILES, []).shape.count == 1
    # an explicit shape runs in the CPU profile's environment, on GPUs of that shape
    chosen = select_profile(job(profile="cpu", shape={"kind": "gpu", "count": 1}), PROFILES, [])
    assert chosen.profile.name == "cpu" and chosen.shape is None


def test_a_job_on_a_cpu_profile_without_a_shape_is_refused_naming_the_gpu_profiles():
    with pytest.raises(JobInvalid) as e:
        select_profile(job(profile="cpu"), PROFILES, ["cs101"])
    assert e.value.field == "profile"
    assert e.value.message == (
        "profile cpu has no GPU, and a job runs on one: choose a profile with GPUs "
        "(gpu-1, mig) or give a shape"
    )
    with pytest.raises(JobInvalid, match=r"\(none is open to you\)"):
        select_profile(job(), load_profiles([CPU]), [])


# -- the spawn form -------------------------------------------------------------------------


def test_the_form_shows_the_cpu_profile_plainly():
    choices = [
        ProfileChoice(by_name(PROFILES, "gpu-1"), reason="user ann has 0 of 40 GPU-hours left"),
        ProfileChoice(by_name(PROFILES, "mig"), reason="only for members of group cs101"),
        cpu_choice(by_name(PROFILES, "cpu")),
    ]
    html = render_form(choices, selected="gpu-1")
    radios = re.findall(r'<input type="radio"[^>]*>', html)
    # the GPU profiles are out of reach: the CPU one is usable and chosen
    assert 'value="cpu" checked' in radios[2] and "disabled" not in radios[2]
    assert "No GPU · quota-free · 2 CPUs · 8 GB memory" in html
    assert "Starts at once: no GPU is requested, so none of your GPU-hours are used" in html
    assert "gpus-cpu" not in html  # no count to choose
    assert "None of the GPU profiles" not in html
    # a local process has no limits to show: only that there is no GPU
    local = render_form([cpu_choice(by_name(PROFILES, "cpu"))], kind=LOCAL_PROCESS)
    assert '<div class="gpuhub-shape">No GPU · quota-free</div>' in local


# -- the server's environment and container --------------------------------------------------


def test_a_cpu_server_sees_no_gpu():
    env = no_gpu_env(profile="cpu", service_url="http://hub/services/gpuhub/")
    assert env == {
        "CUDA_VISIBLE_DEVICES": "",  # CUDA frameworks see no GPU, even where the host has some
        "NVIDIA_VISIBLE_DEVICES": "void",  # the NVIDIA runtime hands over nothing
        "GPUHUB_NO_GPU": "1",
        "GPUHUB_PROFILE": "cpu",
        "GPUHUB_SERVICE_URL": "http://hub/services/gpuhub/",
    }


def test_a_cpu_container_has_no_devices_and_no_lease_label():
    env = no_gpu_env(profile="cpu", service_url="u")
    spec = build_container_spec(by_name(PROFILES, "cpu"), None, user="ann", name="gpuhub-ann",
                                env=env)  # fmt: skip
    hc = spec["host_config"]
    assert hc["device_requests"] == [] and hc["privileged"] is False
    assert hc["nano_cpus"] == 2_000_000_000 and hc["mem_limit"] == 8 * 1024**3
    assert spec["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "NVIDIA_DRIVER_CAPABILITIES" not in spec["environment"]
    assert spec["labels"] == {"gpuhub.user": "ann", "gpuhub.profile": "cpu", "gpuhub.server": ""}
    with pytest.raises(ContainerSpecError, match="profile gpu-1 has a GPU shape"):
        build_container_spec(by_name(PROFILES, "gpu-1"), None, user="ann", name="x", env={})


def _user(name: str = "ann") -> SimpleNamespace:
    return SimpleNamespace(name=name, groups=[], url=f"/user/{name}/", escaped_name=name)


async def test_the_docker_spawner_builds_a_cpu_container_without_a_lease():
    s = GPUDockerSpawner(user=_user(), hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"))
    selection = validate_user_options({"profile": "cpu"}, PROFILES, [])
    await s.prepare_server(selection, None)
    s._selection = selection
    built = s.container_spec(["jupyterhub-singleuser"])
    assert built["image"] == IMAGE and built["host_config"]["device_requests"] == []
    env = built["environment"]
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]) == ("", "void")
    assert env["GPUHUB_NO_GPU"] == "1" and "GPUHUB_LEASE_ID" not in env
    assert "gpuhub.lease" not in built["labels"]


async def test_a_cpu_server_starts_without_asking_the_service(monkeypatch):
    """No gpuhub service is configured here: a GPU profile's start fails on it at once,
    the CPU profile's never asks (no lease, so no quota can refuse it)."""
    started = []

    async def parent_start(self):  # the process start of SimpleLocalProcessSpawner
        started.append(self.get_env())
        return ("127.0.0.1", 4321)

    monkeypatch.setattr(SimpleLocalProcessSpawner, "start", parent_start)
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    s = GPULocalProcessSpawner(user=_user(), hub=hub, profiles=[GPU1, CPU])
    s.user_options = {"profile": "gpu-1"}
    with pytest.raises(GPUSpawnError, match="the GPU service is not configured"):
        await s.start()
    assert started == []
    s.user_options = {"profile": "cpu"}
    assert await s.start() == ("127.0.0.1", 4321)
    assert s.lease_id is None and "lease_id" not in s.get_state()
    [env] = started
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["GPUHUB_NO_GPU"] == "1"
    assert env["GPUHUB_PROFILE"] == "cpu" and "GPUHUB_LEASE_ID" not in env
    messages = [e["message"] async for e in s.progress()]
    assert "No GPU requested: profile cpu is CPU only; no quota is used" in messages


# -- GET /me/options and the CLI --------------------------------------------------------------


def test_me_options_lists_the_cpu_profile_without_a_shape(make):
    option = profile_option(by_name(PROFILES, "cpu"), pool=None)  # no pool is looked at
    assert option == {
        "name": "cpu", "display_name": "No GPU (CPU only)",
        "description": "For editing code and reading data.", "image": IMAGE, "shape": None,
        "text": "no GPU", "models": [], "models_text": "", "gpu_counts": [], "max_nodes": 1, "default": False,
        "credits_per_hour": None, "credits_text": None, "credits_per_gpu_hour": None,
    }  # fmt: skip
    # as the API document says a profile is (both kinds)
    spec = yaml.safe_load((REPO / "docs" / "reference" / "openapi.yaml").read_text())
    schema = {"$ref": "#/components/schemas/ProfileOption", "components": spec["components"]}
    s = make("n: 2xH100-80GB")
    gpu = profile_option(by_name(PROFILES, "gpu-1"), s.pool_view(), rates=s.rates)
    assert gpu["shape"] == {"kind": "gpu", "count": 1} and gpu["models"] == ["H100-80GB"]
    assert gpu["credits_text"] == "≈ 1 credits/h"  # the default rate
    for answer in (option, gpu):
        errors = list(Draft202012Validator(schema).iter_errors(answer))
        assert not errors, errors[0]
    report = options_report({"shapes": [], "profiles": [gpu, option], "queue_length": 0})
    assert re.search(r"cpu\s+No GPU \(CPU only\)\s+no GPU \(quota-free\)", report), report
    assert re.search(r"gpu-1\s+gpu-1\s+1 whole GPU\s+≈ 1 credits/h\n", report), report
