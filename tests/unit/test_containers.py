"""gpuhub.containers without Docker: the parts of a container, a job's container, and how
the Docker engine is configured once for servers and jobs.

A server's spec (``gpuhub.spawners.container.build_container_spec``) is checked in
``test_spawner_units.py``; here, that a job's spec is made of the same parts and keeps the
same invariants. The engine itself, reached over TLS, is in ``tests/docker/test_engine_tls.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest
from gpuhub.containers.engine import DEFAULT_TIMEOUT, Engine, EngineSettings, docker_environment
from gpuhub.containers.job import build_job_spec
from gpuhub.containers.spec import (
    ContainerSpecError,
    Limits,
    build_env,
    gpuhub_labels,
    hardened_host_config,
    home_binds,
    limit_config,
)
from gpuhub.jobs.docker import DockerExecutor
from gpuhub.profiles import load_profiles
from gpuhub.spawners.container import build_container_spec
from gpuhub.spawners.docker import GPUDockerSpawner
from jupyterhub.objects import Hub
from traitlets.config import Config

G = 1024**3
IMAGE = "gpuhub/pytorch:latest"
REAL = {"id": 7, "node": "n1", "profile": "gpu-1",
        "devices": [{"uuid": "GPU-1111", "simulated": False}, {"uuid": "GPU-2222"}]}  # fmt: skip
SIMULATED = {"id": 8, "node": "n1", "devices": [{"uuid": "GPU-sim-n1-0", "simulated": True}]}
LIMITS = Limits(cpu_limit=8, mem_limit=64 * G, shm_size=8 * G)
[PROFILE] = load_profiles(
    [{"name": "gpu-1", "image": IMAGE, "shape": {"kind": "gpu", "count": 2},
      "cpu_limit": 8, "mem_limit": "64G", "shm_size": "8G"}]
)  # fmt: skip


def job_spec(lease=REAL, **kw):
    args = {
        "job_id": 12,
        "image": "sha256:abc",
        "lease": lease,
        "user": "alice",
        "name": "gpuhub-job-12",
        "env": {"GPUHUB_JOB_ID": "12", "CUDA_VISIBLE_DEVICES": "GPU-1111,GPU-2222"},
        "command": ["python", "-m", "gpuhub.jobs.runner", "/home/jovyan/gpuhub-jobs/12-train"],
        "limits": LIMITS,
        **kw,
    }
    return build_job_spec(**args)


# -- the parts --------------------------------------------------------------------------------


def test_limits_become_host_config():
    assert limit_config(LIMITS) == {
        "mem_limit": 64 * G, "memswap_limit": 64 * G, "nano_cpus": 8_000_000_000,
        "shm_size": 8 * G,
    }  # fmt: skip
    assert limit_config(LIMITS, host_cpus=2)["nano_cpus"] == 2_000_000_000  # Docker's cap
    assert limit_config(Limits(cpu_limit=0.5))["nano_cpus"] == 500_000_000
    assert limit_config(Limits()) == {}


def test_hardened_host_config_and_labels():
    hc = hardened_host_config(
        REAL, binds=home_binds("gpuhub-home-alice"), network="none", limits=Limits()
    )
    assert hc == {
        "binds": {"gpuhub-home-alice": {"bind": "/home/jovyan", "mode": "rw"}},
        "network_mode": "none", "privileged": False, "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"], "init": True,
        "device_requests": [{"Driver": "nvidia", "DeviceIDs": ["GPU-1111", "GPU-2222"],
                             "Capabilities": [["gpu"]]}],
    }  # fmt: skip
    with pytest.raises(ContainerSpecError, match="container engine socket"):
        hardened_host_config(
            REAL, binds={"/run/podman.sock": {"bind": "/p"}}, network="none", limits=Limits()
        )
    labels = gpuhub_labels(user="a", lease={"id": 7}, profile="p", own={"gpuhub.job": "3"},
                           extra={"team": "ml", "gpuhub.user": "mallory"})  # fmt: skip
    assert labels == {"team": "ml", "gpuhub.user": "a", "gpuhub.lease": "7",
                      "gpuhub.profile": "p", "gpuhub.job": "3"}  # fmt: skip
    # no lease (a CPU-only server): no lease label, which start-up reconciliation would take
    # for an orphan's; nor may an admin's extra label claim one
    labels = gpuhub_labels(user="a", lease={}, profile="cpu", own={"gpuhub.server": ""},
                           extra={"gpuhub.lease": "9"})  # fmt: skip
    assert labels == {"gpuhub.user": "a", "gpuhub.profile": "cpu", "gpuhub.server": ""}


# -- a job's container -------------------------------------------------------------------------


def test_a_job_is_built_from_the_same_parts_as_a_server():
    env = build_env(REAL, service_url="u")
    server = build_container_spec(PROFILE, REAL, user="alice", name="gpuhub-alice", env=env,
                                  network="bridge")  # fmt: skip
    job = job_spec()
    shared = ("binds", "privileged", "cap_drop", "security_opt", "init", "device_requests",
              "mem_limit", "memswap_limit", "nano_cpus", "shm_size")  # fmt: skip
    for key in shared:
        assert job["host_config"][key] == server["host_config"][key], key
    assert job["user"] == server["user"] == "1000:100"
    assert job["working_dir"] == server["working_dir"] == "/home/jovyan"
    # what is a server's own, and what is a job's
    assert "ports" in server and "port_bindings" in server["host_config"]
    assert "ports" not in job and "port_bindings" not in job["host_config"]
    assert job["labels"] == {"gpuhub.user": "alice", "gpuhub.lease": "7",
                             "gpuhub.profile": "gpu-1", "gpuhub.job": "12"}  # fmt: skip
    assert server["labels"]["gpuhub.server"] == "" and "gpuhub.job" not in server["labels"]
    assert job["command"][:3] == ["python", "-m", "gpuhub.jobs.runner"]
    assert job["image"] == "sha256:abc" and job["name"] == "gpuhub-job-12"
    # a job handed GPUs can use NVML; a job has no network, and its name resolves
    assert job["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert job["host_config"]["network_mode"] == "none"
    assert job["hostname"] == "gpuhub-job-12"
    assert job["host_config"]["extra_hosts"] == {"gpuhub-job-12": "127.0.0.1"}
    # docker-py takes it as it is
    built = docker.types.HostConfig(version="1.44", **job["host_config"])
    assert built["NetworkMode"] == "none" and built["CapDrop"] == ["ALL"]


def test_job_specs_for_simulated_devices_no_lease_and_other_networks():
    sim = job_spec(SIMULATED)
    assert sim["host_config"]["device_requests"] == []
    assert "NVIDIA_DRIVER_CAPABILITIES" not in sim["environment"]
    assert sim["labels"]["gpuhub.profile"] == "job" and sim["labels"]["gpuhub.lease"] == "8"
    none = job_spec({}, limits=None)
    assert "gpuhub.lease" not in none["labels"] and none["host_config"]["device_requests"] == []
    assert "mem_limit" not in none["host_config"] and "nano_cpus" not in none["host_config"]
    bridged = job_spec(network="bridge", home_dir="/home/user", home_volume="vol-x",
                       host_cpus=2, extra_labels={"team": "ml", "gpuhub.job": "99"})  # fmt: skip
    assert bridged["host_config"]["network_mode"] == "bridge" and "hostname" not in bridged
    assert "extra_hosts" not in bridged["host_config"] and "ports" not in bridged
    assert bridged["host_config"]["binds"] == {"vol-x": {"bind": "/home/user", "mode": "rw"}}
    assert bridged["host_config"]["nano_cpus"] == 2_000_000_000
    assert bridged["labels"]["team"] == "ml" and bridged["labels"]["gpuhub.job"] == "12"


@pytest.mark.parametrize(
    "kw, error, message",
    [
        ({"container_user": "0:0"}, ContainerSpecError, "must not run as root"),
        ({"container_user": "root"}, ContainerSpecError, "must not run as root"),
        ({"image": None}, ValueError, "container gpuhub-job-12 names no image"),
        ({"home_volume": "/var/run/docker.sock"}, ContainerSpecError, "engine socket"),
    ],
)
def test_job_specs_refuse_what_breaks_an_invariant(kw, error, message):
    with pytest.raises(error, match=re.escape(message)):
        job_spec(**kw)


# -- one engine, configured once ----------------------------------------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> SimpleNamespace:
    """Files where docker-py's TLSConfig looks for them (it checks they exist)."""
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("")
    return SimpleNamespace(
        dir=tmp_path, **{n: str(tmp_path / f"{n}.pem") for n in ("ca", "cert", "key")}
    )


@pytest.fixture(autouse=True)
def no_docker_environment(monkeypatch):
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)


def docker_spawner(config: Config) -> GPUDockerSpawner:
    user = SimpleNamespace(name="alice", groups=[], url="/user/alice/", escaped_name="alice")
    return GPUDockerSpawner(user=user, hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
                            config=config)  # fmt: skip


def test_client_arguments_follow_dockerspawner(certs, monkeypatch):
    tls = {"client_cert": (certs.cert, certs.key), "ca_cert": certs.ca, "verify": True}
    settings = EngineSettings(tls_config=tls, client_kwargs={"base_url": "tcp://127.0.0.1:2376"})
    kwargs = settings.client_arguments()
    assert kwargs["base_url"] == "tcp://127.0.0.1:2376" and kwargs["version"] == "auto"
    assert kwargs["tls"].cert == (certs.cert, certs.key) and kwargs["tls"].verify is True
    assert kwargs["tls"].ca_cert == certs.ca
    assert (kwargs["max_pool_size"], kwargs["timeout"]) == (8, DEFAULT_TIMEOUT)
    assert EngineSettings().client_arguments() == {
        "version": "auto", "max_pool_size": 8, "timeout": DEFAULT_TIMEOUT,
    }  # fmt: skip
    # the DOCKER_* environment as docker.from_env reads it, over tls_config; client_kwargs last
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2377")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs.dir))
    from_env = EngineSettings(tls_config={"verify": False})
    assert from_env.environment == docker_environment() != {}
    kwargs = from_env.client_arguments()
    assert kwargs["base_url"] == "tcp://127.0.0.1:2377"
    assert kwargs["tls"].cert == (certs.cert, certs.key) and kwargs["tls"].ca_cert == certs.ca
    assert EngineSettings(client_kwargs={"timeout": 5}).client_arguments()["timeout"] == 5


def test_servers_and_jobs_of_one_configuration_share_one_engine(certs):
    c = Config()
    c.DockerSpawner.tls_config = {"client_cert": (certs.cert, certs.key), "ca_cert": certs.ca,
                                  "verify": True}  # fmt: skip
    c.GPUDockerSpawner.client_kwargs = {"base_url": "tcp://127.0.0.1:2376"}
    c.GPUDockerSpawner.docker_threads = 4
    spawner, executor = docker_spawner(c), DockerExecutor(config=c)
    assert spawner.engine_settings() == EngineSettings.from_config(c)
    assert executor.engine is spawner.engine is docker_spawner(c).engine
    assert spawner.engine.settings.client_kwargs == {"base_url": "tcp://127.0.0.1:2376"}
    assert spawner.engine.settings.threads == 4
    # a later section wins, as traitlets has it; c.X.client_kwargs.update(...) works too
    c.Spawner.client_kwargs = {"base_url": "tcp://127.0.0.1:1"}
    c.DockerSpawner.client_kwargs.update({"timeout": 30})
    assert docker_spawner(c).engine_settings() == EngineSettings.from_config(c)
    # unconfigured: the local engine, shared too; another configuration, another engine
    plain = DockerExecutor()
    assert plain.engine is docker_spawner(Config()).engine is Engine.instance()
    assert plain.engine is not executor.engine
    assert DockerExecutor(docker_timeout=300).engine.settings.timeout == 300
    assert DockerExecutor(engine=executor.engine).engine is spawner.engine


async def test_the_engine_runs_calls_on_its_threads_and_closes():
    engine = Engine(EngineSettings(threads=3))
    assert engine.thread_pool is engine.thread_pool and engine.thread_pool._max_workers == 3
    assert await engine.run(lambda a, b: a + b, 2, b=3) == 5
    turns = await engine.boot_turns(2)
    assert turns.limit == 2 and await engine.boot_turns(5) is turns  # the first caller's
    pool = engine.thread_pool
    engine.close()
    assert engine.thread_pool is not pool and (await engine.boot_turns(0)).limit == 0
    engine.close()
