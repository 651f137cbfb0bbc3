"""GPU-idle reclaim: warn, keep, reclaim notebook servers whose GPUs stay idle.

Policy and reclaimer on a real scheduler (SQLite and PostgreSQL) with the fake clock:
the warning and its lead time, keeping, reclaim with the reason in the ledger, jobs
never, executing kernels and open terminals as activity, group and profile rules, a
replaceable policy, a restart in between. Concurrency: reclaim, the user's release and an
admin's release of the same lease at once end it once and book it once. Then through a
real hub: a reclaimed lease's server is stopped with the gpuhub service's own token;
``POST /leases/{id}/keep`` and the new activity fields on the served API; the service's own
reclaimer (short windows by configuration, activity reported directly) stops a server and
books the reason once; JupyterLab in Chromium shows the warning and "Keep for 1 h" clears
it. Last, the hub configuration runs jupyterhub-idle-culler with its scopes, or not at all.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.profiles import load_profiles
from gpuhub.scheduler.activity import ActivityReport, LeaseNotActive
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.errors import SchedulerError
from gpuhub.scheduler.lease import iso
from gpuhub.service.reclaim import (
    Idleness,
    NotReclaimable,
    Reclaimer,
    default_idle_policy,
    fmt_duration,
)
from gpuhub.terms import job_label, server_label
from playwright.sync_api import expect
from traitlets import TraitError

from tests.support import http
from tests.support.browser import log_in
from tests.support.cli import cli_as, ok
from tests.support.hub import Hub, hub_config_with, hub_with_users, wait_for
from tests.support.scheduler import gpu, mig

POOL = "a: 4xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]"
H = 3600.0


def server_lease(s: Scheduler, user: str = "alice", **kw):
    """An active lease held for ``user``'s default server."""
    kw.setdefault("shape", gpu())
    lease = s.request(user=user, user_groups=kw.pop("groups", []), label=server_label(user), **kw)
    assert lease.status == "active"
    return lease


def report(s: Scheduler, lease, util: float | None = 0.0, **kw) -> None:
    """The lease's server reports ``util`` percent on each device over the last 30 s."""
    body = {
        "window_s": 30,
        "utilization_mean_pct": util,
        "utilization_max_pct": util,
        "memory_used_mb": 100.0,
        "devices": [
            {"uuid": d["uuid"], "utilization_mean_pct": util, "utilization_max_pct": util,
             "memory_used_mb": 100.0}
            for d in lease.devices
        ],
        **kw,
    }  # fmt: skip
    s.report_activity(lease.id, ActivityReport.model_validate(body, strict=True))


def tick(r: Reclaimer) -> list[int]:
    return asyncio.run(r.tick())


@pytest.fixture
def sched(make) -> Scheduler:
    return make(POOL)


@pytest.fixture
def reclaimer(sched, clock) -> Reclaimer:
    """The default rule: reclaim after 2 h idle, warn 30 min before, keep up to 4 h."""
    return Reclaimer(scheduler=sched, clock=clock)


def test_idle_server_is_warned_then_reclaimed_with_the_reason(sched, reclaimer, clock) -> None:
    lease = server_lease(sched)
    report(sched, lease, 80.0)
    assert tick(reclaimer) == [] and reclaimer.warning(lease.id) is None
    busy_at = clock.now
    clock.advance(60)
    report(sched, lease, 0.0)  # idle from here on
    clock.advance(1.5 * H - 61)
    assert tick(reclaimer) == [] and reclaimer.warning(lease.id) is None
    clock.advance(1)  # 1.5 h idle: the warning, 30 min before the stop
    report(sched, lease, 0.0)
    assert tick(reclaimer) == []
    assert reclaimer.warning(lease.id) == {
        "since": iso(busy_at),
        "reclaim_at": iso(busy_at + 2 * H),
        "can_keep_for": [3600, 14400],
    }
    clock.advance(0.5 * H - 10)
    assert tick(reclaimer) == [] and sched.live_lease(lease.id) is not None
    clock.advance(10)
    assert tick(reclaimer) == [lease.id]
    ended = sched.get(lease.id)
    assert ended.status == "released"
    assert ended.end_reason == "reclaimed: GPUs idle for 2 h"
    assert reclaimer.warning(lease.id) is None
    assert tick(reclaimer) == [] and reclaimer.reclaimed == 1  # exactly once


def test_activity_clears_the_warning(sched, reclaimer, clock) -> None:
    lease = server_lease(sched)
    report(sched, lease, 0.0)
    clock.advance(1.6 * H)
    report(sched, lease, 0.0)
    tick(reclaimer)
    assert reclaimer.warning(lease.id) is not None
    clock.advance(30)
    report(sched, lease, 42.0)  # busy again
    tick(reclaimer)
    assert reclaimer.warning(lease.id) is None
    clock.advance(1.9 * H)
    assert tick(reclaimer) == [] and sched.live_lease(lease.id) is not None


def test_threshold_decides_what_counts_as_busy(sched, clock) -> None:
    r = Reclaimer(scheduler=sched, clock=clock, default_rule={"threshold_pct": 20})
    lease = server_lease(sched)
    for _ in range(4):
        report(sched, lease, 10.0)  # below the rule's 20 %: idle
        tick(r)
        clock.advance(0.5 * H)
    assert tick(r) == [lease.id]  # 10 % is below the rule's 20 %: idle for 2 h


@pytest.mark.parametrize(
    "counts", [{"busy_kernels": 1, "terminals": 0}, {"busy_kernels": 0, "terminals": 2}]
)
def test_executing_kernels_and_open_terminals_count_as_activity(
    sched, reclaimer, clock, counts
) -> None:
    lease = server_lease(sched)
    for _ in range(10):  # 5 h of idle GPUs, but the notebook side is busy
        report(sched, lease, 0.0, **counts)
        assert tick(reclaimer) == []
        clock.advance(0.5 * H)
    assert reclaimer.warning(lease.id) is None
    report(sched, lease, 0.0, busy_kernels=0, terminals=0)
    tick(reclaimer)
    clock.advance(1.5 * H)
    tick(reclaimer)
    assert reclaimer.warning(lease.id) is not None


def test_jobs_are_never_reclaimed(sched, reclaimer, clock) -> None:
    job = sched.request(user="alice", user_groups=[], shape=gpu(), label=job_label("alice", 7))
    other = sched.request(user="alice", user_groups=[], shape=gpu(), label="")
    for _ in range(2):
        report(sched, job, 0.0)
        report(sched, other, 0.0)
        clock.advance(10 * H)
        assert tick(reclaimer) == []
    assert reclaimer.warning(job.id) is None
    assert sched.live_lease(job.id) is not None and sched.live_lease(other.id) is not None
    with pytest.raises(NotReclaimable, match="not held by a notebook server"):
        reclaimer.keep(job, 3600)


def test_a_lease_that_never_reported_is_kept(sched, reclaimer, clock) -> None:
    lease = server_lease(sched)
    clock.advance(10 * H)
    assert tick(reclaimer) == [] and reclaimer.warning(lease.id) is None


def test_keep_snoozes_within_the_rule(sched, reclaimer, clock) -> None:
    lease = server_lease(sched)
    report(sched, lease, 0.0)
    clock.advance(1.6 * H)
    tick(reclaimer)
    assert reclaimer.warning(lease.id) is not None
    with pytest.raises(SchedulerError, match="seconds must be between 60 and 14400") as e:
        reclaimer.keep(lease, 5 * 3600)
    assert e.value.field == "seconds"
    assert reclaimer.warning(lease.id) is not None  # a refusal changes nothing
    until = reclaimer.keep(lease, 3600)
    assert until == clock.now + 3600 and reclaimer.warning(lease.id) is None
    clock.advance(H - 1)
    assert tick(reclaimer) == [] and reclaimer.warning(lease.id) is None
    clock.advance(1)  # the kept hour is over and the GPUs are still idle: warned again
    tick(reclaimer)
    warning = reclaimer.warning(lease.id)
    assert warning is not None and warning["reclaim_at"] == iso(clock.now + 0.5 * H)
    clock.advance(0.5 * H)
    assert tick(reclaimer) == [lease.id]
    with pytest.raises(LeaseNotActive):
        reclaimer.keep(sched.get(lease.id), 3600)


def test_group_and_profile_rules(sched, clock) -> None:
    r = Reclaimer(
        scheduler=sched,
        clock=clock,
        group_rules={"cs101": {"idle_s": 1800, "warn_s": 600, "max_keep_s": 3600}},
        profile_rules={"big": {"idle_s": 0}},  # never
    )
    student = server_lease(sched, "stu", groups=["cs101"], group="cs101", shape=mig("1g.5gb"))
    other = server_lease(sched, "ann")
    big = server_lease(sched, "bo", groups=["cs101"], group="cs101", profile="big")
    assert r.rule_for(student).idle_s == 1800 and r.rule_for(other).idle_s == 7200
    for lease in (student, other, big):
        report(sched, lease, 0.0)
    clock.advance(1200)
    tick(r)
    assert r.warning(student.id)["can_keep_for"] == [3600]
    assert r.warning(other.id) is None
    with pytest.raises(SchedulerError, match="between 60 and 3600"):
        r.keep(student, 14400)
    clock.advance(600)
    assert tick(r) == [student.id]
    assert sched.get(student.id).end_reason == "reclaimed: GPUs idle for 30 min"
    clock.advance(20 * H)
    tick(r)
    clock.advance(H)
    assert tick(r) == [other.id]
    assert sched.live_lease(big.id) is not None


def test_profile_rules_that_can_never_apply_are_reported(sched, clock, caplog) -> None:
    profiles = load_profiles(
        [
            {"name": "gpu-1", "display_name": "1 GPU", "shape": {"kind": "gpu", "count": 1}},
            {"name": "cpu", "display_name": "No GPU", "shape": None},
        ]
    )
    r = Reclaimer(
        scheduler=sched,
        clock=clock,
        profile_rules={"gpu-1": {"idle_s": 600}, "cpu": {"idle_s": 600}, "gpu-9": {}},
    )
    problems = r.check_profile_rules(profiles)
    assert problems == [
        "Reclaimer.profile_rules['cpu'] never applies: profile cpu has no GPU, so its servers "
        "hold no lease to reclaim (JupyterHub's idle culler stops idle servers)",
        "Reclaimer.profile_rules['gpu-9'] names no profile (profiles: cpu, gpu-1); it never "
        "applies",
    ]
    assert all(p in caplog.text for p in problems)
    assert r.check_profile_rules([]) == []  # a per-user profile list: nothing to check


def test_the_policy_is_replaceable(sched, clock) -> None:
    seen: list[Idleness] = []

    def never(idle: Idleness) -> str:
        seen.append(idle)
        return "keep"

    r = Reclaimer(scheduler=sched, clock=clock, policy=never)
    lease = server_lease(sched)
    report(sched, lease, 0.0)
    clock.advance(10 * H)
    assert tick(r) == [] and seen[-1].idle_s == 10 * H and seen[-1].lease.id == lease.id
    r2 = Reclaimer(
        scheduler=sched, clock=clock, policy="gpuhub.service.reclaim.default_idle_policy"
    )
    assert r2.policy is default_idle_policy
    assert Reclaimer(scheduler=sched).policy == "gpuhub.service.reclaim.default_idle_policy"
    with pytest.raises(TraitError, match="cannot be imported"):
        Reclaimer(scheduler=sched, policy="nowhere.policy")
    tick(r2)  # warned first, however long it was idle
    assert sched.live_lease(lease.id) is not None and r2.warning(lease.id) is not None


def test_bad_rules_are_refused(sched, clock) -> None:
    with pytest.raises(TraitError, match="unknown key 'idle'"):
        Reclaimer(scheduler=sched, clock=clock, default_rule={"idle": 3})
    with pytest.raises(TraitError, match=r"group_rules\['cs101'\]\['idle_s'\] must be a number"):
        Reclaimer(scheduler=sched, clock=clock, group_rules={"cs101": {"idle_s": "1h"}})


def test_a_restart_warns_again_before_reclaiming(sched, reclaimer, clock) -> None:
    lease = server_lease(sched)
    report(sched, lease, 0.0)
    clock.advance(3 * H)  # idle well past the window while the service was away
    fresh = Reclaimer(scheduler=sched, clock=clock)
    assert tick(fresh) == []
    assert fresh.warning(lease.id)["reclaim_at"] == iso(clock.now + 0.5 * H)
    clock.advance(0.5 * H)
    assert tick(fresh) == [lease.id]
    assert sched.get(lease.id).end_reason == "reclaimed: GPUs idle for 3 h 30 min"


def test_durations_for_people() -> None:
    assert [fmt_duration(x) for x in (40, 2700, 7200, 5400)] == [
        "40 s", "45 min", "2 h", "1 h 30 min",
    ]  # fmt: skip


def test_reclaim_user_stop_and_admin_release_at_once_end_the_lease_once(
    sched, reclaimer, clock
) -> None:
    lease = server_lease(sched)
    report(sched, lease, 0.0)
    clock.advance(1.6 * H)
    tick(reclaimer)
    clock.advance(0.5 * H)
    booked_before = sched.total_gpu_hours()

    async def user_stop() -> None:
        await asyncio.sleep(0)
        sched.release(lease.id, reason="released by alice")

    async def admin_release() -> None:
        await asyncio.sleep(0)
        sched.release(lease.id, reason="released by admin")

    async def all_at_once() -> list:
        return await asyncio.gather(reclaimer.tick(), user_stop(), admin_release())

    reclaimed, _, _ = asyncio.run(all_at_once())
    ended = sched.get(lease.id)
    assert ended.status == "released"
    assert reclaimed == [lease.id] and ended.end_reason.startswith("reclaimed: ")
    ended_rows = [x for x in sched.leases(status={"released"}) if x.id == lease.id]
    assert len(ended_rows) == 1
    clock.advance(H)  # an ended lease books nothing more
    assert sched.total_gpu_hours() == pytest.approx(booked_before)
    assert sched.total_gpu_hours() == pytest.approx(2.1)
    assert tick(reclaimer) == [] and reclaimer.reclaimed == 1


# -- through a real hub ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub (embedded default: local servers, simulated pool) with alice, bob and admin."""
    with hub_with_users(tmp_path_factory.mktemp("reclaim-hub")) as ns:
        yield ns


def alice_server(hub) -> None:
    """Start alice's default server (a local process with the gpuhub extension) if needed."""
    if hub.hub.server("alice") is None:
        r = hub.hub.spawn("alice")
        assert r.status_code in (201, 202), r.text
    hub.hub.wait_ready("alice", timeout=60)


@pytest.mark.hub
def test_the_server_extension_keeps_its_lease_through_the_service(hub) -> None:
    alice_server(hub)
    url = f"{hub.hub.url}/user/alice/gpuhub/api/v1/lease/keep"
    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    r = http.post(url, json={"seconds": 3600}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    lease = r.json()["lease"]
    assert lease["label"] == "server:alice/" and lease["idle_warning"] is None
    r = http.post(url, json={"seconds": 86400}, headers=headers, timeout=30)
    assert r.status_code == 400 and "between 60 and 14400" in r.json()["message"], r.text
    r = http.post(url, json={"seconds": "1h"}, headers=headers, timeout=30)
    assert r.status_code == 400 and "whole number of seconds" in r.json()["message"], r.text


@pytest.mark.hub
def test_reclaim_stops_the_server_through_the_hub_api(hub, tmp_path: Path, clock) -> None:
    """The Reclaimer in-process, on its own scheduler, stops a real server of the hub with
    the gpuhub service's token (its role's scopes in hub_config must allow it)."""
    alice_server(hub)
    engine = open_engine(f"sqlite:///{tmp_path / 'reclaim.sqlite'}")
    try:
        s = Scheduler(engine, parse_spec(POOL), clock=clock)
        token = (hub.hub.state / "gpuhub_service_token").read_text()
        rec = Reclaimer(
            scheduler=s, clock=clock, hub_api_url=f"{hub.hub.url}/hub/api", hub_api_token=token
        )
        lease = server_lease(s, "alice")
        report(s, lease, 0.0)
        clock.advance(1.5 * H)
        asyncio.run(rec.tick())
        assert rec.warning(lease.id) is not None
        assert hub.hub.server("alice") is not None
        clock.advance(0.5 * H)
        assert asyncio.run(rec.tick()) == [lease.id]
        assert s.get(lease.id).end_reason == "reclaimed: GPUs idle for 2 h"
        hub.hub.wait_server("alice", lambda m: m is None, timeout=30)
    finally:
        engine.dispose()


@pytest.mark.hub
def test_keep_and_activity_fields_on_the_served_api(hub) -> None:
    alice, bob = hub.alice, hub.bob
    r = alice.post(
        "/leases", json={"shape": {"kind": "gpu", "count": 1}, "label": "server:alice/x"}
    )
    assert r.status_code == 201, r.text
    lease = r.json()
    assert lease["idle_warning"] is None
    lid = lease["id"]
    body = {"window_s": 30, "memory_used_mb": 0, "busy_kernels": 1, "terminals": 0}
    r = alice.post(f"/leases/{lid}/activity", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["busy_kernels"] == 1 and r.json()["terminals"] == 0
    r = alice.post(f"/leases/{lid}/activity", json={**body, "terminals": True})
    assert r.status_code == 400 and r.json()["field"] == "terminals"
    assert alice.get(f"/leases/{lid}").json()["activity"]["busy_kernels"] == 1

    r = alice.post(f"/leases/{lid}/keep", json={"seconds": 3600})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == lid and r.json()["idle_warning"] is None
    r = alice.post(f"/leases/{lid}/keep", json={"seconds": 86400})
    assert r.status_code == 400 and r.json()["field"] == "seconds", r.text
    assert "14400" in r.json()["message"]
    r = alice.post(f"/leases/{lid}/keep", json={"seconds": "3600"})
    assert r.status_code == 400
    assert bob.post(f"/leases/{lid}/keep", json={"seconds": 3600}).status_code == 404

    r = alice.post("/leases", json={"shape": {"kind": "gpu", "count": 1}, "label": "job:alice/9"})
    job = r.json()["id"]
    r = alice.post(f"/leases/{job}/keep", json={"seconds": 3600})
    assert r.status_code == 409 and r.json()["error"] == "not_reclaimable", r.text
    for x in (lid, job):
        assert alice.delete(f"/leases/{x}").status_code == 200
    r = alice.post(f"/leases/{lid}/keep", json={"seconds": 3600})
    assert r.status_code == 409 and r.json()["error"] == "not_active"


# -- the notebook side: executing kernels and open terminals in the report -------------------


def test_the_report_counts_busy_kernels_and_open_terminals() -> None:
    from jupyter_gpuhub.readers import Device, Reader, Reading
    from jupyter_gpuhub.sampler import Sampler
    from jupyter_gpuhub.services import notebook_counts
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
    from jupyter_server_terminals.terminalmanager import TerminalManager

    class Idle(Reader):
        def read(self) -> Reading:
            return Reading()

    async def scenario() -> tuple[dict, dict]:
        kernels = MappingKernelManager()
        terminals = TerminalManager(shell_command=["/bin/sh"])
        before = notebook_counts(kernels, terminals)
        terminals.create()
        try:
            sampler = Sampler(
                Idle([Device("GPU-1", 0, "H100", "gpu")]),
                interval=1.0,
                notebook=lambda: notebook_counts(kernels, terminals),
            )
            now = 1000.0
            sampler.history["GPU-1"].append(
                {"t": now - 1, "utilization_pct": 0.0, "memory_used_mb": 1.0,
                 "memory_total_mb": 10.0, "temperature_c": None, "power_w": None,
                 "power_limit_w": None, "sm_clock_mhz": None, "processes": []}
            )  # fmt: skip
            return before, sampler.summary(30, now=now)
        finally:
            await terminals.terminate_all()

    before, body = asyncio.run(scenario())
    assert before == {"busy_kernels": 0, "terminals": 0}
    assert body["busy_kernels"] == 0 and body["terminals"] == 1
    ActivityReport.model_validate(body, strict=True)  # the service takes it as it is
    assert notebook_counts(None, None) == {"busy_kernels": None, "terminals": None}


# -- the gpuhub service's own reclaimer, in a hub with short windows --------------------------

#: Profile gpu-1 is warned at once and stopped only a day later (the warning and "Keep" are
#: what is tested with it); profile gpu-2 is stopped after 2 s idle, warned 1 s before.
SHORT_WINDOWS = """
c.Reclaimer.interval = 0.2
c.Reclaimer.default_rule = {"idle_s": 1, "warn_s": 86400}
c.Reclaimer.profile_rules = {"gpu-2": {"idle_s": 2, "warn_s": 1}}
"""
IDLE = {"window_s": 30, "utilization_mean_pct": 0, "utilization_max_pct": 0,
        "memory_used_mb": 0, "busy_kernels": 0, "terminals": 0}  # fmt: skip


@pytest.fixture(scope="module")
def short_hub(tmp_path_factory):
    """A hub whose gpuhub service reclaims with the short windows above."""
    h = Hub(
        tmp_path_factory.mktemp("reclaim-short"),
        env={"GPUHUB_POLL_INTERVAL": "0.2"},
        extra_config=SHORT_WINDOWS,
    )
    try:
        h.start()
        yield h
    finally:
        try:
            users = h.hub_api("GET", "users").json() if h.proc is not None else []
            for user in users:
                if user["servers"]:
                    h.stop_server(user["name"])
        finally:
            h.stop()


def _server_with_lease(h: Hub, user: str, profile: str) -> tuple:
    """Start ``user``'s server with ``profile``; (their gpuhub client, their server's lease)."""
    token = h.add_user(user)
    assert h.spawn(user, {"profile": profile}).status_code in (201, 202)
    h.wait_ready(user, timeout=60)
    client = h.client(token)
    leases = client.get("/leases").json()["leases"]
    assert [x["label"] for x in leases] == [f"server:{user}/"], leases
    return client, leases[0]


@pytest.mark.hub
def test_the_service_stops_an_idle_server_and_books_the_reason_once(short_hub) -> None:
    client, lease = _server_with_lease(short_hub, "hopper", "gpu-2")
    r = client.post(f"/leases/{lease['id']}/activity", json=IDLE)
    assert r.status_code == 200, r.text
    short_hub.wait_server("hopper", lambda m: m is None, timeout=30)  # stopped by the service
    ended = client.get(f"/leases/{lease['id']}").json()
    assert ended["status"] == "released"
    assert ended["end_reason"].startswith("reclaimed: GPUs idle for "), ended
    released = client.get("/leases", params={"status": "released"}).json()["leases"]
    assert [x["id"] for x in released].count(lease["id"]) == 1
    client.close()


# -- the warning in JupyterLab, in a real browser -------------------------------------------


@pytest.mark.hub
@pytest.mark.timeout(300)
def test_jupyterlab_shows_the_warning_and_keeps_the_server(short_hub, blank, artifacts) -> None:
    h, user = short_hub, "grace"
    client, lease = _server_with_lease(h, user, "gpu-1")
    assert client.post(f"/leases/{lease['id']}/activity", json=IDLE).status_code == 200
    wait_for(lambda: client.get(f"/leases/{lease['id']}").json()["idle_warning"])
    # the warning in the command line too, with the command that keeps the server
    cli = partial(cli_as, h, h.add_user(user))
    out = ok(cli("leases"))
    assert f"lease {lease['id']} ({user}) has been idle since " in out, out
    assert "its server is stopped and its GPUs released at " in out
    assert f"keep it with: gpuhub keep {lease['id']} --for 1h (or 4h)" in out

    page = log_in(blank, h, user)
    page.goto(f"{h.url}/user/{user}/lab")
    status = page.locator(".jp-gpuhub-status[data-idle-warning=true]")
    expect(status).to_contain_text("GPUs idle for", timeout=60000)
    expect(status).to_contain_text("this server will be stopped at")
    status.click()
    warning = page.locator(".jp-gpuhub-panel .jp-gpuhub-idle-warning")
    expect(warning).to_contain_text("UTC", timeout=20000)
    expect(warning.locator("button")).to_have_text(["Keep for 1 h", "Keep for 4 h"])
    blank.screenshot(path=str(artifacts / "idle-warning.png"))
    warning.locator("button", has_text="Keep for 1 h").click()
    expect(page.locator(".jp-gpuhub-idle-warning")).to_have_count(0, timeout=20000)
    expect(page.locator(".jp-gpuhub-status[data-idle-warning=false]")).to_be_visible()
    assert client.get(f"/leases/{lease['id']}").json()["idle_warning"] is None
    assert "has been idle" not in ok(cli("leases"))
    r = cli("keep", str(lease["id"]), "--for", "5h")
    assert r.returncode == 1 and "--for" in r.stderr and "4 h" in r.stderr, r.stderr
    assert ok(cli("keep", str(lease["id"]), "--for", "4h")).startswith(
        f"lease {lease['id']} kept for 4h"
    )
    client.close()


# -- kernel-activity culling in the hub configuration ----------------------------------------


@pytest.mark.parametrize("timeout", ["600", "0"])
def test_the_hub_runs_the_idle_culler_unless_turned_off(tmp_path: Path, timeout: str) -> None:
    found = hub_config_with(tmp_path, GPUHUB_CULL_IDLE_TIMEOUT=timeout)
    if timeout == "0":
        assert "idle-culler" not in found["services"] and "idle-culler" not in found["roles"]
        return
    service, role = found["services"]["idle-culler"], found["roles"]["idle-culler"]
    assert service["command"][1:] == [
        "-m", "jupyterhub_idle_culler", "--timeout=600", "--cull-every=300",
    ]  # fmt: skip
    assert sorted(role["scopes"]) == [
        "delete:servers", "list:users", "read:servers", "read:users:activity",
    ]  # fmt: skip
    assert role["services"] == ["idle-culler"]
