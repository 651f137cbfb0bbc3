"""The Slurm spawner's plain parts, without a cluster: the job's names, ``sbatch``'s
command line, the environment file and batch script, Slurm's answers read back, the port
report and the saved state, from captured output. Its Slurm commands run against the real
local cluster in tests/slurm (test_spawner_commands.py, test_spawner_slurm.py,
test_faults.py)."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from gpuhub.profiles import load_profiles, validate_user_options
from gpuhub.spawners.errors import GPUSpawnError
from gpuhub.spawners.slurm import GPUSlurmSpawner, _lease_of
from gpuhub.spawners.slurm_batch import (
    BatchRequest,
    batch_script,
    differing_indices,
    ended_why,
    env_file_text,
    file_stem,
    gres_for,
    job_environment,
    job_name,
    job_status,
    limits_of,
    minutes_of,
    plain_name,
    sbatch_argv,
    status_message,
)
from gpuhub.spawners.slurm_node import report_url, send_report, with_port
from gpuhub.spawners.slurm_port import PortRefused, parse_report
from jupyterhub.objects import Hub

from tests.support.slurm_output import JOBS

MODELS = {"h100": "H100-80GB", "l4": "L4-24GB"}
H100 = {"uuid": "GPU-slurm-gpu1-2", "index": 2, "model": "H100-80GB", "simulated": True}
LEASE = {"id": 7, "status": "active", "node": "gpu1", "devices": [H100]}
PROFILES = load_profiles(
    [
        {"name": "h100", "default": True, "shape": {"kind": "gpu", "count": 1},
         "cpu_limit": 1.5, "mem_limit": "512M"},
        {"name": "cpu", "shape": None},
    ]
)  # fmt: skip


def job_line(job_id: str) -> str:
    """The captured ``scontrol show job -d -o`` line of job ``job_id``."""
    [line] = [x for x in JOBS.splitlines() if x.startswith(f"JobId={job_id} ")]
    return line + "\n"


# -- names ----------------------------------------------------------------------------


def test_names_are_plain_and_never_meet():
    assert job_name("jupyter-", "alice") == "jupyter-alice"
    assert job_name("jupyter-", "alice", "gpu") == "jupyter-alice.gpu"
    assert plain_name("a.b@c+d-e_f") == "a.b@c+d-e_f"
    odd = plain_name("a b")
    assert odd.startswith("a_b-") and odd != plain_name("a_b") != plain_name("a/b")
    assert job_name("p-", "Zoë Smith") == "p-" + plain_name("Zoë Smith")
    assert " " not in job_name("p-", "Zoë Smith")
    assert file_stem() == "jupyter" and file_stem("my gpu") == "jupyter." + plain_name("my gpu")


# -- what sbatch is told ---------------------------------------------------------------


def test_gres_of_a_lease():
    assert gres_for([H100], MODELS) == "gpu:h100:1"
    assert gres_for([H100, {**H100, "index": 3}], MODELS) == "gpu:h100:2"
    assert gres_for([{"uuid": "GPU-x", "model": "A40"}], MODELS) == "gpu:A40:1"  # kept
    assert gres_for([{"uuid": "GPU-x"}], MODELS) == "gpu:1"  # no model: any GPU
    assert gres_for([], MODELS) is None
    with pytest.raises(ValueError, match="whole GPUs only"):
        gres_for([{**H100, "profile": "1g.10gb"}], MODELS)
    with pytest.raises(ValueError, match="whole GPUs only"):
        gres_for([{**H100, "shared_by": 4}], MODELS)


def test_limits_and_time():
    assert limits_of(1.5, 512 << 20) == (2, 512)
    assert limits_of(None, None) == (None, None)
    assert limits_of(2, (1 << 30) + 1) == (2, 1025)
    assert minutes_of(None) is None and minutes_of(60) == 1 and minutes_of(61) == 2
    assert minutes_of(86400) == 1440


def test_sbatch_argv_pins_the_job_and_puts_the_admins_options_first():
    req = BatchRequest(
        name="jupyter-alice", comment="gpuhub:lease=7", script="/h/a/.gpuhub/servers/jupyter.sh",
        output="/h/a/.gpuhub/servers/jupyter.log", chdir="/h/a", node="gpu1", gres="gpu:h100:1",
        cpus=2, mem_mb=512, minutes=1440, partition="gpu", account="lab",
        owner=("--uid=alice", "--gid=1001"),
        extra=("--qos=interactive",),
    )  # fmt: skip
    assert sbatch_argv(req) == [
        "sbatch", "--parsable", "--export=ALL", "--no-requeue", "--qos=interactive",
        "--uid=alice", "--gid=1001", "--partition=gpu", "--account=lab", "--nodelist=gpu1",
        "--gres=gpu:h100:1", "--cpus-per-task=2", "--mem=512M", "--time=1440",
        "--job-name=jupyter-alice", "--comment=gpuhub:lease=7",
        "--output=/h/a/.gpuhub/servers/jupyter.log", "--chdir=/h/a",
        "/h/a/.gpuhub/servers/jupyter.sh",
    ]  # fmt: skip
    bare = BatchRequest(name="n", comment="gpuhub:server", script="s", output="o", chdir="c")
    assert sbatch_argv(bare) == [
        "sbatch", "--parsable", "--export=ALL", "--no-requeue", "--job-name=n",
        "--comment=gpuhub:server", "--output=o", "--chdir=c", "s",
    ]  # fmt: skip


def test_the_environment_leaves_the_devices_to_slurm_only_when_it_allocates_them():
    env = {"CUDA_VISIBLE_DEVICES": "GPU-slurm-gpu1-2", "NVIDIA_VISIBLE_DEVICES": "GPU-slurm-gpu1-2",
           "GPUHUB_LEASE_ID": "7"}  # fmt: skip
    assert job_environment(env, slurm_sets_devices=True) == {"GPUHUB_LEASE_ID": "7"}
    cpu = {"CUDA_VISIBLE_DEVICES": "", "GPUHUB_NO_GPU": "1"}
    assert job_environment(cpu, slurm_sets_devices=False) == cpu  # no GRES: stays off GPUs


def test_env_file_and_script():
    text = env_file_text({"TOKEN": "it's $secret", "B": "two words"})
    assert text == "export B='two words'\nexport TOKEN='it'\"'\"'s $secret'\n"
    with pytest.raises(ValueError, match="not an environment variable name"):
        env_file_text({"BAD NAME": "x"})
    script = batch_script(title="Jupyter server of alice", env_file="/h/a b/jupyter.env",
                          command=["/opt/py", "-m", "gpuhub.spawners.slurm_node", "--",
                                   "jupyterhub-singleuser", "--allow-root"])  # fmt: skip
    assert script.splitlines() == [
        "#!/bin/bash",
        "# Jupyter server of alice, written by gpuhub",
        "set -e",
        ". '/h/a b/jupyter.env'",
        "rm -f '/h/a b/jupyter.env'",
        "exec /opt/py -m gpuhub.spawners.slurm_node -- jupyterhub-singleuser --allow-root",
    ]


# -- Slurm's answers read back ---------------------------------------------------------


def test_job_status_of_running_pending_and_ended_jobs():
    running = job_status(job_line("8"), "8")
    assert running is not None and running.state == "RUNNING" and running.node == "gpu1"
    assert running.gpu_indices == (1, 2) and running.exit_code == 0 and not running.ended
    assert status_message(running) == (
        "Slurm job 8 runs on gpu1; waiting for the server to report its port"
    )
    pending = job_status(job_line("11"), "11")
    assert pending is not None and pending.pending and pending.node is None
    assert status_message(pending) == (
        "Slurm job 11 is pending: waiting for the node's resources to be free (Resources)"
    )
    cancelled = job_status(job_line("1"), "1")
    assert cancelled is not None and cancelled.ended and cancelled.exit_code == 0
    assert ended_why(cancelled) == "was cancelled outside gpuhub (scancel)"
    assert job_status(JOBS, "99") is None  # not in the output
    assert "no longer known to Slurm" in ended_why(None)


def test_ended_reasons_name_the_cause():
    def ended(state: str, code: int | None = None):
        line = job_line("1").replace("JobState=CANCELLED", f"JobState={state}")
        status = job_status(line.replace("ExitCode=0:15", f"ExitCode={code or 0}:0"), "1")
        assert status is not None and status.ended
        return ended_why(status)

    assert ended("TIMEOUT") == "reached its Slurm time limit"
    assert ended("NODE_FAIL") == "ended because its node failed"
    assert ended("FAILED", 1) == "failed (exit status 1)"
    assert ended("COMPLETED") == "ended (the server exited)"


def test_indices_that_differ_from_the_lease():
    assert differing_indices([H100], (2,)) is None
    assert differing_indices([H100], (0,)) == ([2], [0])
    assert differing_indices([H100], ()) is None  # Slurm named none


# -- the port report -----------------------------------------------------------------------


def test_port_reports_are_read_strictly():
    assert parse_report({"port": 8888, "slurm_job": "12"}) == (8888, "12")
    for bad in ({"port": 8888}, {"port": "8888", "slurm_job": "12"},
                {"port": 0, "slurm_job": "12"}, {"port": 70000, "slurm_job": "12"},
                {"port": True, "slurm_job": "12"}, {"port": 1, "slurm_job": "12; rm"},
                {"port": 1, "slurm_job": "1", "ip": "10.0.0.1"}, [8888], None):  # fmt: skip
        with pytest.raises(ValueError):
            parse_report(bad)


def test_report_url_and_bind_url():
    api = "http://hub:8081/hub/api"
    assert report_url(api, "alice") == "http://hub:8081/hub/api/users/alice/server/slurm-port"
    assert report_url(api + "/", "a b", "my/gpu") == (
        "http://hub:8081/hub/api/users/a%20b/servers/my%2Fgpu/slurm-port"
    )
    assert with_port("http://0.0.0.0:0/user/alice/", 5000) == "http://0.0.0.0:5000/user/alice/"
    assert with_port("http://[::1]:0/user/a/", 5) == "http://[::1]:5/user/a/"


@pytest.fixture
def hub_api() -> Iterator[SimpleNamespace]:
    """A tiny HTTP server standing in for the hub's port handler: answers ``status``."""
    seen: list[dict] = []
    box = SimpleNamespace(status=200, seen=seen)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "auth": self.headers["Authorization"],
                         "body": json.loads(body)})  # fmt: skip
            self.send_response(box.status)
            self.end_headers()
            self.wfile.write(b'{"message": "no"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    yield box
    server.shutdown()


def test_the_node_reports_with_the_servers_token(hub_api):
    env = {"JUPYTERHUB_API_URL": hub_api.url, "JUPYTERHUB_USER": "alice",
           "JUPYTERHUB_API_TOKEN": "s3cret", "SLURM_JOB_ID": "12"}  # fmt: skip
    send_report(env, 4567)
    assert hub_api.seen == [{"path": "/hub/api/users/alice/server/slurm-port",
                             "auth": "token s3cret", "body": {"port": 4567, "slurm_job": "12"}}]  # fmt: skip
    hub_api.status = 409
    with pytest.raises(SystemExit, match="refused port 4567 \\(409\\)"):
        send_report(env, 4567)


# -- the spawner ------------------------------------------------------------------------


def spawner(tmp_path, **kw) -> GPUSlurmSpawner:
    user = SimpleNamespace(name="alice", groups=[], url="/user/alice/", escaped_name="alice")
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    s = GPUSlurmSpawner(user=user, hub=hub, home_dir_template=str(tmp_path / "{username}"),
                        profiles=[p.model_dump() for p in PROFILES], **kw)  # fmt: skip
    return s


def test_state_round_trip(tmp_path):
    s = spawner(tmp_path)
    s.load_state({"gpuhub_state_version": 1, "lease_id": 7, "slurm_job": "12",
                  "slurm_node": "gpu1"})  # fmt: skip
    assert (s.slurm_job, s.slurm_node, s.lease_id) == ("12", "gpu1", 7)
    assert s.get_state() == {"gpuhub_state_version": 1, "lease_id": 7, "slurm_job": "12",
                             "slurm_node": "gpu1"}  # fmt: skip
    fresh = spawner(tmp_path)
    fresh.load_state({"slurm_job": "12; rm -rf", "slurm_node": "gpu1"})
    assert fresh.slurm_job is None and fresh.get_state() == {}
    s.slurm_job = None
    s.lease_id = None  # (released elsewhere)
    assert s.get_state() == {}


async def test_prepare_pins_the_job_to_the_lease(tmp_path):
    s = spawner(tmp_path, max_runtime_s=3600, job_name_prefix="jupyter-")
    await s.prepare_server(validate_user_options({"profile": "h100"}, PROFILES, []), LEASE)
    req = s.batch_request()
    assert (req.node, req.gres, req.cpus, req.mem_mb, req.minutes) == (
        "gpu1",
        "gpu:h100:1",
        2,
        512,
        60,
    )
    assert req.comment == "gpuhub:lease=7" and req.name == "jupyter-alice"
    assert req.script == str(tmp_path / "alice" / ".gpuhub" / "servers" / "jupyter.sh")
    assert req.chdir == str(tmp_path / "alice")
    await s.prepare_server(validate_user_options({"profile": "cpu"}, PROFILES, []), None)
    cpu = s.batch_request()
    assert cpu.node is None and cpu.gres is None and cpu.comment == "gpuhub:lease=none"
    mig = {**LEASE, "devices": [{**H100, "profile": "1g.10gb"}]}
    with pytest.raises(GPUSpawnError, match="whole GPUs only") as e:
        await s.prepare_server(validate_user_options({"profile": "h100"}, PROFILES, []), mig)
    assert e.value.status_code == 400


def test_the_environment_puts_the_nodes_python_first(tmp_path):
    s = spawner(tmp_path, python="/opt/gpuhub/bin/python")
    s.api_token = "tok"
    env = s.get_env()
    assert env["PATH"].split(":")[0] == "/opt/gpuhub/bin"
    assert env["HOME"] == str(tmp_path / "alice")
    assert env["JUPYTERHUB_SERVICE_URL"].startswith("http://0.0.0.0:")  # binds on the node
    assert s.server_command()[:4] == ["/opt/gpuhub/bin/python", "-m",
                                      "gpuhub.spawners.slurm_node", "--"]  # fmt: skip


async def test_a_port_report_is_taken_only_from_the_awaited_job(tmp_path):
    s = spawner(tmp_path)
    with pytest.raises(PortRefused, match="not waiting"):
        s.port_reported(5000, "8")
    s._port_wanted = asyncio.get_running_loop().create_future()
    s.port_reported(5000, "3")  # before sbatch answered: kept, checked then
    assert s._early_report == ("3", 5000) and not s._port_wanted.done()
    s._waiting_job = "8"
    with pytest.raises(PortRefused, match="waits for Slurm job 8, not 9"):
        s.port_reported(5000, "9")
    s.port_reported(5001, "8")
    assert s._port_wanted.result() == 5001
    with pytest.raises(PortRefused, match="not waiting"):
        s.port_reported(5002, "8")


def test_lease_comments():
    assert _lease_of("gpuhub:lease=12", "gpuhub:") == 12
    assert _lease_of("gpuhub:lease=none", "gpuhub:") is None
    assert _lease_of("other:lease=12", "gpuhub:") is None
