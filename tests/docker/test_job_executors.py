"""Job executors against the real thing: local processes, and a real Docker engine.

LocalProcessExecutor: jobs run as processes of this environment under a temporary home
(``home_dir_template``); a *new* executor instance built from the saved state stands for
a restarted service.

DockerExecutor: jobs run in containers of ``gpuhub/pytorch:latest`` (built by
``scripts/setup test``, with papermill and gpuhub's runner) on home volumes of their own.
Containers are named ``gpuhub-jobt<run>-<id>`` and volumes ``gpuhub-home-jt<run>-*``; a
module fixture removes them whatever happens. ``GPUHUB_TEST_NO_DOCKER=1`` leaves the
Docker tests out.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import nbformat
import pytest
from gpuhub.containers.spec import ContainerSpecError, build_env
from gpuhub.jobs.docker import DockerExecutor
from gpuhub.jobs.executor import JobExit, JobSpec
from gpuhub.jobs.local import LocalProcessExecutor, session_members, start_ticks

from tests.support.docker import engine_client, remove_leftovers
from tests.support.hub import wait_for
from tests.support.jobs import NOTICE, NOTICED
from tests.support.paths import REPO

pytestmark = pytest.mark.timeout(300)

EXAMPLE = REPO / "examples" / "train-classifier.ipynb"


def spec(job_id: int, source: str, *, kind: str = "script", path: str = "", **kw) -> JobSpec:
    """A job of user alice; ``path`` defaults to ``work/train.py`` (or ``.ipynb``)."""
    path = path or ("work/train.py" if kind == "script" else "work/train.ipynb")
    kw.setdefault("env", {"GPUHUB_JOB_ID": str(job_id), "CUDA_VISIBLE_DEVICES": ""})
    return JobSpec(
        id=job_id,
        user=kw.pop("user", "alice"),
        name="train",
        kind=kind,
        path=path,
        folder=f"gpuhub-jobs/{job_id}-train",
        source=source,
        **kw,
    )


def wait_end(executor, job: JobSpec, state: dict, timeout: float = 60) -> JobExit:
    """Poll until the job has ended; how it ended."""
    return wait_for(lambda: executor.poll(job, state), timeout=timeout, step=0.1)


def log_of(executor, job: JobSpec, state: dict) -> str:
    return executor.read_log(job, state, 0, 1 << 20).decode()


# =====================================================================================
# LocalProcessExecutor
# =====================================================================================


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    return tmp_path / "homes"


@pytest.fixture
def local(homes: Path) -> LocalProcessExecutor:
    (homes / "alice" / "work").mkdir(parents=True)
    return LocalProcessExecutor(home_dir_template=str(homes / "{username}"))


def launch(executor: LocalProcessExecutor, job: JobSpec) -> dict:
    executor.before_start(job)
    return executor.start(job)


def test_local_runs_a_script_with_a_clean_environment(
    local: LocalProcessExecutor, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-secret")
    monkeypatch.setenv("GPUHUB_SERVICE_TOKEN", "service-secret")
    script = "import json, os\nprint(json.dumps(dict(os.environ)))\nprint('cwd', os.getcwd())\n"
    job = spec(1, script, env={"GPUHUB_JOB_ID": "1", "JUPYTERHUB_API_TOKEN": "leaked"})
    local.before_start(job)
    local.before_start(job)  # idempotent
    folder = homes / "alice" / "gpuhub-jobs" / "1-train"
    assert (folder / "input.py").read_text() == script and (folder / "artifacts").is_dir()
    assert json.loads((folder / "job.json").read_text())["cwd"] == str(homes / "alice" / "work")
    assert (folder.parent.stat().st_mode & 0o777) == 0o700

    state = local.start(job)
    assert state == {"pid": state["pid"], "start_ticks": start_ticks(state["pid"]),
                     "folder": str(folder)}  # fmt: skip
    assert json.loads(json.dumps(state)) == state
    end = wait_end(local, job, state)
    assert (end.exit_code, end.outcome, end.error) == (0, "succeeded", None)
    assert end.ended_at == pytest.approx(time.time(), abs=60)

    log = log_of(local, job, state)
    env = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    assert env["HOME"] == str(homes / "alice")
    assert env["GPUHUB_JOB_ID"] == "1"
    assert env["GPUHUB_OUTPUT_DIR"] == str(folder / "artifacts")
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert not [k for k in env if k.startswith("JUPYTERHUB_") or "TOKEN" in k]
    assert "secret" not in log and "leaked" not in log
    assert f"cwd {homes / 'alice' / 'work'}" in log
    # paged reads
    raw = log.encode()
    assert local.read_log(job, state, 5, 10) == raw[5:15]
    assert local.read_log(job, state, len(raw), 10) == b""
    local.cleanup(job, state)
    local.cleanup(job, state)
    assert folder.is_dir()  # the folder stays


def test_local_runs_a_notebook_with_parameters(local: LocalProcessExecutor) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('n is', n)")]
    job = spec(2, nbformat.writes(nb), kind="notebook", parameters={"n": 5})
    state = launch(local, job)
    end = wait_end(local, job, state)
    assert end.outcome == "succeeded", log_of(local, job, state)
    executed = nbformat.read(Path(state["folder"]) / "train.ipynb", as_version=4)
    assert "n is 5" in executed.cells[-1].outputs[0].text


def test_local_failure_is_reported(local: LocalProcessExecutor) -> None:
    job = spec(3, "print('working')\nraise SystemExit(4)\n")
    state = launch(local, job)
    end = wait_end(local, job, state)
    assert (end.exit_code, end.outcome) == (4, "failed")
    assert end.error == "the script exited with code 4"
    assert "working" in log_of(local, job, state)


def test_local_stop_terminates_the_job(local: LocalProcessExecutor) -> None:
    job = spec(4, "import time\nprint('ready', flush=True)\ntime.sleep(300)\n")
    state = launch(local, job)
    wait_for(lambda: "ready" in log_of(local, job, state), timeout=30)
    assert local.poll(job, state) is None
    started = time.monotonic()
    local.stop(job, state, grace=20)
    assert time.monotonic() - started < 15  # SIGTERM was enough
    end = local.poll(job, state)
    assert end is not None and end.outcome == "terminated" and end.exit_code == 143
    local.stop(job, state, grace=1)  # idempotent


def test_local_stop_kills_a_job_that_ignores_sigterm(local: LocalProcessExecutor) -> None:
    script = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open('pid', 'w').write(str(os.getpid()))\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    job = spec(5, script)
    state = launch(local, job)
    wait_for(lambda: "ready" in log_of(local, job, state), timeout=30)
    child = int((local.home("alice") / "work" / "pid").read_text())
    local.stop(job, state, grace=1)
    end = local.poll(job, state)
    assert end is not None and end.outcome == "terminated" and end.exit_code == 137
    assert "did not stop within 1 s" in end.error
    wait_for(lambda: start_ticks(child) is None or _zombie(child), timeout=10)


def test_a_new_executor_adopts_a_running_job(local: LocalProcessExecutor, homes: Path) -> None:
    script = (
        "import os, time\n"
        "print('waiting', flush=True)\n"
        "while not os.path.exists('go'):\n"
        "    time.sleep(0.05)\n"
        "print('went')\n"
    )
    job = spec(6, script)
    state = launch(local, job)
    wait_for(lambda: "waiting" in log_of(local, job, state), timeout=30)
    saved = json.loads(json.dumps(state))  # as the service stores it

    restarted = LocalProcessExecutor(home_dir_template=str(homes / "{username}"))
    assert restarted.poll(job, saved) is None
    again = restarted.start(job)  # a start repeated after a restart: the same runner
    assert again == saved
    (homes / "alice" / "work" / "go").touch()
    end = wait_end(restarted, job, saved)  # reaps the first executor's child
    assert end.outcome == "succeeded"
    assert "went" in log_of(restarted, job, saved)
    assert restarted.start(job) == saved  # ended: still not started again
    assert restarted.poll(job, saved) == end
    assert log_of(restarted, job, saved).count("went") == 1
    assert _zombie(saved["pid"]) is not True  # reaped


def test_a_reused_pid_is_not_the_job(local: LocalProcessExecutor, homes: Path) -> None:
    job = spec(7, "print('hi')\n")
    local.before_start(job)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = {"pid": other.pid, "start_ticks": start_ticks(other.pid) - 1,
                 "folder": str(homes / "alice" / "gpuhub-jobs" / "7-train")}  # fmt: skip
        end = local.poll(job, state)  # the runner is gone and left no exit status
        assert end is not None and end.outcome == "lost" and end.exit_code is None
        assert "without writing exit_status.json" in end.error
        local.stop(job, state, grace=1)  # must not touch the other process
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_killed_runner_is_lost(local: LocalProcessExecutor) -> None:
    job = spec(8, "import time\nprint('ready', flush=True)\ntime.sleep(300)\n")
    state = launch(local, job)
    wait_for(lambda: "ready" in log_of(local, job, state), timeout=30)
    for pid in session_members(state["pid"]):  # the runner and the script, at once
        os.kill(pid, signal.SIGKILL)
    end = wait_end(local, job, state)
    assert end.outcome == "lost" and end.exit_code is None


def test_home_must_resolve(homes: Path) -> None:
    executor = LocalProcessExecutor(home_dir_template="~{username}")
    with pytest.raises(ValueError, match="no home directory"):
        executor.home("no-such-user-gpuhub")


def _zombie(pid: int) -> bool | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return None


# =====================================================================================
# DockerExecutor (a real engine, gpuhub/pytorch)
# =====================================================================================

IMAGE = "gpuhub/pytorch:latest"  # the user image with torch, papermill and gpuhub's runner
RUN = secrets.token_hex(3)
PREFIX = f"gpuhub-jobt{RUN}"  # container names: {PREFIX}-{job id}
USERS = f"jt{RUN}"  # user names {USERS}-{name}; home volumes gpuhub-home-{USERS}-{name}
HOME = "/home/jovyan"


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.APIClient]:
    """The Docker engine, with the PyTorch image on it; removes this module's containers
    and volumes at the end, whatever happens."""
    client = engine_client(IMAGE)
    # the image's runner is this checkout's: a stale image would test old code
    read = "import gpuhub.jobs.runner as r, papermill; print(open(r.__file__).read(), end='')"
    probe = client.create_container(IMAGE, entrypoint=["python", "-c", read], network_disabled=True)
    try:
        client.start(probe)
        client.wait(probe, timeout=60)
        inside = client.logs(probe, stderr=False).decode()
    finally:
        client.remove_container(probe, force=True)
    here = (REPO / "spawner" / "gpuhub" / "jobs" / "runner.py").read_text()
    if inside != here:
        client.close()
        pytest.fail(f"{IMAGE} lacks papermill or this checkout's gpuhub.jobs.runner; rebuild "
                    "it with `scripts/images build --base gpuhub/debian-base:bookworm`.",
                    pytrace=False)  # fmt: skip
    try:
        yield client
    finally:
        remove_leftovers(
            client,
            filters={"label": "gpuhub.job"},
            keep=lambda c: (
                PREFIX in ",".join(c.get("Names") or ())
                or (c.get("Labels") or {}).get("gpuhub.user", "").startswith(USERS)
            ),
            volumes=f"gpuhub-home-{USERS}-",
        )
        client.close()


@pytest.fixture
def dockerx(engine: docker.APIClient) -> DockerExecutor:
    return DockerExecutor(prefix=PREFIX)


def djob(executor: DockerExecutor, job_id: int, source: str, *, user: str = "ada", **kw) -> JobSpec:
    """A job of user ``{USERS}-{user}`` in the PyTorch image, on a simulated GPU lease."""
    lease = {"id": 9000 + job_id, "node": "n1", "profile": "cpu",
             "devices": [{"uuid": f"GPU-sim-{job_id}", "kind": "gpu", "simulated": True}]}  # fmt: skip
    env = {**build_env(lease, service_url="http://127.0.0.1:9"), "GPUHUB_JOB_ID": str(job_id),
           "JUPYTERHUB_API_TOKEN": "must-not-leak"}  # fmt: skip
    kw.setdefault("kind", "script")
    return spec(
        job_id, source, user=f"{USERS}-{user}", lease=lease, env=env, image=IMAGE,
        image_digest=executor.resolve_image(IMAGE), cpu_limit=1.0, mem_limit=2 * 2**30,
        shm_size=256 * 2**20, **kw,
    )  # fmt: skip


def volume_file(engine: docker.APIClient, container: str, path: str) -> bytes:
    stream, _ = engine.get_archive(container, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        return tar.extractfile(tar.next()).read()


def test_docker_resolves_images(dockerx: DockerExecutor, engine: docker.APIClient) -> None:
    assert dockerx.resolve_image(IMAGE) == engine.inspect_image(IMAGE)["Id"]
    assert dockerx.resolve_image(IMAGE).startswith("sha256:")
    with pytest.raises(ValueError, match="image gpuhub/no-such-image:0 is not on this Docker"):
        dockerx.resolve_image("gpuhub/no-such-image:0")


def test_docker_job_is_hardened_and_sees_only_its_env(
    dockerx: DockerExecutor, engine: docker.APIClient
) -> None:
    script = (
        "import json, os\n"
        "caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]\n"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'caps': caps[0],\n"
        "    'net': sorted(os.listdir('/sys/class/net')), 'env': dict(os.environ)}))\n"
        "open(os.path.join(os.environ['GPUHUB_OUTPUT_DIR'], 'out.txt'), 'w').write('ok')\n"
    )
    job = djob(dockerx, 1, script)
    dockerx.before_start(job)
    state = dockerx.start(job)
    assert list(state) == ["container"]
    info = engine.inspect_container(state["container"])
    assert info["Name"] == f"/{PREFIX}-1"
    assert info["Config"]["User"] == "1000:100"
    assert info["Config"]["Image"] == job.image_digest
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and host["Privileged"] is False
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["Init"] is True
    assert host["NetworkMode"] == "none" and not host.get("DeviceRequests")  # simulated GPUs
    assert host["Memory"] == 2 * 2**30 and host["NanoCpus"] == 10**9
    assert host["Binds"] == [f"gpuhub-home-{USERS}-ada:{HOME}:rw"]
    assert "docker.sock" not in json.dumps(info)
    labels = info["Config"]["Labels"]
    assert labels["gpuhub.job"] == "1" and labels["gpuhub.user"] == f"{USERS}-ada"
    assert labels["gpuhub.lease"] == "9001" and "gpuhub.server" not in labels

    end = wait_end(dockerx, job, state, timeout=60)
    log = log_of(dockerx, job, state)
    assert end.outcome == "succeeded", log
    seen = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    assert (seen["uid"], seen["gid"], seen["caps"]) == (1000, 100, "0000000000000000")
    assert seen["net"] == ["lo"]
    env = seen["env"]
    assert env["GPUHUB_JOB_ID"] == "1"
    assert env["GPUHUB_OUTPUT_DIR"] == f"{HOME}/gpuhub-jobs/1-train/artifacts"
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-sim-1" and env["GPUHUB_SIMULATED"] == "1"
    assert not [k for k in env if k.startswith("JUPYTERHUB_") or "TOKEN" in k]
    assert "must-not-leak" not in log
    folder = f"{HOME}/gpuhub-jobs/1-train"
    assert volume_file(engine, state["container"], f"{folder}/artifacts/out.txt") == b"ok"

    assert dockerx.read_log(job, state, 5, 10) == log.encode()[5:15]
    assert dockerx.read_log(job, state, len(log.encode()), 10) == b""
    dockerx.cleanup(job, state)
    dockerx.cleanup(job, state)  # idempotent
    with pytest.raises(docker.errors.NotFound):
        engine.inspect_container(state["container"])
    engine.inspect_volume(f"gpuhub-home-{USERS}-ada")  # the home stays
    # what the job left is still read, from the volume
    assert dockerx.poll(job, state).outcome == "succeeded"
    assert dockerx.read_log(job, state, 0, 1 << 20).decode() == log


def test_docker_runs_the_example_notebook_and_resumes(
    dockerx: DockerExecutor, engine: docker.APIClient
) -> None:
    source = EXAMPLE.read_text()
    first = djob(dockerx, 2, source, kind="notebook", path="train-classifier.ipynb",
                 parameters={"epochs": 2})  # fmt: skip
    dockerx.before_start(first)
    state = dockerx.start(first)
    end = wait_end(dockerx, first, state, timeout=150)
    log = log_of(dockerx, first, state)
    assert end.outcome == "succeeded", log
    assert "epoch 2/2: loss" in log and "device cpu" in log
    folder = f"{HOME}/gpuhub-jobs/2-train"
    executed = nbformat.reads(
        volume_file(engine, state["container"], f"{folder}/train-classifier.ipynb").decode(), 4
    )
    text = "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for c in executed.cells
        for o in c.get("outputs", [])
    )
    assert "epoch 1/2: loss" in text and "epoch 2/2: loss" in text
    assert "'epoch': 2" in text  # the last cell's result
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    metrics = json.loads(
        volume_file(engine, state["container"], f"{folder}/artifacts/metrics.json")
    )
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
    volume_file(
        engine, state["container"], f"{folder}/artifacts/checkpoints/checkpoint-00000002.pt"
    )
    dockerx.cleanup(first, state)

    # a new job goes on from the first one's checkpoint
    again = djob(dockerx, 3, source, kind="notebook", path="train-classifier.ipynb",
                 parameters={"epochs": 3, "resume_from": f"{folder}/artifacts"})  # fmt: skip
    dockerx.before_start(again)
    state = dockerx.start(again)
    end = wait_end(dockerx, again, state, timeout=150)
    log = log_of(dockerx, again, state)
    assert end.outcome == "succeeded", log
    assert "checkpoint-00000002.pt (epoch 2)" in log
    assert "epoch 3/3: loss" in log and "epoch 1/3" not in log
    dockerx.cleanup(again, state)


def test_docker_job_is_adopted_and_stopped(
    dockerx: DockerExecutor, engine: docker.APIClient
) -> None:
    script = "import time\nprint('ready', flush=True)\ntime.sleep(300)\n"
    job = djob(dockerx, 4, script)
    dockerx.before_start(job)
    state = dockerx.start(job)
    wait_for(lambda: "ready" in log_of(dockerx, job, state), timeout=60)
    started_at = engine.inspect_container(state["container"])["State"]["StartedAt"]

    restarted = DockerExecutor(prefix=PREFIX)  # a restarted service, from the saved state
    saved = json.loads(json.dumps(state))
    assert restarted.poll(job, saved) is None
    restarted.before_start(job)  # repeated: the same container, not a second one
    assert restarted.start(job) == saved
    assert len(engine.containers(filters={"name": f"{PREFIX}-4"})) == 1
    assert engine.inspect_container(state["container"])["State"]["StartedAt"] == started_at

    restarted.stop(job, saved, grace=10)
    end = restarted.poll(job, saved)
    assert end is not None and end.outcome == "terminated" and end.exit_code == 143
    restarted.stop(job, saved, grace=1)  # idempotent
    restarted.cleanup(job, saved)
    assert not engine.containers(all=True, filters={"name": f"{PREFIX}-4"})


def test_docker_stop_kills_a_job_that_ignores_sigterm(
    dockerx: DockerExecutor, engine: docker.APIClient
) -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    job = djob(dockerx, 5, script)
    dockerx.before_start(job)
    state = dockerx.start(job)
    wait_for(lambda: "ready" in log_of(dockerx, job, state), timeout=60)
    dockerx.stop(job, state, grace=1)
    end = dockerx.poll(job, state)
    assert end is not None and end.outcome == "terminated" and end.exit_code == 137
    assert "did not stop within 1 s" in end.error
    dockerx.cleanup(job, state)


def test_docker_job_out_of_memory_says_so(dockerx: DockerExecutor) -> None:
    script = "print('allocating', flush=True)\nhog = b'x' * (1024 * 2**20)\nprint('survived')\n"
    job = replace(djob(dockerx, 6, script), mem_limit=256 * 2**20)
    dockerx.before_start(job)
    state = dockerx.start(job)
    end = wait_end(dockerx, job, state, timeout=60)
    log = log_of(dockerx, job, state)
    assert end.outcome == "failed" and end.out_of_memory, log
    assert end.error == "the job ran out of memory (the profile's mem_limit)"
    assert "allocating" in log and "survived" not in log
    dockerx.cleanup(job, state)


def test_docker_notice_reaches_the_job_and_the_next_attempt_starts_clean(
    dockerx: DockerExecutor,
) -> None:
    """notify puts the notice where $GPUHUB_PREEMPT_FILE says and signals the container:
    the job's handler reads the file. The job's second attempt (a new lease) gets a
    container of its own and neither the first one's exit status nor its notice."""
    job = djob(dockerx, 9, NOTICED)
    dockerx.before_start(job)
    state = dockerx.start(job)
    wait_for(lambda: "attempt 1 ready" in log_of(dockerx, job, state), timeout=60)
    dockerx.notify(job, state, NOTICE)
    end = wait_end(dockerx, job, state, timeout=30)
    assert end.outcome == "succeeded" and end.exit_code == 0
    assert f"notice: {json.dumps(NOTICE, sort_keys=True)}" in log_of(dockerx, job, state)
    dockerx.notify(job, state, NOTICE)  # once it has ended: nothing, and no error
    dockerx.cleanup(job, state)

    again = replace(job, attempt=2, retried_after="preempted",
                    lease={**job.lease, "id": job.lease["id"] + 1})  # fmt: skip
    dockerx.before_start(again)
    second = dockerx.start(again)
    assert second["container"] != state["container"]
    wait_for(lambda: "attempt 2 ready" in log_of(dockerx, again, second), timeout=60)
    assert dockerx.poll(again, second) is None  # the first attempt's exit status is gone
    log = log_of(dockerx, again, second)
    assert "--- attempt 2 (after preempted) ---" in log and log.count("notice:") == 1
    dockerx.stop(again, second, grace=5)
    assert dockerx.poll(again, second).outcome == "terminated"
    dockerx.cleanup(again, second)


def test_docker_multi_gpu_script_runs_under_torchrun(dockerx: DockerExecutor) -> None:
    script = (
        "import os\n"
        "print(f\"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}\", flush=True)\n"
    )
    job = replace(djob(dockerx, 7, script), gpus=2)
    dockerx.before_start(job)
    state = dockerx.start(job)
    end = wait_end(dockerx, job, state, timeout=90)
    log = log_of(dockerx, job, state)
    assert end.outcome == "succeeded", log
    assert "rank 0 of 2" in log and "rank 1 of 2" in log
    dockerx.cleanup(job, state)


def test_docker_spec_for_real_gpus_and_refused_root(dockerx: DockerExecutor) -> None:
    lease = {"id": 77, "profile": "gpu-1", "devices": [{"uuid": "GPU-aaaa", "simulated": False}]}
    job = replace(djob(dockerx, 8, "print()"), lease=lease, gpus=1)
    spec = dockerx.container_spec(job)
    assert spec["host_config"]["device_requests"] == [
        {"Driver": "nvidia", "DeviceIDs": ["GPU-aaaa"], "Capabilities": [["gpu"]]}
    ]
    assert spec["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert spec["labels"]["gpuhub.lease"] == "77" and spec["labels"]["gpuhub.profile"] == "gpu-1"
    assert spec["hostname"] == f"{PREFIX}-8"
    assert spec["host_config"]["extra_hosts"] == {f"{PREFIX}-8": "127.0.0.1"}
    assert spec["command"] == ["python", "-m", "gpuhub.jobs.runner", f"{HOME}/gpuhub-jobs/8-train"]
    with pytest.raises(ContainerSpecError, match="must not run as root"):
        DockerExecutor(prefix=PREFIX, container_user="0:0").container_spec(job)
