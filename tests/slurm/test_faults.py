"""Faults on the real local cluster (``scripts/slurm``), each ending with the lease released
once and the ledger exact (issue 16, section 5):

* a node set DOWN under a job (Slurm ends it ``NODE_FAIL``): the job's attempt ends
  ``node_failed``, naming the node and Slurm's reason, and gpuhub retries it (its retry
  policy's one ``node_failed`` retry by default; with none, the job ends ``node_failed``);
  under a server: the server stops, the hub's log says why; never requeued by Slurm;
* ``slurmctld`` away and back mid-job (polls fail, the job is not ended; it goes on and ends
  once, submitted once) and mid-spawn (the server comes up once);
* the hub and the gpuhub service restarted while 2 servers and 3 jobs run: all re-adopted;
* bad input on the Slurm-backed pool: refused with a sentence, nothing submitted.

Setting a node DOWN kills every job on it, other tests' too: these tests take gpu2 (the
smaller H100 node), and each resumes it at its end. Jobs, servers and drain reasons are
named ``gpuhub-test...``, so the cluster fixture cleans up after a failed test.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest

from tests.slurm.slurm_hub import slurm_hub
from tests.slurm.slurm_site import WAIT_FOR_FLAG, Site
from tests.slurm.test_spawner_slurm import answers, lease, spawn_ready
from tests.support.hub import unique
from tests.support.slurm import (
    controller_away,
    node_down,
    slurm,
    submitted,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)

H100 = [{"name": "h100", "default": True, "shape": {"kind": "gpu", "count": 1, "model": "H100"}}]
#: The hub's jobs run on Slurm too, with its servers' homes and job names; a quicker
#: inventory refresh (a node that came back takes work soon), room in the quota for five GPUs.
JOBS_ON_SLURM = """
c.GpuhubService.job_executor_class = "gpuhub.jobs.slurm.SlurmExecutor"
c.SlurmExecutor.slurm_conf = c.SlurmInventory.slurm_conf
c.SlurmExecutor.home_dir_template = c.GPUSlurmSpawner.home_dir_template
c.SlurmExecutor.job_name_prefix = c.GPUSlurmSpawner.job_name_prefix + "job-"
c.JobManager.tick_interval = 0.3
c.GpuhubService.inventory_refresh_interval = 2
c.GpuhubService.default_user_quota = {"max_units": 8, "gpu_hours": 1000, "period": "week"}
"""


def ended_once(job: str) -> str:
    """The state Slurm ended ``job`` in, checked never to have been requeued."""
    record = slurm("scontrol", "show", "job", "-o", job)
    assert " Requeue=0 Restarts=0 " in record, record  # --no-requeue: gpuhub decides
    return record.split(" JobState=", 1)[1].split()[0]


# -- in the test process: the scheduler and the job manager, a fake clock ------------------


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    """A fresh scheduler database (SQLite only: the Slurm side is what is tested here)."""
    path = tmp_path / "gpuhub.sqlite"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def test_a_job_on_a_failed_node_ends_its_attempt_node_failed_its_lease_once_and_is_retried(
    cluster, sqlite_url, tmp_path, clock
):
    site = Site(cluster, sqlite_url, tmp_path / "homes", clock, profiles=H100, nodes=["gpu2"])
    try:
        job = site.submit(WAIT_FOR_FLAG)  # the default policy: one node_failed retry
        # running in Slurm (other tests' jobs may hold gpu2's GPUs for a while)
        job = site.until(job.id, "the job placed", lambda j: "placed" in (j.state or {}), 60)
        slurm_job, lease_id = job.state["slurm_job"], job.lease_id
        assert site.manager.scheduler.get(lease_id).node == "gpu2"
        site.clock.advance(1800)
        with node_down("gpu2", "node failure") as reason:
            job = site.until(job.id, "the attempt's end", lambda j: bool(j.attempts))
        (attempt,) = job.attempts
        assert (job.status, job.attempt, job.lease_id) == ("queued", 2, None), job
        assert attempt["status"] == attempt["failure"] == "node_failed"
        assert attempt["reason"] == (
            f"node gpu2 failed: {reason} (Slurm job {slurm_job} ended with it)"
        )
        assert attempt["gpu_hours"] == pytest.approx(0.5)
        assert ended_once(slurm_job) == "NODE_FAIL"
        assert site.slurm_jobs() == [slurm_job]
        ended = site.manager.scheduler.get(lease_id)
        assert ended.status == "released" and ended.end_reason == f"job {job.id} node_failed"
        site.until(job.id, "nothing more", lambda j: True)  # another tick books nothing
        job = asyncio.run(site.manager.cancel(job.id, by="alice"))  # in its backoff
        assert job.status == "cancelled" and job.gpu_hours == pytest.approx(0.5)
        assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(0.5)
        [row] = site.manager.scheduler.usage(0, site.clock() + 1, by=("user",))
        assert row["leases"] == 1
    finally:
        site.stop_all()


def test_a_job_pending_on_a_node_that_went_down_ends_node_failed_and_gives_its_gpu_back(
    cluster, sqlite_url, tmp_path, clock
):
    """gpuhub placed the job on gpu2 from a picture of the pool taken before gpu2 went
    down: Slurm keeps it pending there (it is pinned), so gpuhub cancels it once the node
    has taken no work for ``stranded_after_s`` (0 here) and ends it ``node_failed``."""
    site = Site(
        cluster, sqlite_url, tmp_path / "homes", clock, profiles=H100, nodes=["gpu2"],
        executor={"stranded_after_s": 0},
    )  # fmt: skip
    try:
        with node_down("gpu2", "pending test") as reason:
            job = site.submit(WAIT_FOR_FLAG, retry={"node_failed": 0})  # not run again
            [slurm_job] = site.slurm_jobs()
            assert slurm("squeue", "-h", "-j", slurm_job, "-o", "%T").strip() == "PENDING"
            job = site.until(job.id, "the job's end", lambda j: j.ended)
            assert job.status == "node_failed", job
            assert job.reason == (
                f"node gpu2 takes no new work (DOWN: {reason}): Slurm job {slurm_job} never "
                "started there, and was cancelled"
            )
            assert slurm("squeue", "-h", "-j", slurm_job, "-o", "%T").strip() in ("", "CANCELLED")
        lease = site.manager.scheduler.get(job.lease_id)
        assert lease.status == "released" and lease.end_reason == f"job {job.id} node_failed"
        assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(0.0)
    finally:
        site.stop_all()


def test_a_job_goes_on_while_slurmctld_is_away_and_ends_once(cluster, sqlite_url, tmp_path,
                                                             clock, caplog):  # fmt: skip
    site = Site(cluster, sqlite_url, tmp_path / "homes", clock, command_timeout=4)
    try:
        job = site.submit(WAIT_FOR_FLAG)
        job = site.until(job.id, "the job placed", lambda j: "placed" in (j.state or {}))
        first = job.state["slurm_job"]
        site.clock.advance(600)
        with controller_away():  # the poll fails (SlurmError): logged, the job not ended
            job = site.until(job.id, "a tick", lambda j: True)
            assert job.status == "running", job
            assert "job tick failed" in caplog.text
        (site.homes / "alice" / "go").touch()
        job = site.until(job.id, "the job's end", lambda j: j.ended, timeout=60)
        assert job.status == "succeeded", job
        assert site.slurm_jobs() == [first]  # submitted once
        ended = site.manager.scheduler.get(job.lease_id)
        assert ended.status == "released" and ended.end_reason == f"job {job.id} succeeded"
        assert site.manager.scheduler.view.total_gpu_hours() == pytest.approx(600 / 3600)
    finally:
        site.stop_all()


def test_a_job_granted_while_slurmctld_is_away_is_submitted_once_it_is_back(
    cluster, sqlite_url, tmp_path, clock, caplog
):
    site = Site(cluster, sqlite_url, tmp_path / "homes", clock, command_timeout=4)
    try:
        with controller_away():  # sbatch cannot reach the controller: the job waits
            job = site.submit(WAIT_FOR_FLAG)
            assert job.status == "starting" and not job.state, job
            assert "waits for its engine" in caplog.text
            assert "Slurm's controller does not answer" in caplog.text
        job = site.until(job.id, "the job submitted", lambda j: j.status == "running", 60)
        (site.homes / "alice" / "go").touch()
        job = site.until(job.id, "the job's end", lambda j: j.ended, timeout=60)
        assert job.status == "succeeded", job
        assert site.slurm_jobs() == [job.state["slurm_job"]]  # submitted once
        ended = site.manager.scheduler.get(job.lease_id)
        assert ended.status == "released" and ended.end_reason == f"job {job.id} succeeded"
    finally:
        site.stop_all()


# -- through a real hub and the gpuhub service, jobs on Slurm too -------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[SimpleNamespace]:
    with slurm_hub(tmp_path_factory.mktemp("slurm-faults"), JOBS_ON_SLURM) as site:
        yield site


def user_with_client(hub) -> tuple[str, str, httpx.Client]:
    name = unique("faulty")
    token = hub.hub.add_user(name)
    return name, token, hub.hub.client(token)


def live_leases(hub, user: str) -> list[dict]:
    r = hub.admin.get("/leases", params={"user": user, "status": ["queued", "active"]})
    assert r.status_code == 200, r.text
    return r.json()["leases"]


@pytest.mark.parametrize(
    "shape, problem",
    [
        ({"kind": "gpu", "count": 5, "model": "H100"}, "no node has 5 whole H100 GPUs"),
        ({"kind": "gpu", "count": 1, "model": "B200"}, "no whole GPU in the pool is a B200"),
    ],
    ids=["5-h100", "b200"],
)
def test_a_shape_the_cluster_cannot_satisfy_is_refused_and_nothing_submitted(hub, shape,
                                                                             problem):  # fmt: skip
    user, _, client = user_with_client(hub)
    before = submitted(hub.prefix)
    with client:
        job = client.post("/jobs", json={"path": "x.py", "script": "print(1)", "shape": shape})
        held = client.post("/leases", json={"shape": shape})
        for r in (job, held):
            assert 400 <= r.status_code < 500, r.text
            assert problem in r.json()["message"], r.text
        # gpuhub's requests carry no partition: a field for one is refused by name
        r = client.post("/jobs", json={"path": "x.py", "script": "1", "partition": "debug"})
        assert r.status_code == 400 and "partition" in r.text, r.text
        assert client.get("/jobs").json()["jobs"] == []
    assert live_leases(hub, user) == []
    assert submitted(hub.prefix) == before  # nothing went to Slurm


def test_a_server_on_a_failed_node_stops_and_says_why(hub):
    user = unique("ned")
    hub.hub.add_user(user)
    state = spawn_ready(hub, user)["state"]
    node = state["slurm_node"]  # gpu2 on a fresh pool: the best fit for one H100
    with node_down(node, "server node failure") as reason:
        hub.hub.wait_server(user, lambda s: s is None, timeout=30)
    assert ended_once(state["slurm_job"]) == "NODE_FAIL"
    said = f"Slurm job {state['slurm_job']} ended because node {node} failed: {reason}"
    assert said in hub.hub.log_tail(400)
    wait_for("the lease released", lambda: lease(hub, state["lease_id"])["status"] == "released")
    r = hub.admin.get("/leases", params={"user": user, "status": ["released", "active"]})
    assert [x["id"] for x in r.json()["leases"]] == [state["lease_id"]]  # once


def test_a_server_spawning_while_slurmctld_restarts_comes_up_once(hub):
    user = unique("cora")
    token = hub.hub.add_user(user)
    name = f"{hub.prefix}{user}"
    said: list[httpx.Response] = []  # the POST's answer (202 once the spawn is slow)
    spawning = threading.Thread(
        target=lambda: said.append(hub.hub.spawn(user, {"profile": "h100"})), daemon=True
    )
    spawning.start()
    wait_for("the server's job submitted", lambda: submitted(name), 30)
    with controller_away():
        time.sleep(4)  # the server reports its port meanwhile; its node waits for Slurm
    server = hub.hub.wait_ready(user, timeout=60)
    spawning.join(30)
    assert said and said[0].status_code in (201, 202), said
    assert submitted(name) == [server["state"]["slurm_job"]]  # once
    assert answers(hub, user, token)
    assert lease(hub, server["state"]["lease_id"])["status"] == "active"
    hub.hub.stop_server(user)
    assert lease(hub, server["state"]["lease_id"])["status"] == "released"


def test_a_server_started_while_slurmctld_is_away_is_submitted_once_it_is_back(hub):
    user = unique("cleo")
    token = hub.hub.add_user(user)
    name = f"{hub.prefix}{user}"
    said: list[httpx.Response] = []
    with controller_away():
        spawning = threading.Thread(
            target=lambda: said.append(hub.hub.spawn(user, {"profile": "h100"})), daemon=True
        )
        spawning.start()
        wait_for("the spawn pending", lambda: (hub.hub.server(user) or {}).get("pending"), 30)
        # the start tries again every 2 s, and the spawn page says why
        events = hub.hub.progress_events(
            user, lambda e: "controller does not answer" in e.get("message", ""), timeout=40
        )
    server = hub.hub.wait_ready(user, timeout=90)
    spawning.join(30)
    assert said and said[0].status_code in (201, 202), said
    assert "trying again" in events[-1]["message"], events
    assert submitted(name) == [server["state"]["slurm_job"]]  # once
    assert answers(hub, user, token)
    hub.hub.stop_server(user)
    assert lease(hub, server["state"]["lease_id"])["status"] == "released"


def test_servers_and_jobs_are_readopted_by_a_restarted_hub_and_service(hub):
    """Two servers and three jobs run on Slurm; the hub process goes away with its proxy and
    its gpuhub service, and comes back (``GPUHUB_KEEP_SERVERS=1``): each server answers
    through the proxy on its lease, each job runs on and ends once, nothing is submitted
    again, and every lease is released once."""
    people = [user_with_client(hub) for _ in range(2)]
    servers = {user: spawn_ready(hub, user)["state"] for user, _, _ in people}
    bodies = [("L4", 0), ("L4", 1), ("H100", 0)]  # (model, whose)
    jobs = []
    for model, whose in bodies:
        body = {"path": "wait.py", "script": WAIT_FOR_FLAG,
                "shape": {"kind": "gpu", "count": 1, "model": model}}  # fmt: skip
        r = people[whose][2].post("/jobs", json=body)
        assert r.status_code in (200, 201, 202), r.text
        jobs.append((people[whose][2], r.json()["id"]))

    def views() -> list[dict]:
        return [client.get(f"/jobs/{job_id}").json() for client, job_id in jobs]

    def all_placed() -> list[dict] | None:
        found = views()
        return found if all(j["status"] == "running" for j in found) else None

    before = wait_for("the jobs running", all_placed, 30)
    slurm_jobs = submitted(f"{hub.prefix}job-")
    assert len(slurm_jobs) == 3
    hub.hub.restart()
    for (user, token, _), state in zip(people, servers.values(), strict=True):
        after = hub.hub.wait_ready(user, timeout=30)["state"]
        assert (after["slurm_job"], after["lease_id"]) == (state["slurm_job"], state["lease_id"])
        assert submitted(f"{hub.prefix}{user}") == [state["slurm_job"]]
        assert lease(hub, state["lease_id"])["status"] == "active"
        assert answers(hub, user, token)
    assert [(j["status"], j["lease_id"]) for j in views()] == [
        ("running", j["lease_id"]) for j in before
    ]
    for user, _, _ in people:
        (hub.homes / user / "go").touch()

    def all_ended() -> list[dict] | None:
        found = views()
        return found if all(j["ended_at"] for j in found) else None

    ended = wait_for("the jobs' end", all_ended, 60)
    assert [j["status"] for j in ended] == ["succeeded"] * 3, ended
    for (client, _), j in zip(jobs, ended, strict=True):
        held = lease(hub, j["lease_id"])
        assert held["status"] == "released" and held["end_reason"] == f"job {j['id']} succeeded"
        assert j["gpu_hours"] == pytest.approx(held["gpu_hours"], abs=1e-6)  # booked once
        log = client.get(f"/jobs/{j['id']}/log").json()["text"]
        assert log.count("flag seen") == 1, log  # it ran once
    assert submitted(f"{hub.prefix}job-") == slurm_jobs  # each submitted once
    for user, _, client in people:
        hub.hub.stop_server(user)
        assert lease(hub, servers[user]["lease_id"])["status"] == "released"
        client.close()
