"""Bad input never reaches a 500, is refused with a JSON 4xx naming the field, and changes
nothing; names survive the trip to the hub; every error has the one JSON shape.

One class of bad input per test, each against a real hub (tests/hub.py) and each checking
that no lease and no quota appeared. The error path itself (scheduler errors mapped to
statuses, tornado's own errors, unexpected exceptions) is also checked on a bare tornado
application with the service's base handler, where a handler can be made to fail.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from urllib.parse import quote

import httpx
import pytest
from gpuhub.scheduler import errors as scheduler_errors
from gpuhub.service.base import BaseHandler
from gpuhub.service.body import MAX_BODY_BYTES, parse_body
from gpuhub.service.errors import STATUS_OF_ERROR, ApiError
from gpuhub.service.models import LeaseRequest, QuotaSpec
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer

from tests.support import http
from tests.support.hub import hub_with_users
from tests.support.login import log_in

ALL_STATUSES = ["queued", "active", "released", "cancelled", "refused"]
NON_ASCII = "élève"
#: Every character JupyterHub allows in a name that means something in a URL or a shell
#: (lower case: the hub's authenticator lower-cases names at login)
URL_AND_SHELL = "zoë smith & co #1? 50% a\\b"


def gpu(count=1, **kw) -> dict:
    return {"shape": {"kind": "gpu", "count": count}, **kw}


def is_json_error(r: httpx.Response, status: int, field: str | None = "-") -> dict:
    """The one error shape; ``field`` checked unless left at "-"."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    data = r.json()
    assert set(data) == {"status", "error", "message", "field"}, data
    assert data["status"] == status and data["message"], data
    if field != "-":
        assert data["field"] == field, data
    return data


# -- a real hub ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """A hub (simulated pool, local GPU servers, reconciliation every second with no grace)
    with users alice and bob (group cs101) and the admin, and an API client for each."""
    env = {
        "GPUHUB_SPAWNER": "local",
        "GPUHUB_POLL_INTERVAL": "0.2",
        "GPUHUB_RECONCILE_INTERVAL": "1",
        "GPUHUB_RECONCILE_GRACE": "0",
    }
    with hub_with_users(tmp_path_factory.mktemp("input"), env=env, groups=["cs101"]) as ns:
        yield ns


@pytest.fixture(autouse=True)
def unchanged(request):
    """Each test: nothing it refused may have left a lease or a quota; then clean up."""
    if "w" not in request.fixturenames:
        yield None
        return
    w = request.getfixturevalue("w")
    before = state(w)
    yield before
    if w.hub.proc is None:
        return
    for lease in w.admin.get("/leases").json()["leases"]:
        assert w.admin.delete(f"/leases/{lease['id']}").status_code == 200
    for q in w.admin.get("/quotas").json()["quotas"]:
        path = f"/quotas/{q['kind']}s/{quote(q['name'], safe='')}"
        assert w.admin.delete(path).status_code == 204


def state(w) -> dict:
    """Every lease (any status) and every quota."""
    leases = w.admin.get("/leases", params={"status": ALL_STATUSES, "limit": 10000})
    quotas = w.admin.get("/quotas")
    assert leases.status_code == quotas.status_code == 200
    return {
        "leases": [(x["id"], x["status"]) for x in leases.json()["leases"]],
        "quotas": [(q["kind"], q["name"], q["quota"]) for q in quotas.json()["quotas"]],
    }


def test_wrong_json_types_are_refused_in_requests_and_previews(w, unchanged):
    lease_bodies = [
        ({"shape": {"kind": "gpu", "count": "2"}}, "shape.count"),
        ({"shape": {"kind": "gpu", "count": True}}, "shape.count"),
        ({"shape": {"kind": "gpu", "count": 2.0}}, "shape.count"),
        (gpu(hours="4"), "hours"),
        (gpu(hours=True), "hours"),
        (gpu(label=5), "label"),
        (gpu(group=["cs101"]), "group"),
        ({"shape": {"kind": "mig", "profile": 1}}, "shape.profile"),
    ]
    for body, field in lease_bodies:
        for path in ("/leases", "/leases/preview"):
            data = is_json_error(w.alice.post(path, json=body), 400, field)
            assert data["error"] == "invalid", data
    quota_bodies = [
        ({"max_units": "3"}, "max_units"),
        ({"max_units": True}, "max_units"),
        ({"priority": "5"}, "priority"),
        ({"priority": 5.0}, "priority"),
        ({"gpu_hours": "10"}, "gpu_hours"),
        ({"allowed_shapes": "gpu"}, "allowed_shapes"),
        ({"period": "term", "term_start": 20260901, "term_end": "2027-01-31"}, "term_start"),
    ]
    for body, field in quota_bodies:
        is_json_error(w.admin.put("/quotas/users/alice", json=body), 400, field)
    assert state(w) == unchanged
    # what the document allows still passes: an integer for a number, dates as ISO strings
    assert w.alice.post("/leases/preview", json=gpu(hours=4)).status_code == 200
    term = {"max_units": 3, "period": "term", "term_start": "2026-09-01", "term_end": "2027-01-31"}
    r = w.admin.put("/quotas/groups/cs101", json=term)
    assert r.status_code == 200, r.text
    assert r.json()["quota"]["max_units"] == 3 and r.json()["quota"]["term_start"] == "2026-09-01"


def test_bodies_that_are_not_sane_json_are_400(w, unchanged):
    deep_but_small = b"[" * 5000 + b"]" * 5000
    digits = b"1" * 5000
    bodies = [
        (b'{"shape": {"kind": "gpu"}, "label": "caf\xe9"}', "not UTF-8"),
        (b"\xff\xfe{}", "not UTF-8"),
        (deep_but_small, "nested deeper than"),
        (b'{"shape": {"kind": "gpu"}, "label": ' + b"[" * 40 + b"]" * 40 + b"}", "nested"),
        (b'{"shape": {"kind": "gpu", "count": ' + digits + b"}}", "number longer than"),
        (b'{"shape": {"kind": "gpu"}, "hours": 1e400}', "number too large"),
        (b'{"shape": {"kind": "gpu"}, "hours": NaN}', "NaN"),
        (b'{"shape": {"kind": "gpu"}, "hours": -Infinity}', "-Infinity"),
        (b'{"shape": {"kind": "gpu"}, "label": "a\\u0000b"}', "NUL"),
        (b'{"shape": {"kind": "gpu"}, "label": "\\ud800"}', "surrogate"),
    ]
    for raw, words in bodies:
        for client, method, path in (
            (w.alice, "POST", "/leases"),
            (w.alice, "POST", "/leases/preview"),
            (w.admin, "PUT", "/quotas/users/alice"),
        ):
            r = client.request(method, path, content=raw)
            data = is_json_error(r, 400)
            assert words in data["message"], (raw[:60], data)
    quota = b'{"max_units": ' + digits + b"}"
    is_json_error(w.admin.put("/quotas/groups/cs101", content=quota), 400)
    assert state(w) == unchanged


def test_bodies_over_the_limit_are_413_json(w, unchanged):
    big = json.dumps(gpu(label="x" * MAX_BODY_BYTES)).encode()
    nested = b"[" * 100_000 + b"]" * 100_000
    for raw in (big, nested):
        data = is_json_error(w.alice.post("/leases", content=raw), 413, None)
        assert data["error"] == "too_large" and "64 KiB" in data["message"]
        is_json_error(w.admin.put("/quotas/users/alice", content=raw), 413)

    def chunked():  # no Content-Length: the limit is found while reading
        yield big[: MAX_BODY_BYTES // 2]
        yield big[MAX_BODY_BYTES // 2 :]

    data = is_json_error(w.alice.post("/leases", content=chunked()), 413)
    assert data["error"] == "too_large"
    # a Content-Length far over tornado's own limit, straight to the service: our JSON
    # 413 and nothing after it (tornado alone would answer a bare "400 Bad Request")
    port = int(w.hub.env["GPUHUB_SERVICE_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /services/gpuhub/api/v1/leases HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"
        )
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"connection: close" in head.lower()
    assert json.loads(rest)["error"] == "too_large"
    assert b"400 Bad Request" not in answer
    assert state(w) == unchanged
    assert w.alice.get("/me").status_code == 200  # and the service is fine


def test_lease_ids_beyond_the_database_are_not_found(w, unchanged):
    for lease_id in ("99999999999999999999999", "2147483648", "2147483647", "1" * 5000, "0"):
        for method in ("GET", "DELETE"):
            data = is_json_error(w.admin.request(method, f"/leases/{lease_id}"), 404, None)
            assert data["error"] == "not_found"
    for path in ("/leases/-1", "/leases/1.5", "/leases/%D9%A3"):  # not digits: no such route
        is_json_error(w.admin.get(path), 404)
    assert state(w) == unchanged


QUERIES = [  # (path, raw query, field)
    ("/leases", "limit=abc", "limit"),
    ("/leases", "limit=0", "limit"),
    ("/leases", "limit=10001", "limit"),
    ("/leases", "limit=%205", "limit"),
    ("/leases", "limit=%2B5", "limit"),
    ("/leases", "limit=5_0", "limit"),
    ("/leases", "limit=%D9%A3", "limit"),
    ("/leases", "limit=" + "9" * 5000, "limit"),
    ("/leases", "limit=5&limit=6", "limit"),
    ("/leases", "status=bogus", "status"),
    ("/leases", "status=%FF", "status"),
    ("/leases", "user=bob%0A", "user"),
    ("/leases", "user=", "user"),
    ("/me", "user=a%01b", "user"),
    ("/me", "user=%FF", "user"),
    ("/usage", "start=bogus", "start"),
    ("/usage", "start=0001-01-01T00:00%2B01:00", "start"),
    ("/usage", "end=9999-12-31T23:59-05:00", "end"),
    ("/usage", "start=2026-01-02&end=2026-01-01", "end"),
    ("/usage", "by=colour", "by"),
    ("/usage", "by=user,user", "by"),
    ("/usage", "by=", "by"),
    ("/usage", "format=xml", "format"),
    ("/usage", "format=json&format=csv", "format"),
    ("/usage", "group=cs101%0A", "group"),
    ("/usage", "user=%FF", "user"),
]


@pytest.mark.parametrize(
    "path, query, field", QUERIES, ids=[f"{p}?{q}"[:40] for p, q, _ in QUERIES]
)
def test_query_arguments_are_checked(w, unchanged, path, query, field):
    data = is_json_error(w.admin.get(f"{path}?{query}"), 400, field)
    assert data["error"] == "invalid"
    assert state(w) == unchanged


def test_names_must_match_whole(w, unchanged):
    for body, field in (
        (gpu(user="bob\n"), "user"),
        (gpu(group="cs101\n"), "group"),
        (gpu(user="bo\x01b"), "user"),
    ):
        data = is_json_error(w.admin.post("/leases", json=body), 400, field)
        assert "is not a valid name" in data["message"]
    for shape, field in (
        ({"kind": "gpu", "model": "H100\n"}, "shape.model"),
        ({"kind": "mig", "profile": "1g.5gb\n"}, "shape.profile"),
        ({"kind": "mig", "profile": "\u0661g.5gb"}, "shape.profile"),  # an Arabic-Indic 1
    ):
        is_json_error(w.admin.post("/leases", json={"shape": shape}), 400, field)
    for path in ("/quotas/users/u18%0A", "/quotas/groups/cs101%0A", "/quotas/users/a%00"):
        is_json_error(w.admin.put(path, json={"max_units": 1}), 400, "name")
        is_json_error(w.admin.get(path), 400, "name")
    assert state(w) == unchanged


def test_unsupported_methods_are_405_json_with_allow(w, unchanged):
    r = w.alice.patch("/leases", json=gpu())
    data = is_json_error(r, 405, None)
    assert r.headers["allow"] == "GET, POST"
    assert "PATCH" in data["message"] and "GET or POST" in data["message"]
    is_json_error(w.alice.request("PUT", "/leases/1", json={}), 405)
    assert state(w) == unchanged


@pytest.mark.parametrize("name", [NON_ASCII, URL_AND_SHELL])
def test_a_user_with_a_non_ascii_name_gets_and_keeps_a_gpu_server(w, name):
    hub = w.hub
    path_name = quote(name, safe="")
    # logs in through the real login form, as a browser does
    with http.client(base_url=hub.url, timeout=30) as browser:
        r = log_in(browser, name, hub.credentials()["user_password"])
        assert r.status_code == 302, r.text
    r = hub.hub_api("POST", f"users/{path_name}/tokens", json={"note": "test"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    # an admin acting for them: their quota and a lease, with their hub groups
    me = w.admin.get("/me", params={"user": name})
    assert me.status_code == 200, me.text
    assert me.json()["name"] == name
    r = w.admin.put(f"/quotas/users/{path_name}", json={"max_units": 3})
    assert r.status_code == 200 and r.json()["name"] == name, r.text
    gone = w.admin.post("/leases", json=gpu(user=name, label=f"server:{name}/gone"))
    assert gone.status_code == 201, gone.text
    assert gone.json()["user"] == name
    # spawns a GPU server through the hub
    r = hub.spawn(path_name, {"profile": "gpu-1"})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_server(path_name, lambda s: bool(s and s["ready"]), timeout=60)
    lease_id = server["state"]["lease_id"]
    with hub.client(token) as own:
        me = own.get("/me")
        assert me.status_code == 200, me.text
        assert me.json()["name"] == name
        assert me.json()["quotas"][0]["name"] == name
        assert lease_id in [x["id"] for x in me.json()["leases"]]
        # reconciliation (every second here) finds the real server and keeps its lease;
        # only the lease of the server that does not exist is released
        deadline = time.monotonic() + 20
        while own.get(f"/leases/{gone.json()['id']}").json()["status"] == "active":
            assert time.monotonic() < deadline, "reconciliation never ran"
            time.sleep(0.3)
        time.sleep(2)  # a couple more rounds
        lease = own.get(f"/leases/{lease_id}").json()
        assert lease["status"] == "active", lease
        assert lease["label"] == f"server:{name}/"
    hub.stop_server(path_name)
    assert w.admin.get(f"/leases/{lease_id}").json()["status"] == "released"


# -- the error path on a bare application --------------------------------------------


class _NoHubAuth:
    async def get_user(self, handler, sync=False):
        return None


class _Fails(BaseHandler):
    requires_auth = False
    hub_auth = _NoHubAuth()

    def get(self, what: str) -> None:
        errors = {
            "invalid": scheduler_errors.SchedulerError("bad", field="x"),
            "forbidden": scheduler_errors.Forbidden("no"),
            "quota": scheduler_errors.QuotaExceeded("user a uses 2 of their 2 GPU units"),
            "unsatisfiable": scheduler_errors.Unsatisfiable("never", field="shape"),
            "missing": scheduler_errors.NotFound("no lease 3"),
            "conflict": scheduler_errors.IdempotencyConflict("key k", field="Idempotency-Key"),
            "unauthenticated": ApiError(401, "log in", code="unauthenticated"),
            "tornado": web.HTTPError(409, "busy %s", "now"),
            "bug": RuntimeError("SELECT secret FROM internals"),
        }
        raise errors[what]

    def post(self, what: str) -> None:
        self.write_json({"got": self.body(LeaseRequest).shape.count})


async def _fetch(path: str, method: str = "GET", body: bytes | None = None):
    """One request to a bare application with the failing handler, on this test's loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    server = HTTPServer(web.Application([(r"/e/(\w+)", _Fails)]))
    server.add_sockets([sock])
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{path}"
    try:
        r = await AsyncHTTPClient().fetch(
            url, method=method, body=body, raise_error=False, request_timeout=10
        )
    finally:
        server.stop()
    return r.code, r.headers, json.loads(r.body)


@pytest.mark.parametrize(
    "what, status, code",
    [
        ("invalid", 400, "invalid"),
        ("forbidden", 403, "forbidden"),
        ("quota", 403, "quota_exceeded"),
        ("unsatisfiable", 422, "unsatisfiable"),
        ("missing", 404, "not_found"),
        ("conflict", 422, "idempotency_conflict"),
        ("unauthenticated", 401, "unauthenticated"),
        ("tornado", 409, "http"),
    ],
)
async def test_errors_map_to_statuses_in_one_place(caplog, what, status, code):
    with caplog.at_level(logging.INFO):
        got, headers, data = await _fetch(f"/e/{what}")
    assert (got, data["status"], data["error"]) == (status, status, code), data
    assert set(data) == {"status", "error", "message", "field"}
    assert headers["Content-Type"] == "application/json"
    assert ("WWW-Authenticate" in headers) == (status == 401)
    assert "Traceback" not in caplog.text  # refusals are no crashes


async def test_unexpected_errors_are_a_generic_500_with_the_traceback_logged(caplog):
    with caplog.at_level(logging.INFO):
        got, _, data = await _fetch("/e/bug")
    assert got == 500 and data["error"] == "internal" and data["field"] is None
    assert "secret" not in data["message"] and "service log" in data["message"]
    assert "SELECT secret FROM internals" in caplog.text and "Traceback" in caplog.text


async def test_tornado_errors_use_the_same_shape():
    got, headers, data = await _fetch("/e/x", method="DELETE")
    assert got == 405 and data["error"] == "method_not_allowed"
    assert headers["Allow"] == "GET, POST"
    body = json.dumps(gpu(2)).encode()
    assert (await _fetch("/e/x", method="POST", body=body))[2] == {"got": 2}


# -- the parser alone --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, field, words",
    [
        (b'{"max_units": "1"}', "max_units", "valid number"),
        (b'{"max_units": 1e999}', None, "too large"),
        (b'{"priority": 1.5}', "priority", "valid integer"),
        (b'{"period": "term", "term_start": "2026-01-01T00:00", "term_end": "2026-02-01"}',
         "term_start", "date"),
        (b'{"allowed_shapes": ["\\u0000"]}', "allowed_shapes", "NUL"),
        (b"[1]", None, "JSON object"),
        (b"", None, "JSON object"),
    ],
)  # fmt: skip
def test_the_parser_names_the_field(raw, field, words):
    with pytest.raises(ApiError) as info:
        parse_body(raw, QuotaSpec)
    assert info.value.status == 400 and info.value.field == field
    assert words in info.value.message


def test_scheduler_errors_know_nothing_of_http():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in (scheduler_errors.SchedulerError, *subclasses(scheduler_errors.SchedulerError)):
        assert not hasattr(cls, "status"), cls
        assert cls in STATUS_OF_ERROR, f"{cls.__name__} has no HTTP status in service/errors.py"
