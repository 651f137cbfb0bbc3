"""Units of the jupyter_gpuhub sampler: the ring buffer, the activity summary, reports that
fail; the server's process tree that simulated devices and shared GPUs count; and the
environment a server gives its user (the ``gpuhub`` CLI's defaults, PATH)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest
from gpuhub.cli.parser import default_token, default_url
from gpuhub.client import GpuhubError
from jupyter_gpuhub.readers import Device, ProcessTree, Reader, Reading
from jupyter_gpuhub.sampler import Sampler

GPU = "GPU-1"
SLICE = "MIG-1"


class ScriptedReader(Reader):
    """Hands out prepared readings."""

    def __init__(self) -> None:
        super().__init__([Device(GPU, 0, "H100", "gpu"), Device(SLICE, 1, "1g.10gb", "mig")])

    def read(self) -> Reading:
        return Reading()


def sample(t: float, util: float | None, mem: float = 100.0, procs: int = 0) -> dict:
    return {
        "t": t, "utilization_pct": util, "memory_used_mb": mem, "memory_total_mb": 1000.0,
        "temperature_c": None, "power_w": None, "power_limit_w": None, "sm_clock_mhz": None,
        "processes": [{"pid": 1, "name": "python", "memory_mb": 1.0}] * procs,
    }  # fmt: skip


def test_ring_buffer_keeps_ten_minutes_and_no_more():
    sampler = Sampler(ScriptedReader(), interval=1.0)
    for t in range(2000):
        sampler.keep(Reading(samples={GPU: sample(1000.0 + t, 10.0)}))
    history = sampler.since(GPU)
    assert len(history) <= 601
    assert history[-1]["t"] == 2999.0 and history[0]["t"] >= 2999.0 - 600
    # time bounds it too when samples come slower than the interval (a hung driver)
    for t in (4000.0, 4300.0, 4700.0):
        sampler.keep(Reading(samples={GPU: sample(t, 10.0)}))
    assert [s["t"] for s in sampler.since(GPU)] == [4300.0, 4700.0]
    assert sampler.since(SLICE) == [] and sampler.latest(SLICE) is None


def test_keep_notes_errors_and_keeps_the_last_samples():
    sampler = Sampler(ScriptedReader(), interval=1.0)
    sampler.keep(Reading(samples={GPU: sample(10.0, 50.0)}))
    sampler.keep(Reading(errors=["NVML could not read GPU-1: GPU is lost"]))
    assert sampler.error == "NVML could not read GPU-1: GPU is lost"
    assert sampler.latest(GPU)["t"] == 10.0
    sampler.keep(Reading(samples={GPU: sample(12.0, 50.0)}))
    assert sampler.error is None


def test_summary_of_a_window():
    sampler = Sampler(ScriptedReader(), interval=1.0, activity_threshold_pct=5.0)
    now = 10_000.0
    sampler.keep(Reading(samples={GPU: sample(now - 100, 99.0)}))  # before the window
    for i, util in enumerate([0.0, 80.0, 40.0, 2.0]):
        t = now - 30 + i * 10
        sampler.keep(Reading(samples={GPU: sample(t, util, mem=100 + i), SLICE: sample(t, None)}))
    body = sampler.summary(35.0, now=now)
    assert body["window_s"] == 30.0
    gpu, mig = body["devices"]
    assert gpu == {"uuid": GPU, "utilization_mean_pct": 30.5, "utilization_max_pct": 80.0,
                   "memory_used_mb": 103.0}  # fmt: skip
    assert mig == {"uuid": SLICE, "utilization_mean_pct": None, "utilization_max_pct": None,
                   "memory_used_mb": 100.0}  # fmt: skip
    assert body["utilization_mean_pct"] == 30.5 and body["utilization_max_pct"] == 80.0
    assert body["memory_used_mb"] == 203.0
    assert body["last_active_at"] == "1970-01-01T02:46:30+00:00"  # the 40 % sample
    assert Sampler(ScriptedReader(), interval=1.0).summary(30.0, now=now) is None


def test_a_slice_without_utilization_is_active_while_a_process_runs():
    sampler = Sampler(ScriptedReader(), interval=1.0)
    sampler.keep(Reading(samples={SLICE: sample(50.0, None, procs=0)}))
    assert sampler.last_active_at is None
    sampler.keep(Reading(samples={SLICE: sample(60.0, None, procs=1)}))
    assert sampler.last_active_at == 60.0


async def test_failed_reports_are_logged_and_tried_again(caplog):
    calls = []

    async def send(lease_id: int, body: dict) -> None:
        calls.append((lease_id, body))
        if len(calls) == 1:
            raise GpuhubError("The gpuhub service did not answer.", status=None)

    sampler = Sampler(
        ScriptedReader(), interval=1.0, lease_id=7, send=send, report_interval=30.0,
        log=logging.getLogger("test"),
    )  # fmt: skip
    assert await sampler.report_once() is False  # nothing sampled yet: nothing sent
    assert calls == []
    sampler.keep(Reading(samples={GPU: sample(time.time(), 50.0)}))
    with caplog.at_level(logging.WARNING):
        assert await sampler.report_once() is False
    assert "activity report for lease 7 failed" in caplog.text
    assert await sampler.report_once() is True
    assert sampler.last_report == calls[-1][1] and calls[-1][0] == 7


async def test_sampler_starts_once_and_stops_cleanly():
    reader = ScriptedReader()
    reads = []
    reader.read = lambda: reads.append(1) or Reading()
    sampler = Sampler(reader, interval=0.1)
    sampler.start()
    sampler.start()  # a second start is the same sampler
    await asyncio.sleep(0.35)
    await sampler.stop()
    assert not sampler.running and 2 <= len(reads) <= 6


def test_cli_defaults_inside_a_server():
    env = {"GPUHUB_SERVICE_URL": "http://hub:8000/services/gpuhub", "JUPYTERHUB_API_TOKEN": "t"}
    assert default_url(env) == "http://hub:8000/services/gpuhub"
    assert default_token(env) == "t"
    env |= {"GPUHUB_URL": "http://other/services/gpuhub", "GPUHUB_TOKEN": "mine"}
    assert default_url(env) == "http://other/services/gpuhub" and default_token(env) == "mine"


@pytest.mark.parametrize("bad", [0.0, 0.05])
def test_interval_floor(bad):
    from jupyter_gpuhub.app import GpuhubExtension
    from traitlets import TraitError

    with pytest.raises(TraitError):
        GpuhubExtension(interval=bad)


async def test_a_hung_read_holds_neither_requests_nor_stop():
    import threading

    release = threading.Event()
    reader = ScriptedReader()
    reader.read = lambda: release.wait(30) and Reading()
    sampler = Sampler(reader, interval=0.1, read_timeout=0.2)
    try:
        sampler.start()
        await asyncio.sleep(0.5)
        assert (
            sampler.error and "did not answer" in sampler.error or "not answered" in sampler.error
        )
        assert sampler.reads == 1  # no second read behind the hung one
        started = time.monotonic()
        await sampler.stop()
        assert time.monotonic() - started < 1.0
        worker = [t for t in threading.enumerate() if t.name == "gpuhub-sampler"]
        assert worker and all(t.daemon for t in worker)  # cannot hold the server's exit
    finally:
        release.set()


# -- the server's process tree ---------------------------------------------------------


def test_the_process_tree_is_the_server_and_everything_below_it():
    """A process and its child are found, with their names and CPU; the process above
    them (this one) is not."""
    # the shell starts a child, then becomes a sleep itself: two sleeps, one below the other
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & exec sleep 30"])
    try:
        tree = ProcessTree(shell.pid)

        def found() -> dict[int, tuple[str, float]]:
            members = tree.members()
            names = [name for name, _ in members.values()]
            return members if names == ["sleep", "sleep"] else {}

        deadline = time.monotonic() + 10
        while not (members := found()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree._walk  # this kernel has children files: the tree is walked
        assert shell.pid in members and len(members) == 2, tree.members()
        assert os.getpid() not in members
        assert all(cpu >= 0 for _, cpu in members.values())
    finally:
        shell.kill()
        shell.wait()


def _proc(tmp_path: Path, parents: dict[int, int], children_files: bool) -> Path:
    """A /proc of ``pid -> parent``; pids above 100 have a stat no reader can parse."""
    proc = tmp_path / "proc"
    for pid, parent in parents.items():
        (proc / str(pid) / "task" / str(pid)).mkdir(parents=True)
        text = f"{pid} (p{pid}) S {parent} " + " ".join(["0"] * 9) + f" {pid} 0 " + "0 " * 30
        (proc / str(pid) / "stat").write_text("garbage" if pid > 100 else text)
        if children_files:
            kids = " ".join(str(c) for c, p in parents.items() if p == pid and c <= 100)
            (proc / str(pid) / "task" / str(pid) / "children").write_text(kids)
    return proc


def test_the_process_tree_reads_only_the_servers_own_processes(tmp_path):
    """With children files, only the tree's own processes are read: the machine's other
    processes (here unreadable ones) cost nothing. Without them, every process is read
    and the same tree is found from the parents."""
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 21: 20}
    walked = ProcessTree(10, _proc(tmp_path / "a", {**parents, 101: 1, 102: 20}, True))
    assert walked._walk
    members = walked.members()
    assert members == {10: ("p10", 0.1), 11: ("p11", 0.11), 12: ("p12", 0.12), 13: ("p13", 0.13)}
    scanned = ProcessTree(10, _proc(tmp_path / "b", parents, False))
    assert not scanned._walk and scanned.members() == members
