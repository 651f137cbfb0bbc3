"""``gpuhub reserve``, ``gpuhub reservations`` and ``gpuhub reservation show | delete``,
run as real subprocesses against a real JupyterHub with the gpuhub service.

Times print in the reservation's own time zone (``every Tue 14:00–16:00 UTC``); errors
are one line naming the command's flags (``--start``, ``--tz``), not the API's fields.
The rendering helpers are checked without a hub. The hub is the shared one
(``shared_hub``): the module's group and user are its own, its windows are in 2030, and
each test deletes what it reserved.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from gpuhub.cli.reservations import fmt_state, fmt_window, reservation_table
from gpuhub.client import AsyncGpuhubClient, GpuhubClient, GpuhubError

from tests.support.cli import cli_as, ok, one_line_error
from tests.support.hub import Hub, unique

# -- rendering, without a hub -------------------------------------------------------------


def test_windows_print_in_their_own_time_zone() -> None:
    start, end = "2030-01-08T13:00:00+00:00", "2030-01-08T15:00:00+00:00"
    assert fmt_window(start, end, "UTC", weekly=True) == "every Tue 13:00–15:00 UTC"
    assert fmt_window(start, end, "UTC") == "Tue 2030-01-08 13:00–15:00 UTC"
    assert fmt_window(start, end, "Europe/Berlin", weekly=True) == "every Tue 14:00–16:00 CET"
    over = fmt_window("2030-01-08T22:00:00+00:00", "2030-01-09T02:00:00+00:00", "UTC")
    assert over == "Tue 2030-01-08 22:00–Wed 2030-01-09 02:00 UTC"
    r = {"state": "open", "timezone": "America/New_York",
         "current": {"start": start, "end": "2030-01-08T21:00:00+00:00"}, "next": None}  # fmt: skip
    assert fmt_state(r) == "open until 16:00 EST"
    r = {"state": "upcoming", "timezone": "UTC", "current": None,
         "next": {"start": start, "end": end}}  # fmt: skip
    assert fmt_state(r) == "next Tue 2030-01-08 13:00 UTC"
    table = reservation_table(
        [{"id": 3, "group": "cs101", "shape": {"kind": "mig", "profile": "1g.10gb"}, "count": 8,
          "start": start, "end": end, "timezone": "UTC", "repeat": "weekly", "note": "lab", **r}]
    )  # fmt: skip
    assert "8 x MIG 1g.10gb" in table and "every Tue 13:00–15:00 UTC" in table


# -- against a hub -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(hub: Hub) -> str:
    """The module's hub group (``lab1-…``)."""
    name = unique("lab1")
    assert hub.hub_api("POST", f"groups/{name}").status_code == 201
    return name


@pytest.fixture(scope="module")
def user_token(hub: Hub, lab: str) -> str:
    """A token of dana (``dana-…``), in the module's group."""
    return hub.add_user(unique("dana"), groups=[lab])


@pytest.mark.hub
@pytest.mark.timeout(120)
def test_reserve_list_show_delete(hub: Hub, admin_token: str, user_token: str, lab: str) -> None:
    made: list[str] = []  # deleted at the end, whatever happens
    try:
        out = ok(cli_as(hub, admin_token, "reserve", lab, "--mig", "1g.5gb", "--count", "2",
                        "--start", "2030-01-08T14:00", "--end", "2030-01-08T16:00", "--weekly",
                        "--note", "Tuesday lab"))  # fmt: skip
        first = out.splitlines()[0]
        assert first.startswith("reservation ") and first.endswith(" made"), out
        rid = first.split()[1]
        made.append(rid)
        assert f"2 x MIG 1g.5gb for group {lab}" in out
        assert "every Tue 14:00–16:00 UTC" in out and "note:    Tuesday lab" in out

        # anyone may list and show; --group filters; --json is the API's
        out = ok(cli_as(hub, user_token, "reservations"))
        assert out.splitlines()[0].split() == ["ID", "GROUP", "DEVICES", "WHEN", "STATE", "NOTE"]
        assert "every Tue 14:00–16:00 UTC" in out and "next Tue 2030-01-08 14:00 UTC" in out
        other = unique("other")
        assert ok(cli_as(hub, user_token, "reservations", "--group", other)).strip() == (
            f"no reservations for group {other}"
        )
        data = json.loads(ok(cli_as(hub, user_token, "reservations", "--json")))
        assert [r["id"] for r in data["reservations"] if r["group"] == lab] == [int(rid)]
        out = ok(cli_as(hub, user_token, "reservation", "show", rid))
        assert out.startswith(f"reservation {rid}: 2 x MIG 1g.5gb for group {lab}")
        assert "sim-node-1 GPU 4 slice 1g.5gb" in out

        # the clients' calls (blocking and asyncio) say the same
        url = f"{hub.url}/services/gpuhub"
        with GpuhubClient(url, user_token) as c:
            assert c.reservation(int(rid)) == c.reservations(group=lab)[0]
        aclient = AsyncGpuhubClient(url, user_token)
        listed = asyncio.run(aclient.reservations())
        assert [r["id"] for r in listed if r["group"] == lab] == [int(rid)]
        with pytest.raises(GpuhubError) as e:
            asyncio.run(aclient.delete_reservation(int(rid)))
        assert e.value.status == 403

        # in another time zone: the wall time stays 14:00 there
        out = ok(cli_as(hub, admin_token, "reserve", lab, "--gpus", "2", "--tz", "Europe/Berlin",
                        "--start", "2030-07-09 14:00", "--end", "2030-07-09 16:00", "--json"))  # fmt: skip
        berlin = json.loads(out)
        made.append(str(berlin["id"]))
        assert berlin["timezone"] == "Europe/Berlin" and berlin["start"].endswith("+02:00")
        assert "Tue 2030-07-09 14:00–16:00 CEST" in ok(
            cli_as(hub, user_token, "reservation", "show", str(berlin["id"]))
        )

        # only admins delete
        msg = one_line_error(cli_as(hub, user_token, "reservation", "delete", rid))
        assert msg == "deleting reservations needs the custom:gpuhub:admin scope (gpuhub admins)"
        out = ok(cli_as(hub, admin_token, "reservation", "delete", rid))
        made.remove(rid)
        assert out.startswith(f"deleted reservation {rid}: 2 x MIG 1g.5gb for group {lab}")
        ok(cli_as(hub, admin_token, "reservation", "delete", str(berlin["id"])))
        made.remove(str(berlin["id"]))
        assert one_line_error(cli_as(hub, user_token, "reservation", "show", rid)) == (
            f"no reservation {rid}"
        )
    finally:
        with hub.client(admin_token) as c:
            for left in made:
                c.delete(f"/reservations/{left}")


@pytest.mark.hub
@pytest.mark.timeout(120)
def test_errors_name_the_flags_and_change_nothing(hub: Hub, admin_token: str, lab: str) -> None:
    when = ["--start", "2030-01-08T14:00", "--end", "2030-01-08T16:00"]
    cs10l = unique("cs10l")
    with hub.client(admin_token) as c:
        before = {r["id"] for r in c.get("/reservations").json()["reservations"]}

    def error(*args: str) -> str:
        return one_line_error(cli_as(hub, admin_token, "reserve", *args))

    assert error(lab, "--mig", "1g.5gb", "--start", "tomorrow", "--end", "2030-01-08T16:00").startswith("--start 'tomorrow' is not a date and time")  # fmt: skip
    assert error(lab, "--mig", "1g.5gb", "--start", "2030-01-08", "--end", "2030-01-09T16:00").startswith("--start '2030-01-08' has no time of day")  # fmt: skip
    assert error(lab, "--mig", "1g.5gb", *when, "--tz", "Mars/Olympus").startswith(
        "--tz: 'Mars/Olympus' is not a known IANA time zone name"
    )
    assert error(
        lab, "--mig", "1g.5gb", "--start", "2030-01-08T16:00", "--end", "2030-01-08T14:00"
    ) == (  # fmt: skip
        "--end must be after start"
    )
    assert error(lab, "--mig", "big", *when).startswith("--mig: must be a MIG profile")
    assert error(lab, "--mig", "1g.5gb", *when, "--note", "x" * 501).startswith("--note:")
    assert error(lab, "--gpus", "2", "--count", "2", *when).startswith(
        "give the number of GPUs once"
    )
    assert error(lab, "--gpus", "99", *when).startswith("the pool has only")
    assert error(cs10l, "--shared", *when) == (
        f"JupyterHub has no group {cs10l}: check the name, or create the group first "
        "(gpuhub cohort create)"
    )
    assert error("bad/name", "--shared", *when).startswith("group name 'bad/name' is not a valid")
    r = cli_as(hub, admin_token, "reserve", lab, "--mig", "1g.5gb", "--count", "0", *when)
    assert r.returncode == 2 and "--count" in r.stderr
    r = cli_as(hub, admin_token, "reserve", lab, *when)
    assert r.returncode == 2 and "--gpus" in r.stderr
    with hub.client(admin_token) as c:  # none was made (by this test: others may have some)
        after = c.get("/reservations").json()["reservations"]
        assert [r for r in after if r["id"] not in before] == []
