"""Reservations over REST, on a real JupyterHub with the gpuhub service.

``POST /api/v1/reservations`` (admins) keeps devices for a hub group in a window;
``GET`` lists and shows them to everyone; ``DELETE`` (admins) gives the devices back.
Bad bodies are refused naming the field, and change nothing; a group the hub lacks is a
404. While a window is open a non-member's request for the reserved shape waits with the
reason ``reserved`` in ``GET /queue``; deleting the reservation, or the service's timer
when the window closes, grants it. The windows here are real time (the service runs in
its own process): they are open now, and the one that closes does so a few seconds
after it is made; the placement rules themselves are tested with an injected clock in
the scheduler's tests.

The hub is the shared one (``shared_hub``): the module's users and group are its own
(``unique``), the tests look at the reservations they made (``listed``), and each deletes
them, and releases its leases, before the next test (of any module) runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import yaml
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.shapes import MigSlice
from gpuhub.service.reservations import ReservationTimer
from jsonschema import Draft202012Validator

from tests.support.clock import FakeClock
from tests.support.hub import unique, users_on, wait_for
from tests.support.paths import DOCS

pytestmark = pytest.mark.timeout(150)

MIG = {"kind": "mig", "profile": "1g.5gb"}
CS101 = unique("cs101")  # the module's group: carol is in it
OPENAPI = DOCS / "reference" / "openapi.yaml"  # the embedded default's A100 has 7 of these


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def window(minutes_before: float = 60, minutes_after: float = 60) -> dict:
    now = time.time()
    return {"start": iso(now - minutes_before * 60), "end": iso(now + minutes_after * 60)}


# -- the timer, on a scheduler with a fake clock (no hub) ---------------------------------


def test_the_timer_ticks_at_the_next_boundary_and_arms_itself_again(tmp_path) -> None:
    clock = FakeClock()
    engine = open_engine(f"sqlite:///{tmp_path / 'gpuhub.sqlite'}")
    s = Scheduler(engine, parse_spec("n: 1xA100-40GB[mig=7x1g.5gb]"), clock=clock)
    slice_ = MigSlice(kind="mig", profile="1g.5gb")
    s.reserve(group="cs101", shape=slice_, count=7, start=clock.now - 60, end=clock.now + 0.2,
              by="admin")  # fmt: skip
    lease = s.request(user="bob", user_groups=[], shape=slice_)
    assert lease.status == "queued"
    timer = ReservationTimer(s, max_delay=30)

    async def run() -> None:
        timer.start()  # due 0.2 s from now, by the scheduler's clock
        clock.advance(0.2)  # the window closes (the fake clock is ahead of the loop's)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if s.get(lease.id).status == "active":
                break
        timer.stop()

    started = time.monotonic()
    asyncio.run(run())
    assert s.get(lease.id).status == "active"
    assert time.monotonic() - started < 1.5
    assert s.next_boundary() is None  # nothing more to wait for: the timer looks again in 30 s
    engine.dispose()


def test_the_service_settings_are_checked() -> None:
    from gpuhub.service.app import GpuhubService
    from traitlets import TraitError

    assert GpuhubService(reservation_timezone="Europe/Berlin").reservation_timezone == (
        "Europe/Berlin"
    )
    with pytest.raises(TraitError, match="'Mars/Olympus' is not a known IANA time zone"):
        GpuhubService(reservation_timezone="Mars/Olympus")
    with pytest.raises(TraitError, match="reservation_guard must be seconds >= 0"):
        GpuhubService(reservation_guard=-1)


# -- the service ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def w(shared_hub):
    """alice and bob (in no group), the admin, and carol in the module's group ``CS101``:
    names of their own (``w.names``) on the shared hub."""
    with users_on(shared_hub) as ns:
        ns.names["carol"] = unique("carol")
        ns.carol = ns.hub.client(ns.hub.add_user(ns.names["carol"], groups=[CS101]))
        try:
            yield ns
        finally:
            ns.carol.close()


@pytest.fixture(autouse=True)
def _mine(request):
    """The reservations there were before the test: ``listed`` leaves them out."""
    if "w" in request.fixturenames:
        w = request.getfixturevalue("w")
        w.before = {r["id"] for r in w.admin.get("/reservations").json()["reservations"]}
    yield


def schema_errors(name: str, value: dict) -> list[str]:
    """What in ``value`` does not match schema ``name`` of the OpenAPI document."""
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(value)]


def mine(w, reservations: list[dict]) -> list[dict]:
    """The reservations made since the test began (other modules' are not this one's)."""
    return [r for r in reservations if r["id"] not in w.before]


def listed(w) -> list[dict]:
    r = w.admin.get("/reservations")
    assert r.status_code == 200, r.text
    return mine(w, r.json()["reservations"])


def release_all(w) -> None:
    """Release the module's users' leases and delete the reservations the test made."""
    ours = {w.names["alice"], w.names["bob"], w.names["carol"]}
    for lease in w.admin.get("/leases").json()["leases"]:
        if lease["user"] in ours:
            w.admin.delete(f"/leases/{lease['id']}")
    for r in listed(w):
        w.admin.delete(f"/reservations/{r['id']}")


@pytest.mark.hub
def test_admin_creates_everyone_lists_and_shows_admin_deletes(w) -> None:
    try:
        body = {"group": CS101, "shape": MIG, "count": 3, **window(), "note": "lab"}
        r = w.admin.post("/reservations", json=body)
        assert r.status_code == 201, r.text
        res = r.json()
        assert r.headers["Location"].endswith(f"/api/v1/reservations/{res['id']}")
        assert res["group"] == CS101 and res["count"] == 3 and len(res["devices"]) == 3
        assert res["shape"] == MIG and res["repeat"] == "once" and res["timezone"] == "UTC"
        assert res["state"] == "open" and res["current"] is not None and res["note"] == "lab"
        assert res["created_by"] == w.admin_name and CS101 in res["message"]
        assert schema_errors("Reservation", res) == []

        # everyone may read them: a plain user lists, filters and shows
        everyone = w.bob.get("/reservations").json()["reservations"]
        assert [x["id"] for x in mine(w, everyone)] == [res["id"]]
        assert w.bob.get("/reservations", params={"group": CS101}).json()["reservations"]
        other = unique("other")
        assert w.bob.get("/reservations", params={"group": other}).json()["reservations"] == []
        r = w.bob.get("/reservations", params={"group": "bad/name"})
        assert r.status_code == 400 and r.json()["field"] == "group"
        assert schema_errors("ReservationList", w.bob.get("/reservations").json()) == []
        shown = w.bob.get(f"/reservations/{res['id']}")
        assert shown.status_code == 200 and shown.json()["devices"] == res["devices"]

        # a plain user may not delete it; the admin does, and gets it back as it was
        r = w.bob.delete(f"/reservations/{res['id']}")
        assert r.status_code == 403 and "custom:gpuhub:admin" in r.json()["message"]
        r = w.admin.delete(f"/reservations/{res['id']}")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == res["id"] and r.json()["devices"] == res["devices"]
        for r in (
            w.bob.get(f"/reservations/{res['id']}"),
            w.admin.delete(f"/reservations/{res['id']}"),
            w.admin.get("/reservations/99999999999"),
        ):
            assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
        assert listed(w) == []

    finally:
        release_all(w)


@pytest.mark.hub
def test_a_user_may_not_reserve(w) -> None:
    r = w.bob.post("/reservations", json={"group": CS101, "shape": MIG, "count": 1, **window()})
    assert r.status_code == 403, r.text
    assert r.json()["message"] == (
        "reserving devices needs the custom:gpuhub:admin scope (gpuhub admins)"
    )
    assert listed(w) == []


@pytest.mark.hub
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"colour": "red"}, "colour", "unknown field"),
        ({"count": "2"}, "count", "integer"),
        ({"count": 0}, "count", "greater than or equal to 1"),
        ({"count": 1025}, "count", "less than or equal to 1024"),
        ({"count": 2.0}, "count", "integer"),
        ({"group": " lead"}, "group", "not a valid name"),
        ({"group": None}, "group", "string"),
        ({"note": "x" * 501}, "note", "at most 500"),
        ({"start": "tomorrow"}, "start", "ISO 8601"),
        ({"start": "2026-12-08"}, "start", "ISO 8601"),
        ({"end": "2026-12-08T25:00"}, "end", "ISO 8601"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"timezone": "../../etc/passwd"}, "timezone", "IANA"),
        ({"repeat": "daily"}, "repeat", "'once' or 'weekly'"),
        ({"shape": {"kind": "tpu"}}, "shape", "shape.kind"),
        ({"shape": {"kind": "mig"}}, "shape.profile", "required"),
        ({"shape": {"kind": "gpu", "count": 2}}, "shape.count", "count"),
        ({"shape": {"kind": "gpu", "nodes": 2}}, "shape.nodes", "nodes"),
    ],
)
def test_bad_bodies_name_the_field_and_create_nothing(w, change, field, words) -> None:
    body = {"group": CS101, "shape": MIG, "count": 1, **window(), **change}
    r = w.admin.post("/reservations", json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "invalid" and err["field"] == field, err
    assert words in err["message"] and field.split(".")[-1] in err["message"], err
    assert listed(w) == []


@pytest.mark.hub
def test_missing_fields_and_impossible_windows_are_refused(w) -> None:
    now = time.time()
    for body, field in [
        ({"group": CS101, "shape": MIG, "count": 1, "end": iso(now + 60)}, "start"),
        ({"group": CS101, "shape": MIG, "count": 1, "start": iso(now)}, "end"),
        ({"group": CS101, "shape": MIG, "count": 1, "start": iso(now + 60), "end": iso(now)}, "end"),
        ({"group": CS101, "shape": MIG, "count": 1, "start": iso(now - 7200), "end": iso(now - 3600)}, "end"),
        ({"group": CS101, "shape": MIG, "count": 1, "start": iso(now), "end": iso(now + 8 * 86400)}, "end"),
    ]:  # fmt: skip
        r = w.admin.post("/reservations", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
    r = w.admin.post("/reservations", content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["message"]
    assert listed(w) == []


@pytest.mark.hub
def test_an_unknown_group_is_404_naming_it(w) -> None:
    cs10l = unique("cs10l")
    r = w.admin.post("/reservations", json={"group": cs10l, "shape": MIG, "count": 1, **window()})
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "group"
    assert f"JupyterHub has no group {cs10l}" in r.json()["message"]
    assert listed(w) == []


@pytest.mark.hub
def test_more_than_the_pool_has_or_than_is_free_of_reservations(w) -> None:
    try:
        r = w.admin.post(
            "/reservations", json={"group": CS101, "shape": MIG, "count": 8, **window()}
        )
        assert r.status_code == 422 and r.json()["error"] == "unsatisfiable", r.text
        first = w.admin.post(
            "/reservations", json={"group": CS101, "shape": MIG, "count": 5, **window()}
        )
        assert first.status_code == 201, first.text
        r = w.admin.post(
            "/reservations", json={"group": CS101, "shape": MIG, "count": 3, **window()}
        )
        assert r.status_code == 409 and r.json()["error"] == "conflict", r.text
        assert [x["id"] for x in listed(w)] == [first.json()["id"]]
    finally:
        release_all(w)


@pytest.mark.hub
def test_wall_times_are_in_the_reservation_time_zone(w) -> None:
    try:
        r = w.admin.post(
            "/reservations",
            json={"group": CS101, "shape": {"kind": "shared"}, "count": 1, "repeat": "weekly",
                  "start": "2030-01-08T14:00", "end": "2030-01-08T16:00", "timezone": "Europe/Berlin"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        res = r.json()
        assert res["timezone"] == "Europe/Berlin" and res["state"] == "upcoming"
        assert schema_errors("Reservation", res) == []
        start = dt.datetime.fromisoformat(res["start"])
        assert start.astimezone(dt.UTC) == dt.datetime(2030, 1, 8, 13, 0, tzinfo=dt.UTC)
    finally:
        release_all(w)


@pytest.mark.hub
def test_the_queue_says_reserved_and_members_get_the_devices(w) -> None:
    try:
        r = w.admin.post(
            "/reservations", json={"group": CS101, "shape": MIG, "count": 7, **window()}
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        r = w.bob.post("/leases", json={"shape": MIG})
        assert r.status_code == 201 and r.json()["status"] == "queued", r.text
        queued = r.json()["id"]
        entry = next(x for x in w.bob.get("/queue").json()["queue"] if x["id"] == queued)
        assert entry["waiting"]["reason"] == "reserved", entry
        assert f"reserved for {CS101}" in entry["waiting"]["message"]
        # a member is granted one of the reserved slices, though bob asked first
        r = w.carol.post("/leases", json={"shape": MIG})
        assert r.status_code == 201 and r.json()["status"] == "active", r.text
        reserved = {d["uuid"] for d in w.admin.get(f"/reservations/{rid}").json()["devices"]}
        assert {d["uuid"] for d in r.json()["devices"]} <= reserved
        # deleting the reservation gives its devices back at once: bob is granted
        assert w.admin.delete(f"/reservations/{rid}").status_code == 200
        assert w.bob.get(f"/leases/{queued}").json()["status"] == "active"
    finally:
        release_all(w)


@pytest.mark.hub
def test_the_timer_grants_a_waiting_request_when_the_window_closes(w) -> None:
    try:
        closes = time.time() + 4
        body = {"group": CS101, "shape": MIG, "count": 7, "start": iso(closes - 3600),
                "end": dt.datetime.fromtimestamp(closes, dt.UTC).isoformat()}  # fmt: skip
        assert w.admin.post("/reservations", json=body).status_code == 201
        r = w.bob.post("/leases", json={"shape": MIG})
        assert r.status_code == 201, r.text
        lease = r.json()
        if time.time() < closes - 0.5:  # (a slow machine may already be past the window)
            assert lease["status"] == "queued" and lease["waiting"]["reason"] == "reserved"
        granted = wait_for(
            lambda: w.bob.get(f"/leases/{lease['id']}").json()["status"] == "active", timeout=20
        )
        assert granted and time.time() >= closes
        assert listed(w)[0]["state"] == "ended"
    finally:
        release_all(w)
