"""The warm pool's rules (profile, days, hours) on an injected clock, the pool following
them with real warm servers (``python -m jupyter_gpuhub.warm``), and the warm server's
claim protocol. The pool inside a real hub: tests/hub/test_warm_pool.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gpuhub.spawners.local import GPULocalProcessSpawner
from gpuhub.spawners.warm import ANY, MISMATCH, WarmPool, WarmRule, parse_rules, sizes_at, zone
from traitlets import TraitError
from traitlets.config import Config

BERLIN = zone("Europe/Berlin")
#: A Monday (relative dates are built from it, never from today's)
MONDAY = dt.datetime(2026, 1, 5, tzinfo=BERLIN)


def at(days: int, hh: int, mm: int = 0) -> dt.datetime:
    return MONDAY + dt.timedelta(days=days, hours=hh, minutes=mm)


LAB = [
    {"size": 1},
    {"profile": "gpu-1", "size": 2},
    {"profile": "gpu-1", "size": 20, "days": "mon,thu", "hours": "08:30-10:00"},
    {"profile": "mig", "size": 3, "days": "fri", "hours": "22:00-02:00"},
]


@pytest.mark.parametrize(
    "when, want",
    [
        (at(0, 8, 29), {ANY: 1, "gpu-1": 2}),
        (at(0, 8, 30), {ANY: 1, "gpu-1": 20}),  # Monday's lab
        (at(0, 9, 59), {ANY: 1, "gpu-1": 20}),
        (at(0, 10, 0), {ANY: 1, "gpu-1": 2}),  # the end is excluded
        (at(1, 9, 0), {ANY: 1, "gpu-1": 2}),  # not on Tuesday
        (at(3, 9, 0), {ANY: 1, "gpu-1": 20}),  # Thursday's
        (at(4, 23, 0), {ANY: 1, "gpu-1": 2, "mig": 3}),  # Friday night...
        (at(5, 1, 59), {ANY: 1, "gpu-1": 2, "mig": 3}),  # ...into Saturday's small hours
        (at(5, 2, 0), {ANY: 1, "gpu-1": 2}),
        (at(4, 1, 0), {ANY: 1, "gpu-1": 2}),  # Friday's small hours are Thursday night's
    ],
)
def test_sizes_follow_profile_day_and_hour(when: dt.datetime, want: dict[str, int]) -> None:
    sizes = {k: v for k, v in sizes_at(parse_rules(LAB), when).items() if v}
    assert sizes == want


def test_the_rules_are_read_in_the_pools_zone() -> None:
    rules = parse_rules([{"size": 4, "hours": "08:00-09:00"}])
    utc = at(0, 8, 30).astimezone(dt.UTC)  # 07:30 UTC
    assert sizes_at(rules, utc.astimezone(BERLIN)) == {ANY: 4}
    assert sizes_at(rules, utc) == {}


@pytest.mark.parametrize(
    "rule, message",
    [
        ({}, "size is a whole number"),
        ({"size": -1}, "size is a whole number"),
        ({"size": True}, "size is a whole number"),
        ({"size": 1001}, "size is a whole number"),
        ({"size": 1, "profile": ""}, "profile is a profile's name"),
        ({"size": 1, "days": "weekdays"}, "use mon..sun"),
        ({"size": 1, "days": 5}, "days is text"),
        ({"size": 1, "hours": "8-10"}, "HH:MM-HH:MM"),
        ({"size": 1, "hours": "10:00-10:00"}, "empty span"),
        ({"size": 1, "hours": "10:00-24:30"}, "HH:MM-HH:MM"),
        ({"size": 1, "when": "mornings"}, "unknown key"),
        ("2", "is an object"),
    ],
)
def test_a_bad_rule_is_refused_naming_it(rule: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WarmRule.parse(rule)
    c = Config()
    c.GPULocalProcessSpawner.warm_pool = [rule]
    with pytest.raises(TraitError, match=message):
        GPULocalProcessSpawner(config=c).warm_pool  # noqa: B018 - reading it checks it


def test_a_bad_zone_is_refused() -> None:
    c = Config()
    c.GPULocalProcessSpawner.warm_pool_timezone = "Mars/Olympus"
    with pytest.raises(TraitError, match="not an IANA zone name"):
        GPULocalProcessSpawner(config=c).warm_pool_timezone  # noqa: B018


def test_the_embedded_default_keeps_one_warm_server_for_any_profile() -> None:
    assert GPULocalProcessSpawner().warm_pool == [{"size": 1}]


def _neutral() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}


async def _until(what, timeout: float = 60.0):
    for _ in range(int(timeout / 0.1)):
        value = what()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("gave up waiting")


async def test_the_pool_fills_for_the_lab_and_lets_its_servers_go_after() -> None:
    """Rules by time of day on an injected clock: nothing before the lab, a warm server
    for its profile during it (claimed for that profile only), none after."""
    now = [at(0, 8, 29)]
    rules = parse_rules([{"profile": "lab", "size": 1, "days": "mon", "hours": "08:30-10:00"}])
    pool = WarmPool(rules, _neutral(), tz=BERLIN, now=lambda: now[0], check_s=3600)
    try:
        pool.start()
        await asyncio.sleep(0.2)
        assert pool.warm_count() == 0 and pool.claim("lab") is None
        now[0] = at(0, 8, 30)
        pool.refill()
        await _until(lambda: pool.warm_count("lab") == 1)
        assert pool.claim("other") is None  # kept for the lab's profile
        [server] = pool.servers["lab"]
        now[0] = at(0, 10, 0)
        pool.refill()
        await _until(lambda: server.proc.poll() is not None)
        assert server.proc.returncode == 0  # let go: read the end of its input and left
        assert pool.warm_count() == 0
    finally:
        pool.close()


async def test_a_claimed_server_leaves_the_pool_and_is_replaced() -> None:
    pool = WarmPool(parse_rules([{"size": 1}]), _neutral(), tz=dt.UTC, check_s=3600)
    try:
        pool.start()
        await _until(lambda: pool.warm_count() == 1)
        first = pool.claim("any-profile")
        assert first is not None and pool.claim("any-profile") is None  # taken once
        await _until(lambda: pool.warm_count() == 1)
        [second] = pool.servers[ANY]
        assert second is not first
        first.release()  # (a claim that never came: it leaves)
        assert await asyncio.get_running_loop().run_in_executor(None, first.proc.wait) == 0
        second.proc.kill()  # a warm server killed: a new one takes its place
        await _until(lambda: pool.warm_count() == 1 and pool.servers[ANY][0] is not second)
    finally:
        pool.close()


def _runner(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_gpuhub.warm"],
        stdin=subprocess.PIPE,
        env={**_neutral(), "GPUHUB_WARM_FD": str(write_fd), **env},
        cwd=tmp_path,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    return proc, read_fd


def test_a_claim_with_another_import_time_setting_is_refused(tmp_path: Path) -> None:
    """``jupyterhub-singleuser`` decides how to run at import: a claim that says otherwise
    than the start gets MISMATCH (the spawner then starts cold), not a wrong server."""
    proc, status = _runner(tmp_path)
    with os.fdopen(status) as said:
        assert said.readline() == "warm\n"
        claim = {
            "env": {"JUPYTERHUB_SINGLEUSER_APP": "notebook.notebookapp.NotebookApp"},
            "cwd": str(tmp_path / "home"),
            "argv": [],
        }
        proc.communicate(json.dumps(claim).encode() + b"\n", timeout=60)
    assert proc.returncode == MISMATCH
    assert not (tmp_path / "home").exists()  # refused before anything was done


def test_a_claim_replaces_the_whole_environment_and_folder(tmp_path: Path) -> None:
    """``take`` leaves nothing of the start's environment (run in a process of its own)."""
    home = tmp_path / "home" / "ann"
    code = f"""
import json, os, sys
os.environ["LEFT_FROM_THE_START"] = "1"
from jupyter_gpuhub.warm import take
take({{"env": {{"JUPYTERHUB_USER": "ann", "HOME": {str(home)!r}}}, "cwd": {str(home)!r},
       "argv": ["--debug"]}}, {{}})
print(json.dumps([dict(os.environ), os.getcwd(), sys.argv[1:]]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    env, cwd, argv = json.loads(out)
    assert env == {"JUPYTERHUB_USER": "ann", "HOME": str(home)}
    assert cwd == str(home) and argv == ["--debug"]
