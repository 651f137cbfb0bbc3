"""Cohorts: a class set up in one step through the service, on a real JupyterHub.

``PUT /api/v1/cohorts/{name}`` creates the hub group, the users it lacks and the
memberships, and sets the group quota; ``POST``/``DELETE`` members; ``GET`` shows it.
Group quotas refuse a group the hub does not have unless ``create=true``. The roster
reader of ``gpuhub cohort`` is tested here too, without a hub.

The hub is the shared one (``shared_hub``): every user and group named here is the
module's own (``unique``, made once at import), so other modules' never meet them.
"""

from __future__ import annotations

import pytest
from gpuhub.cli.cohorts import read_roster
from gpuhub.cli.commands import CliError

from tests.support.hub import hub_config_with, unique, users_on

pytestmark = [pytest.mark.hub, pytest.mark.timeout(120)]

QUOTA = {"max_units": 8, "per_user_max_units": 1, "gpu_hours": 200, "period": "week"}

# The module's groups and the users its cohorts create (the tests build on each other's).
CS101, CAPPED, NEVER, LAB, NOPE = (unique(g) for g in ("cs101", "capped", "never", "lab", "nope"))
LISTED, ORPHAN, MINE, CS10L = (unique(g) for g in ("listed", "orphan", "mine", "cs10l"))
ANN, BO, CY, DEE, ZED, YAN = (unique(u) for u in ("ann", "bo", "cy", "dee", "zed", "yan"))


@pytest.fixture(scope="module")
def w(shared_hub):
    """alice and bob (names of their own: ``w.names``) and the admin on the shared hub."""
    with users_on(shared_hub) as ns:
        yield ns


def members(w, group: str) -> list[str] | None:
    r = w.hub.hub_api("GET", f"groups/{group}")
    return None if r.status_code == 404 else sorted(r.json()["users"])


def user_exists(w, name: str) -> bool:
    return w.hub.hub_api("GET", f"users/{name}").status_code == 200


# -- the service ------------------------------------------------------------------------


def test_put_creates_group_users_members_and_quota_in_one_request(w) -> None:
    alice = w.names["alice"]
    r = w.admin.put(f"/cohorts/{CS101}", json={"members": [alice, ANN, ANN, BO], "quota": QUOTA})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["group_created"] is True
    assert data["users_created"] == [ANN, BO]
    assert data["members_added"] == [alice, ANN, BO]
    assert data["members"] == [alice, ANN, BO]
    assert data["quota"]["quota"]["per_user_max_units"] == 1
    assert members(w, CS101) == [alice, ANN, BO]
    assert w.admin.get(f"/quotas/groups/{CS101}").json()["quota"]["max_units"] == 8

    # again, with one more: the group is updated, the quota kept when not given
    r = w.admin.put(f"/cohorts/{CS101}", json={"members": [alice, CY]})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["group_created"] is False and data["users_created"] == [CY]
    assert data["members_added"] == [CY] and data["members"] == [alice, ANN, BO, CY]
    assert data["quota"]["quota"]["gpu_hours"] == 200


def test_per_member_cap_is_the_group_quota_per_user_max_units(w) -> None:
    r = w.admin.put(f"/cohorts/{CAPPED}", json={"members": [w.names["bob"]], "quota": QUOTA})
    assert r.status_code == 200, r.text
    token = w.hub.add_user(w.names["bob"])  # a new token: its model has the new group
    with w.hub.client(token) as bob:
        r = bob.post("/leases", json={"shape": {"kind": "gpu", "count": 2}, "group": CAPPED})
        assert r.status_code == 403, r.text
        assert f"each member of group {CAPPED}" in r.json()["message"]
        r = bob.post("/leases", json={"shape": {"kind": "gpu", "count": 1}, "group": CAPPED})
        assert r.status_code == 201, r.text
        lease = r.json()
        assert w.admin.delete(f"/leases/{lease['id']}").status_code == 200
    usage = w.admin.get(f"/cohorts/{CAPPED}").json()["usage"]
    assert [row["user"] for row in usage["rows"]] == [w.names["bob"]]
    assert usage["period"].startswith("this week")


def test_missing_users_refused_when_not_to_be_created_and_nothing_changes(w) -> None:
    before = members(w, CS101)
    r = w.admin.put(
        f"/cohorts/{CS101}",
        json={"members": [w.names["alice"], ZED, YAN], "create_users": False,
              "quota": {"max_units": 1}},
    )  # fmt: skip
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "no_such_user" and err["field"] == "create_users"
    assert err["message"] == (
        f"JupyterHub has no users {ZED}, {YAN}; fix the roster, or let them be created "
        "(create_users: true)"
    )
    assert members(w, CS101) == before
    assert not user_exists(w, ZED) and not user_exists(w, YAN)
    assert w.admin.get(f"/quotas/groups/{CS101}").json()["quota"]["max_units"] == 8
    # and a new cohort is not even created
    r = w.admin.put(f"/cohorts/{NEVER}", json={"members": [ZED], "create_users": False})
    assert r.status_code == 400 and members(w, NEVER) is None


def test_add_remove_and_show_members(w) -> None:
    alice, bob = w.names["alice"], w.names["bob"]
    assert w.admin.put(f"/cohorts/{LAB}", json={"members": [alice]}).status_code == 200
    r = w.admin.post(f"/cohorts/{LAB}/members", json={"users": [bob, DEE]})
    assert r.status_code == 200, r.text
    assert r.json()["users_created"] == [DEE] and r.json()["members"] == [alice, bob, DEE]
    r = w.admin.delete(f"/cohorts/{LAB}/members/{DEE}")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": LAB, "members_removed": [DEE], "members": [alice, bob]}
    assert user_exists(w, DEE)  # out of the group, still in the hub
    r = w.admin.delete(f"/cohorts/{LAB}/members/{DEE}")
    assert r.status_code == 404 and r.json()["field"] == "user"
    shown = w.admin.get(f"/cohorts/{LAB}").json()
    assert shown["members"] == [alice, bob] and shown["quota"] is None
    assert shown["usage"]["rows"] == [] and shown["usage"]["total_gpu_hours"] == 0
    # a group the hub lacks
    for r in (
        w.admin.get(f"/cohorts/{NOPE}"),
        w.admin.post(f"/cohorts/{NOPE}/members", json={"users": [alice]}),
        w.admin.delete(f"/cohorts/{NOPE}/members/{alice}"),
    ):
        assert r.status_code == 404 and f"JupyterHub has no group {NOPE}" in r.json()["message"]
    assert members(w, NOPE) is None


def test_list_shows_every_hub_group_with_members_and_quota(w) -> None:
    alice = w.names["alice"]
    assert (
        w.admin.put(f"/cohorts/{LISTED}", json={"members": [alice], "quota": QUOTA}).status_code
        == 200
    )
    assert (
        w.admin.put(f"/quotas/groups/{ORPHAN}?create=true", json={"max_units": 1}).status_code
        == 200
    )
    assert w.hub.hub_api("DELETE", f"groups/{ORPHAN}").status_code == 204  # gone from the hub
    cohorts = {c["name"]: c for c in w.admin.get("/cohorts").json()["cohorts"]}
    listed = cohorts[LISTED]
    assert listed["in_hub"] is True and listed["members"] == [alice]
    assert listed["quota"]["quota"]["max_units"] == 8
    assert cohorts[ORPHAN] == {
        "name": ORPHAN,
        "in_hub": False,
        "members": [],
        "quota": cohorts[ORPHAN]["quota"],
    }
    assert cohorts[ORPHAN]["quota"]["quota"]["max_units"] == 1
    assert list(cohorts) == sorted(cohorts)
    r = w.alice.get("/cohorts")
    assert r.status_code == 403 and "custom:gpuhub:admin" in r.json()["message"]


def test_release_keeps_who_and_why_in_the_ledger(w) -> None:
    lease = w.alice.post("/leases", json={"shape": {"kind": "gpu"}, "group": LISTED}).json()
    r = w.admin.delete(f"/leases/{lease['id']}", params={"reason": "x" * 201})
    assert r.status_code == 400 and r.json()["field"] == "reason"
    r = w.admin.delete(f"/leases/{lease['id']}", params={"reason": "line\nbreak"})
    assert r.status_code == 400 and "one line" in r.json()["message"]
    assert w.alice.get(f"/leases/{lease['id']}").json()["status"] == "active"  # unchanged
    r = w.admin.delete(f"/leases/{lease['id']}", params={"reason": "  lab starts at 14:00 "})
    assert r.status_code == 200, r.text
    ended = w.alice.get(f"/leases/{lease['id']}").json()
    assert ended["status"] == "released"
    assert ended["end_reason"] == "released by admin: lab starts at 14:00"
    lease = w.alice.post("/leases", json={"shape": {"kind": "gpu"}, "group": LISTED}).json()
    assert w.alice.delete(f"/leases/{lease['id']}").json()["end_reason"] == (
        f"released by {w.names['alice']}"
    )


def test_cohorts_are_for_admins_and_names_are_checked(w) -> None:
    alice = w.names["alice"]
    for r in (
        w.alice.get(f"/cohorts/{CS101}"),
        w.alice.put(f"/cohorts/{MINE}", json={"members": [alice]}),
        w.alice.post(f"/cohorts/{CS101}/members", json={"users": [alice]}),
        w.alice.delete(f"/cohorts/{CS101}/members/{w.names['bob']}"),
    ):
        assert r.status_code == 403 and "custom:gpuhub:admin" in r.json()["message"]
    assert members(w, MINE) is None
    r = w.admin.put(f"/cohorts/{LAB}", json={"members": ["a/b"]})
    assert r.status_code == 400 and "not a valid name" in r.json()["message"]
    r = w.admin.put(f"/cohorts/{LAB}", json={"members": ["x"], "extra": 1})
    assert r.status_code == 400 and r.json()["field"] == "extra"
    r = w.admin.post(f"/cohorts/{LAB}/members", json={"users": []})
    assert r.status_code == 400 and r.json()["field"] == "users"


def test_group_quota_needs_a_group_the_hub_has(w) -> None:
    r = w.admin.put(f"/quotas/groups/{CS10L}", json={"max_units": 4})
    assert r.status_code == 404, r.text
    assert r.json()["message"].startswith(f"JupyterHub has no group {CS10L}")
    assert w.admin.get(f"/quotas/groups/{CS10L}").status_code == 404
    assert members(w, CS10L) is None
    r = w.admin.put(f"/quotas/groups/{CS10L}?create=yes", json={"max_units": 4})
    assert r.status_code == 400 and r.json()["field"] == "create"
    r = w.admin.put(f"/quotas/users/{w.names['alice']}?create=true", json={"max_units": 4})
    assert r.status_code == 400 and r.json()["field"] == "create"
    r = w.admin.put(f"/quotas/groups/{CS10L}?create=true", json={"max_units": 4})
    assert r.status_code == 200, r.text
    assert members(w, CS10L) == []
    r = w.admin.put(f"/quotas/groups/{CS10L}", json={"max_units": 5})  # exists now
    assert r.status_code == 200 and r.json()["quota"]["max_units"] == 5


def test_usage_by_week_and_month(w) -> None:
    for by, key in (("week,user", "week"), ("month", "month")):
        r = w.admin.get("/usage", params={"by": by})
        assert r.status_code == 200, r.text
        assert r.json()["by"] == by.split(",")
        assert all(key in row for row in r.json()["rows"])
    r = w.admin.get("/usage", params={"by": "day,week"})
    assert r.status_code == 400 and r.json()["field"] == "by"
    assert "at most one of day, week, month" in r.json()["message"]


# -- the roster -------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["1", "0"])
def test_the_service_may_create_users_unless_turned_off(tmp_path, switch: str) -> None:
    """GPUHUB_COHORT_CREATE_USERS=0 leaves the broad admin:users scope out of the role."""
    role = hub_config_with(tmp_path, GPUHUB_COHORT_CREATE_USERS=switch)["roles"]["gpuhub-service"]
    assert "admin:groups" in role["scopes"]
    assert ("admin:users" in role["scopes"]) is (switch == "1")


def test_roster_one_name_per_line_or_a_username_column(tmp_path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("# cs101 fall\nann\n\nbo\nann\nélève\n")
    assert read_roster(str(plain)) == ["ann", "bo", "élève"]
    table = tmp_path / "table.csv"
    table.write_text('\ufeffEmail,Username,Name\na@x.edu,ann,Ann A\nb@x.edu,bo,"Bo, B"\n')
    assert read_roster(str(table)) == ["ann", "bo"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("email,name\na@x,Ann\n", "none is called 'username'"),
        ("ann\nbad/name\n", "line 2: user name 'bad/name' is not a valid name"),
        ("username\n", "names no users"),
        ("username,x\n,1\n", "line 2: user name '' is not a valid name"),
    ],
)
def test_roster_problems_name_the_flag_and_the_line(tmp_path, text: str, words: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(CliError) as info:
        read_roster(str(path))
    assert info.value.message.startswith(f"--members {path}") and words in info.value.message
    with pytest.raises(CliError, match="cannot read the roster"):
        read_roster(str(tmp_path / "missing.csv"))


# -- units for people -------------------------------------------------------------------


def test_units_read_as_fractions_of_a_gpu_where_a_decimal_would_round() -> None:
    from fractions import Fraction

    from gpuhub.terms import fmt_gpus, fmt_units

    assert fmt_units(1 / 7) == fmt_units(Fraction(1, 7)) == "1/7"  # not "0.14"
    assert fmt_units(3 / 7) == "3/7" and fmt_units(Fraction(10, 7)) == "1 3/7"
    assert fmt_units(2) == "2" and fmt_units(0.5) == "0.5" and fmt_units(0.15) == "0.15"
    assert fmt_units(0.123456) == "0.12"  # no small fraction fits
    assert fmt_gpus(1 / 7) == "1/7 GPU" and fmt_gpus(1) == "1 GPU" and fmt_gpus(2) == "2 GPUs"
