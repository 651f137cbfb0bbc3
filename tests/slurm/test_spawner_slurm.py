"""Notebook servers on the real local cluster (``scripts/slurm``): a real JupyterHub with
``GPUSlurmSpawner``, the gpuhub service's pool read from Slurm (``SlurmInventory``).

A server is a Slurm job pinned where gpuhub placed its lease, with Slurm's device index
and the lease's variables in its environment; it reports its port to the hub and answers
through the proxy. Stopping cancels the job and releases the lease; a ``scancel`` from
outside is seen as a stopped server; a restarted hub re-adopts a running server; a job
that dies before it reports fails the spawn with Slurm's reason and frees the lease.

Jobs are named ``gpuhub-test-<run>-<user>``, so the cluster fixture cancels leftovers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import pytest
from gpuhub.spawners.slurm_batch import job_name

from tests.slurm.slurm_hub import jobs_named, slurm_hub
from tests.support import http
from tests.support.hub import unique
from tests.support.slurm import slurm, wait_for

pytestmark = pytest.mark.timeout(120)

BROKEN = """
def _broken(spawner):
    # a server whose job fails before it can report its port
    if spawner.user.name.startswith("broken"):
        spawner.python = "/bin/false"


c.Spawner.pre_spawn_hook = _broken
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The cluster and a hub on it, where users named ``broken-...`` get a failing job."""
    with slurm_hub(tmp_path_factory.mktemp("slurm-hub"), BROKEN) as site:
        yield site


def record(job: str) -> dict[str, str]:
    """``scontrol show job -d -o`` of ``job`` as a dict (first of repeated keys)."""
    from gpuhub.inventory.slurm import parse_record

    return dict(reversed(parse_record(slurm("scontrol", "show", "job", "-d", "-o", job))))


def job_state(job: str) -> str | None:
    """The job's state, or None once Slurm has forgotten it."""
    try:
        return record(job)["JobState"]
    except pytest.fail.Exception:
        return None


def environ_of(job: str) -> dict[str, str]:
    """The environment of the job's server (every node's processes run on this machine)."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            raw = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        env = dict(x.split("=", 1) for x in raw.split("\0") if "=" in x)
        if "jupyterhub-singleuser" in argv and env.get("SLURM_JOB_ID") == job:
            return env
    raise AssertionError(f"no server process of Slurm job {job}")


def spawn_ready(site, user: str, options: dict | None = None) -> dict:
    """Spawn ``user``'s server and wait until it is ready; its model (with its state)."""
    r = site.hub.spawn(user, options or {"profile": "h100"})
    assert r.status_code in (201, 202), r.text
    return site.hub.wait_ready(user, timeout=90)


def lease(site, lease_id: int) -> dict:
    r = site.admin.get(f"/leases/{lease_id}")
    assert r.status_code == 200, r.text
    return r.json()


def answers(site, user: str, token: str) -> bool:
    """Whether ``GET /user/NAME/api/status`` through the proxy with the user's token
    answers 200 (within a few seconds: a restarted hub adds its routes again)."""

    def probe() -> bool:
        r = http.get(f"{site.hub.url}/user/{quote(user)}/api/status",
                      headers={"Authorization": f"token {token}"}, timeout=20)  # fmt: skip
        return r.status_code == 200

    return wait_for(f"{user}'s server answering through the proxy", probe, 15)


def test_a_server_runs_as_a_slurm_job_pinned_to_its_lease(site):
    user = unique("alice") + " & bo"  # a space and a shell's '&', as JupyterHub allows
    token = site.hub.add_user(user)
    server = spawn_ready(site, user)
    state = server["state"]
    job, lease_id = state["slurm_job"], state["lease_id"]
    granted = lease(site, lease_id)
    assert granted["status"] == "active" and granted["node"] == state["slurm_node"]
    rec = record(job)
    assert rec["JobState"] == "RUNNING" and rec["BatchHost"] == granted["node"]
    assert rec["Comment"] == f"gpuhub:lease={lease_id}"
    assert rec["JobName"] == job_name(site.prefix, user)  # a plain name and a hash
    assert "gres:gpu:h100:1" in rec["TresPerNode"], rec
    assert answers(site, user, token)

    env = environ_of(job)
    assert env["GPUHUB_LEASE_ID"] == str(lease_id) and env["GPUHUB_SIMULATED"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"].isdigit()  # Slurm's index, not gpuhub's uuid
    assert env["JUPYTERHUB_API_TOKEN"] and env["JUPYTERHUB_USER"] == user
    folder = site.homes / user / ".gpuhub" / "servers"
    assert not (folder / "jupyter.env").exists()  # read and deleted by the batch script
    script = (folder / "jupyter.sh").read_text()
    assert env["JUPYTERHUB_API_TOKEN"] not in script
    assert env["JUPYTERHUB_API_TOKEN"] not in slurm("scontrol", "show", "job", job)

    def report(token: str) -> int:  # a port report, as the node sends it
        url = f"{site.hub.url}/hub/api/users/{quote(user)}/server/slurm-port"
        body = {"port": 1234, "slurm_job": job}
        return http.post(url, json=body, headers={"Authorization": f"token {token}"}).status_code

    assert report(token) == 403  # the user's own token is not the server's
    assert report(site.hub.admin_token) == 404  # a service has no server
    assert report(env["JUPYTERHUB_API_TOKEN"]) == 409  # the server's, but nothing waits

    site.hub.stop_server(user, timeout=60)
    assert job_state(job) in (None, "CANCELLED", "COMPLETED")
    assert lease(site, lease_id)["status"] == "released"


def test_progress_follows_the_slurm_job(site):
    """The spawn page follows the job: submitted, (pending with Slurm's reason, or running
    and waiting for the report, when a poll catches it there), listening on its node."""
    user = unique("carol")
    site.hub.add_user(user)
    answers: list[httpx.Response] = []  # the POST answers once the server is ready
    spawning = threading.Thread(
        target=lambda: answers.append(site.hub.spawn(user, {"profile": "h100"})), daemon=True
    )
    spawning.start()
    try:
        site.hub.wait_server(user, lambda s: bool(s and s["pending"] == "spawn"), timeout=20)
        events = site.hub.progress_events(user, lambda e: e.get("ready") or "failed" in e, 90)
        spawning.join(30)
        messages = [e.get("message", "") for e in events]
        assert events[-1].get("ready"), messages
        submitted = [
            i for i, m in enumerate(messages) if re.fullmatch(r"Submitted Slurm job \d+", m)
        ]
        listens = [i for i, m in enumerate(messages) if re.match(r"The server listens on gpu\d", m)]
        assert submitted and listens and submitted[0] < listens[0], messages
        between = messages[submitted[0] + 1 : listens[0]]  # what Slurm said meanwhile, if any
        assert all(
            re.match(r"Slurm job \d+ (is pending: |runs on gpu\d; waiting for the server)", m)
            for m in between
        ), messages
        assert answers and answers[0].status_code in (201, 202), answers
    finally:
        spawning.join(30)
        if site.hub.server(user) is not None:
            site.hub.stop_server(user)


def test_a_scancel_from_outside_stops_the_server_and_frees_its_lease(site):
    user = unique("bob")
    site.hub.add_user(user)
    state = spawn_ready(site, user)["state"]
    slurm("scancel", state["slurm_job"])
    site.hub.wait_server(user, lambda s: s is None, timeout=30)
    wait_for(
        "the lease released", lambda: lease(site, state["lease_id"])["status"] == "released", 15
    )
    assert "was cancelled outside gpuhub (scancel)" in site.hub.log_tail(400)


def test_a_job_that_fails_before_reporting_fails_the_spawn(site):
    user = unique("broken")
    site.hub.add_user(user)
    r = site.hub.spawn(user, {"profile": "h100"})  # fails within the hub's slow_spawn_timeout
    assert r.status_code == 500, r.text
    assert re.fullmatch(
        r"Slurm job \d+ failed \(exit status 1\) before the server reported its port",
        r.json()["message"],
    ), r.text
    r = site.admin.get("/leases", params={"user": user, "status": ["active", "released"]})
    [held] = r.json()["leases"]
    wait_for("the lease released", lambda: lease(site, held["id"])["status"] == "released", 15)
    assert site.hub.server(user) is None
    assert not jobs_named(f"{site.prefix}{user}")


def test_a_cpu_profile_asks_slurm_for_no_gpu(site):
    user = unique("dave")
    token = site.hub.add_user(user)
    state = spawn_ready(site, user, {"profile": "cpu"})["state"]
    rec = record(state["slurm_job"])
    assert rec["Comment"] == "gpuhub:lease=none" and "lease_id" not in state
    assert "gpu" not in rec.get("TresPerNode", "")
    assert answers(site, user, token)
    assert environ_of(state["slurm_job"])["CUDA_VISIBLE_DEVICES"] == ""
    site.hub.stop_server(user)


def test_a_restarted_hub_readopts_a_running_server(site):
    user = unique("erin")
    token = site.hub.add_user(user)
    state = spawn_ready(site, user)["state"]
    site.hub.restart()
    after = site.hub.wait_ready(user, timeout=30)["state"]
    assert after["slurm_job"] == state["slurm_job"] and after["lease_id"] == state["lease_id"]
    assert jobs_named(f"{site.prefix}{user}") == [state["slurm_job"]]  # never submitted twice
    assert lease(site, state["lease_id"])["status"] == "active"
    assert answers(site, user, token)
    site.hub.stop_server(user)
    assert lease(site, state["lease_id"])["status"] == "released"


def test_the_lease_names_the_gpu_slurm_gave_the_server(site):
    """A job outside gpuhub takes the GPU gpuhub is about to grant (between two inventory
    refreshes, or just after one): Slurm runs the server on another GPU of the node, and
    the lease ends up naming that one (moved through ``PUT /leases/{id}/devices``, or
    granted there at once when a refresh saw the outside job first)."""
    user = unique("frank")
    site.hub.add_user(user)
    outside = [  # one GPU of each H100 node, wherever gpuhub places the server
        slurm(
            "sbatch", "--parsable", f"--job-name={site.prefix}outside", f"--nodelist={node}",
            "--gres=gpu:h100:1", "--output=/dev/null", "--wrap=sleep 120",
        ).strip()
        for node in ("gpu1", "gpu2")
    ]  # fmt: skip
    try:
        for job in outside:
            wait_for("the outside jobs running", lambda job=job: job_state(job) == "RUNNING")
        state = spawn_ready(site, user)["state"]
        held = record(state["slurm_job"])["GRES"]  # e.g. "gpu:h100:1(IDX:1)"
        index = int(re.search(r"IDX:(\d+)", held).group(1))
        granted = lease(site, state["lease_id"])
        assert granted["node"] == state["slurm_node"]
        assert [d["index"] for d in granted["devices"]] == [index]
        assert environ_of(state["slurm_job"])["CUDA_VISIBLE_DEVICES"] == str(index)
    finally:
        slurm("scancel", *outside)
        if site.hub.server(user) is not None:
            site.hub.stop_server(user)


@pytest.fixture(autouse=True)
def _no_leftover_env_files(site):
    yield
    leftovers = list(site.homes.rglob("*.env")) if site.homes.exists() else []
    assert not leftovers, leftovers
