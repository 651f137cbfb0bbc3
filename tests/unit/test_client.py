"""The one gpuhub REST client against a real tornado server on 127.0.0.1 that fails on cue:
retries of 502/503/504 and dropped connections within a time budget, one idempotency key
per lease request on every try, no retry of a refusal or of a key-less POST, errors decoded
into one sentence. Time is injected: nothing here sleeps for long."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest
from gpuhub.client import (
    IDEMPOTENCY_HEADER,
    NO_RETRY,
    AsyncGpuhubClient,
    GpuhubClient,
    GpuhubError,
    RetryPolicy,
    Send,
    Sleep,
    api_root,
    hub_root,
    quote_name,
)
from tornado import httpserver, ioloop, netutil, web

from tests.support.hub import free_port

LEASE = {"id": 7, "status": "active", "node": "node-1", "devices": []}
#: Collections the server lists, by path, under their key.
LISTS = {"jobs": "jobs", "job-definitions": "definitions"}


class Script:
    """What the server answers, in order: ``503``, ``drop`` (close without answering),
    ``400``, ``html`` (a 502 page that is not JSON), then ``ok`` for ever."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.seen: list[dict] = []


class Handler(web.RequestHandler):
    def initialize(self, script: Script) -> None:
        self.script = script

    def check_xsrf_cookie(self) -> None:  # an API: no cookies
        pass

    def _answer(self, path: str) -> None:
        s = self.script
        s.seen.append(
            {
                "method": self.request.method,
                "path": self.request.path,
                "query": self.request.query,
                "headers": dict(self.request.headers),
                "body": self.request.body,
            }
        )
        what = s.plan.pop(0) if s.plan else "ok"
        if what == "drop":
            self.request.connection.stream.close()
            return
        if what == "html":
            self.set_status(502)
            self.finish("<html><body>Bad gateway</body></html>")
            return
        if what.isdigit():
            code = int(what)
            self.set_status(code)
            self.finish({"status": code, "error": "quota_exceeded" if code < 500 else "down",
                         "message": f"answer {code}", "field": "shape" if code < 500 else None})  # fmt: skip
            return
        if path == "csv":
            self.finish("a,b\n1,2\n")
            return
        if self.request.method == "GET" and path in LISTS:
            self.finish({LISTS[path]: [LEASE]})
            return
        if self.request.method == "DELETE" and path.startswith("job-definitions/"):
            self.set_status(204)
            self.finish()
            return
        self.finish(LEASE)

    def get(self, path: str) -> None:
        self._answer(path)

    def post(self, path: str) -> None:
        self._answer(path)

    def delete(self, path: str) -> None:
        self._answer(path)

    def patch(self, path: str) -> None:
        self._answer(path)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Script]]:
    """A tornado server in a thread of its own; yields (service URL, script)."""
    script = Script()
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    ready = threading.Event()
    holder: dict = {}

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        app = web.Application([(r"/services/gpuhub/api/v1/(.*)", Handler, {"script": script})])
        srv = httpserver.HTTPServer(app)
        srv.add_sockets(sockets)
        holder["loop"], holder["server"] = ioloop.IOLoop.current(), srv
        ready.set()
        holder["loop"].start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{port}/services/gpuhub", script
    holder["loop"].add_callback(holder["server"].stop)
    holder["loop"].add_callback(holder["loop"].stop)
    thread.join(10)


@pytest.fixture
def script(server) -> Script:
    _, s = server
    s.plan.clear()
    s.seen.clear()
    return s


class Clock:
    """A monotonic clock that only the client's sleeps move on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


POLICY = RetryPolicy(budget=30.0, first_delay=1.0, factor=2.0, max_delay=8.0)


def sync_client(url: str, clock: Clock, policy: RetryPolicy = POLICY, **kw) -> GpuhubClient:
    return GpuhubClient(url, "secret", retry=policy, clock=clock, sleep=clock.sleep, **kw)


def async_client(url: str, clock: Clock, policy: RetryPolicy = POLICY, **kw) -> AsyncGpuhubClient:
    return AsyncGpuhubClient(url, "secret", retry=policy, clock=clock, sleep=clock.asleep, **kw)


# -- the lease request through a restart --------------------------------------------------


async def test_lease_request_is_retried_with_one_idempotency_key(server, script) -> None:
    url, _ = server
    script.plan = ["503", "drop", "html", "504"]
    clock, told = Clock(), []
    client = async_client(url, clock, on_retry=lambda e, d, n: told.append((e.status, d, n)))
    body = {"user": "élève", "shape": {"kind": "gpu", "count": 1}}
    assert await client.request_lease(body) == LEASE
    assert [s["method"] for s in script.seen] == ["POST"] * 5
    keys = {s["headers"].get(IDEMPOTENCY_HEADER) for s in script.seen}
    assert len(keys) == 1 and None not in keys and 1 <= len(next(iter(keys))) <= 128
    assert all(json.loads(s["body"]) == body for s in script.seen)
    assert all(s["headers"]["Authorization"] == "token secret" for s in script.seen)
    assert clock.slept == [1.0, 2.0, 4.0, 8.0]  # exponential backoff
    assert told == [(503, 1.0, 1), (None, 2.0, 2), (502, 4.0, 3), (504, 8.0, 4)]
    # the next lease request is another request: another key
    await client.request_lease(body)
    assert script.seen[-1]["headers"][IDEMPOTENCY_HEADER] not in keys


def test_sync_lease_request_is_retried_with_one_idempotency_key(server, script) -> None:
    url, _ = server
    script.plan = ["503", "drop"]
    clock = Clock()
    with sync_client(url, clock) as client:
        assert client.request_lease({"shape": {"kind": "shared"}}) == LEASE
    assert len({s["headers"][IDEMPOTENCY_HEADER] for s in script.seen}) == 1
    assert len(script.seen) == 3 and clock.slept == [1.0, 2.0]


async def test_no_retry_of_a_refusal(server, script) -> None:
    url, _ = server
    script.plan = ["400", "400"]
    clock = Clock()
    client = async_client(url, clock)
    with pytest.raises(GpuhubError) as e:
        await client.request_lease({"shape": {"kind": "gpu", "count": 64}})
    assert (e.value.status, e.value.code, e.value.field) == (400, "quota_exceeded", "shape")
    assert e.value.message == "answer 400" and not e.value.unreachable
    assert len(script.seen) == 1 and clock.slept == []
    with pytest.raises(GpuhubError, match="answer 400"):
        await client.lease(7)  # a GET is retried only when the service is away
    assert len(script.seen) == 2


def test_no_retry_of_a_post_without_a_key(server, script) -> None:
    url, _ = server
    script.plan = ["503"]
    clock = Clock()
    with sync_client(url, clock) as client, pytest.raises(GpuhubError) as e:
        client.post("leases", {"shape": {"kind": "shared"}})
    assert e.value.status == 503 and e.value.unreachable
    assert len(script.seen) == 1 and IDEMPOTENCY_HEADER not in script.seen[0]["headers"]
    assert clock.slept == []


async def test_no_retry_of_a_delete_but_of_the_preview(server, script) -> None:
    url, _ = server
    clock = Clock()
    client = async_client(url, clock)
    script.plan = ["503"]
    with pytest.raises(GpuhubError):
        await client.release(7)  # the spawner's own loop retries releases
    assert len(script.seen) == 1
    script.plan = ["503", "drop"]
    assert await client.preview({"shape": {"kind": "shared"}}) == LEASE  # changes nothing
    assert len(script.seen) == 4


async def test_the_budget_is_respected(server, script) -> None:
    url, _ = server
    script.plan = ["503"] * 50
    clock = Clock()
    client = async_client(url, clock)
    with pytest.raises(GpuhubError) as e:
        await client.lease(7)
    # 1 + 2 + 4 + 8 + 8 = 23 s slept; one more wait of 8 s would end past 30 s
    assert clock.slept == [1.0, 2.0, 4.0, 8.0, 8.0] and sum(clock.slept) <= POLICY.budget
    assert len(script.seen) == 6
    assert e.value.status == 503 and "tried 6 times in 23 s" in e.value.message
    script.plan.clear()


def test_no_budget_no_retry(server, script) -> None:
    url, _ = server
    script.plan = ["503"]
    clock = Clock()
    with sync_client(url, clock, NO_RETRY) as client, pytest.raises(GpuhubError):
        client.get("pool")
    assert len(script.seen) == 1 and clock.slept == []


async def test_refused_connections() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/gpuhub"
    clock = Clock()
    client = async_client(url, clock, RetryPolicy(budget=5.0, first_delay=1.0))
    with pytest.raises(GpuhubError) as e:
        await client.me("alice")
    assert e.value.status is None and e.value.unreachable and e.value.code == "unavailable"
    assert e.value.message.startswith(f"cannot reach gpuhub at {url}")
    assert clock.slept == [1.0, 2.0]  # a service restarting on its own port: retried
    clock = Clock()
    policy = RetryPolicy(budget=5.0, retry_refused=False)  # the CLI: a wrong URL fails at once
    with sync_client(url, clock, policy) as client, pytest.raises(GpuhubError):
        client.get("pool")
    assert clock.slept == []


# -- the retry loop itself, without sockets ----------------------------------------------


def test_the_retry_loop_is_driven_by_hand() -> None:
    """The rules both clients share, stepped through one answer at a time: the loop says
    what to send and how long to wait, and decides with the clock it was given."""
    clock, told = Clock(), []
    client = GpuhubClient(
        "http://h/services/gpuhub", "secret", retry=POLICY, clock=clock,
        on_retry=lambda e, d, n: told.append((e.status, d, n)),
    )  # fmt: skip
    call = client.build("POST", "leases", json={"shape": {"kind": "shared"}}, idempotency_key="k")
    assert call.retryable and call.headers[IDEMPOTENCY_HEADER] == "k"
    assert call.url == "http://h/services/gpuhub/api/v1/leases"
    loop = client.retry_loop(call)
    assert next(loop) == Send(call)
    assert loop.send(httpx.Response(503, json={"message": "down", "error": "down"})) == Sleep(1.0)
    clock.now += 1.0
    assert loop.send(None) == Send(call)  # the same call, the same key
    assert loop.send(httpx.ConnectError("refused")) == Sleep(2.0)
    clock.now += 2.0
    assert loop.send(None) == Send(call)
    assert loop.send(httpx.Response(502, text="<html>Bad gateway</html>")) == Sleep(4.0)
    clock.now += 4.0
    assert loop.send(None) == Send(call)
    with pytest.raises(StopIteration) as done:
        loop.send(httpx.Response(200, json=LEASE))
    assert done.value.value == LEASE
    assert told == [(503, 1.0, 1), (None, 2.0, 2), (502, 4.0, 3)]

    # a refusal ends the loop at once; a malformed URL too, even on a retryable call
    loop = client.retry_loop(call)
    next(loop)
    with pytest.raises(GpuhubError) as e:
        loop.send(httpx.Response(409, json={"message": "no", "error": "conflict", "field": "x"}))
    assert (e.value.status, e.value.code, e.value.field, e.value.message) == (
        409, "conflict", "x", "no")  # fmt: skip
    loop = client.retry_loop(call)
    next(loop)
    with pytest.raises(GpuhubError, match="cannot reach gpuhub"):
        loop.send(httpx.UnsupportedProtocol("no scheme"))

    # a call not safe to repeat is tried once; the budget stops the loop, saying how long
    loop = client.retry_loop(client.build("DELETE", "leases/7"))
    next(loop)
    with pytest.raises(GpuhubError) as e:
        loop.send(httpx.Response(503))
    assert "tried" not in e.value.message
    loop = client.retry_loop(client.build("GET", "pool"), text=True)
    step, waits = next(loop), []
    with pytest.raises(GpuhubError) as e:
        while isinstance(step, Send):
            step = loop.send(httpx.Response(504))
            waits.append(step.seconds)
            clock.now += step.seconds
            step = loop.send(None)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0] and e.value.status == 504
    assert "tried 6 times in 23 s" in e.value.message


# -- requests and answers -----------------------------------------------------------------


async def test_names_and_queries_are_quoted(server, script) -> None:
    url, _ = server
    client = async_client(url + "/api/v1/", Clock())
    await client.me("élève/x")
    assert script.seen[-1]["path"] == "/services/gpuhub/api/v1/me"
    assert script.seen[-1]["query"] == "user=%C3%A9l%C3%A8ve%2Fx"
    with sync_client(url, Clock()) as c:
        c.get(f"quotas/users/{quote_name('élève/x')}")
        assert c.get_text("csv") == "a,b\n1,2\n"
    assert script.seen[-2]["path"] == "/services/gpuhub/api/v1/quotas/users/%C3%A9l%C3%A8ve%2Fx"
    assert quote_name("a b/c") == "a%20b%2Fc"


def test_urls() -> None:
    assert api_root("http://h/services/gpuhub/") == "http://h/services/gpuhub/api/v1"
    assert api_root("http://h/services/gpuhub/api/v1/") == "http://h/services/gpuhub/api/v1"
    assert hub_root("https://h/p/services/gpuhub/api/v1") == "https://h/p"


def test_errors_are_sentences(server, script) -> None:
    url, _ = server
    script.plan = ["html"]
    with sync_client(url, Clock(), NO_RETRY) as c:
        with pytest.raises(GpuhubError, match="is unavailable .*502.*it may be restarting"):
            c.get("pool")
        script.plan = ["401"]
        with pytest.raises(GpuhubError) as e:
            c.get("pool")
    assert e.value.message == "the token was not accepted (answer 401); get a new one on http://127.0.0.1:{}/hub/token".format(
        url.split(":")[2].split("/")[0]
    )  # fmt: skip
    wrong = url.replace("/services/gpuhub", "/nothing")
    with GpuhubClient(wrong, "t", retry=NO_RETRY) as c, pytest.raises(GpuhubError) as e:
        c.get("pool")
    assert e.value.status == 404 and "is the URL the gpuhub service" in e.value.message


# -- batch jobs: the same calls in both clients ------------------------------------------

JOB_BODY = {"path": "work/t.py", "script": "print(1)", "parameters": {"lr": 0.01}}


def _job_calls(client):
    """Every job call once, in order; each returns what the client returns."""
    return [
        lambda: client.submit_job(JOB_BODY),
        lambda: client.jobs(),
        lambda: client.jobs(user="élève/x", status="queued", limit=5),
        lambda: client.jobs(status=["queued", "running"]),
        lambda: client.job(12),
        lambda: client.cancel_job(12),
        lambda: client.job_log(12, offset=100, limit=10),
        lambda: client.job_definitions(),
        lambda: client.create_job_definition({**JOB_BODY, "schedule": "0 2 * * *"}),
        lambda: client.update_job_definition(3, paused=True),
        lambda: client.delete_job_definition(3),
    ]


JOB_REQUESTS = [
    ("POST", "jobs", "", JOB_BODY),
    ("GET", "jobs", "", None),
    ("GET", "jobs", "user=%C3%A9l%C3%A8ve%2Fx&limit=5&status=queued", None),
    ("GET", "jobs", "status=queued&status=running", None),
    ("GET", "jobs/12", "", None),
    ("DELETE", "jobs/12", "", None),
    ("GET", "jobs/12/log", "offset=100&limit=10", None),
    ("GET", "job-definitions", "", None),
    ("POST", "job-definitions", "", {**JOB_BODY, "schedule": "0 2 * * *"}),
    ("PATCH", "job-definitions/3", "", {"paused": True}),
    ("DELETE", "job-definitions/3", "", None),
]
JOB_ANSWERS = [LEASE, [LEASE], [LEASE], [LEASE], LEASE, LEASE, LEASE, [LEASE], LEASE, LEASE, None]


def _seen_requests(script: Script) -> list[tuple]:
    prefix = "/services/gpuhub/api/v1/"
    return [
        (s["method"], s["path"].removeprefix(prefix), s["query"],
         json.loads(s["body"]) if s["body"] else None)
        for s in script.seen
    ]  # fmt: skip


def test_sync_job_calls(server, script) -> None:
    url, _ = server
    with sync_client(url, Clock()) as client:
        answers = [call() for call in _job_calls(client)]
    assert answers == JOB_ANSWERS
    assert _seen_requests(script) == JOB_REQUESTS
    assert IDEMPOTENCY_HEADER in script.seen[0]["headers"]
    assert all(IDEMPOTENCY_HEADER not in s["headers"] for s in script.seen[1:])


async def test_async_job_calls(server, script) -> None:
    url, _ = server
    client = async_client(url, Clock())
    answers = [await call() for call in _job_calls(client)]
    assert answers == JOB_ANSWERS
    assert _seen_requests(script) == JOB_REQUESTS


async def test_job_submit_is_retried_with_one_idempotency_key(server, script) -> None:
    url, _ = server
    script.plan = ["503", "drop"]
    clock = Clock()
    assert await async_client(url, clock).submit_job(JOB_BODY) == LEASE
    assert len(script.seen) == 3 and clock.slept == [1.0, 2.0]
    assert len({s["headers"][IDEMPOTENCY_HEADER] for s in script.seen}) == 1
    script.seen.clear()
    script.plan = ["503"]
    with sync_client(url, clock) as client:
        assert client.submit_job(JOB_BODY, idempotency_key="k-1") == LEASE
        assert [s["headers"][IDEMPOTENCY_HEADER] for s in script.seen] == ["k-1", "k-1"]
        # a cancel or a new schedule is not repeated after a 503: the caller decides
        script.seen.clear()
        script.plan = ["503"]
        with pytest.raises(GpuhubError):
            client.cancel_job(12)
        script.plan = ["503"]
        with pytest.raises(GpuhubError):
            client.create_job_definition(JOB_BODY)
        assert len(script.seen) == 2


def test_job_refusals_keep_their_field(server, script) -> None:
    url, _ = server
    script.plan = ["400"]
    with sync_client(url, Clock()) as client, pytest.raises(GpuhubError) as e:
        client.submit_job(JOB_BODY)
    assert (e.value.status, e.value.field) == (400, "shape") and len(script.seen) == 1


# -- the command line ---------------------------------------------------------------------


def test_cli_retries_through_a_restart_and_says_so(server, script) -> None:
    url, _ = server
    script.plan = ["503", "drop"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "JUPYTERHUB_"))}
    env.update(GPUHUB_URL=url, GPUHUB_TOKEN="secret")
    r = subprocess.run(
        [sys.executable, "-m", "gpuhub.cli.main", "request", "--gpus", "1", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == LEASE
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("gpuhub: ") for line in lines)
    assert lines[0] == "gpuhub: answer 503; retrying in 1 s"
    assert "retrying in 2 s" in lines[1]
    assert len(script.seen) == 3
    assert len({s["headers"][IDEMPOTENCY_HEADER] for s in script.seen}) == 1
    # a refusal is not retried: one line, exit 1
    script.plan = ["403"]
    r = subprocess.run(
        [sys.executable, "-m", "gpuhub.cli.main", "pool"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr == "gpuhub: error: answer 403\n"
