"""The ``gpuhub`` command line against a real JupyterHub with the gpuhub service.

The CLI runs as a real subprocess (``python -m gpuhub.cli.main``) with ``GPUHUB_URL`` and
``GPUHUB_TOKEN`` in its environment, as a person or a script would run it. One hub serves
the whole module, and other modules too (``shared_hub``): each test uses users and groups
of its own (``unique``), and looks at its own rows of what admins list.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.support import http
from tests.support.cli import ADMIN, cli_as, ok, one_line_error, run_cli, service_url
from tests.support.hub import Hub, free_port, unique

pytestmark = pytest.mark.hub


# -- the done-when flow ---------------------------------------------------------------


def test_group_quota_set_by_admin_is_seen_and_enforced(hub: Hub, admin_token: str) -> None:
    cs101, name = unique("cs101"), unique("alice")
    ok(cli_as(hub, admin_token, "quota", "set", "--group", cs101, "--max-units", "1", "--create"))
    alice = hub.add_user(name, groups=[cs101])

    # through the API ...
    with hub.client(alice) as c:
        me = c.get("/me").json()
    groups = {q["name"]: q for q in me["quotas"] if q["kind"] == "group"}
    assert groups[cs101]["quota"]["max_units"] == 1

    # ... and through the CLI
    out = ok(cli_as(hub, alice, "quota", "show"))
    line = next(x for x in out.splitlines() if x.startswith("group") and cs101 in x)
    assert line.split()[:3] == ["group", cs101, "1"]
    data = json.loads(ok(cli_as(hub, alice, "quota", "show", "--json")))
    assert data["name"] == name and data["groups"] == [cs101]
    out = ok(cli_as(hub, alice, "quota", "show", "--group", cs101))
    assert cs101 in out

    # a request beyond the group's quota fails with one line naming the group
    msg = one_line_error(cli_as(hub, alice, "request", "--gpus", "2"))
    assert f"group {cs101}" in msg
    with hub.client(alice) as c:
        assert c.get("/leases").json()["leases"] == []

    # within it, it is granted; then released
    out = ok(cli_as(hub, alice, "request", "--gpus", "1", "--hours", "1"))
    assert out.startswith("lease ") and "granted" in out and "simulated" in out
    lease_id = out.split()[1]
    out = ok(cli_as(hub, alice, "release", lease_id))
    assert f"lease {lease_id} released" in out


def test_quota_set_keeps_fields_not_given(hub: Hub, admin_token: str) -> None:
    keep = unique("keep")
    ok(cli_as(hub, admin_token, "quota", "set", "--group", keep, "--create", "--max-units", "4",
              "--gpu-hours", "100", "--period", "month", "--allowed-shapes", "gpu,mig:*",
              "--per-user-max-units", "2", "--priority", "5", "--spot-max-units", "6",
              "--spot-gpu-hours", "300"))  # fmt: skip
    out = ok(cli_as(hub, admin_token, "quota", "set", "--group", keep, "--max-units", "8"))
    assert keep in out
    with hub.client(admin_token) as c:
        q = c.get(f"/quotas/groups/{keep}").json()["quota"]
    assert q["max_units"] == 8
    assert q["gpu_hours"] == 100 and q["period"] == "month" and q["priority"] == 5
    assert q["allowed_shapes"] == ["gpu", "mig:*"] and q["per_user_max_units"] == 2
    assert (q["spot_max_units"], q["spot_gpu_hours"]) == (6, 300)
    ok(cli_as(hub, admin_token, "quota", "set", "--group", keep, "--cohort", "dept",
              "--borrow-limit", "2", "--lend-limit", "1"))  # fmt: skip
    listed = ok(cli_as(hub, admin_token, "quota", "list"))
    line = next(ln for ln in listed.splitlines() if keep in ln)
    assert "cohort dept: borrows 0 (cap 2), lends 0 (cap 1)" in line
    ok(cli_as(hub, admin_token, "quota", "set", "--group", keep, "--cohort", "none"))
    with hub.client(admin_token) as c:
        q = c.get(f"/quotas/groups/{keep}").json()["quota"]
    assert (q["cohort"], q["borrow_limit"], q["lend_limit"]) == (None, None, None)
    listed = ok(cli_as(hub, admin_token, "quota", "list"))
    line = next(ln for ln in listed.splitlines() if keep in ln)
    assert "spot 0 of 6 units" in line and "0 of 300 spot GPU-hours used per month" in line

    # a term needs dates; going back to a week drops them
    ok(cli_as(hub, admin_token, "quota", "set", "--group", keep, "--period", "term",
              "--term-start", "2026-09-01", "--term-end", "2026-12-20"))  # fmt: skip
    ok(cli_as(hub, admin_token, "quota", "set", "--group", keep, "--period", "week",
              "--gpu-hours", "none", "--allowed-shapes", "any"))  # fmt: skip
    with hub.client(admin_token) as c:
        q = c.get(f"/quotas/groups/{keep}").json()["quota"]
    assert q["period"] == "week" and q["term_start"] is None and q["gpu_hours"] is None
    assert q["allowed_shapes"] is None and q["max_units"] == 8

    listing = ok(cli_as(hub, admin_token, "quota", "list"))
    assert keep in listing and "default" in listing


# -- pool -------------------------------------------------------------------------------


def test_pool_marks_every_simulated_device(hub: Hub, admin_token: str) -> None:
    name = unique("bob-pool")
    bob = hub.add_user(name)
    ok(cli_as(hub, bob, "request", "--mig", "1g.5gb"))
    out = ok(cli_as(hub, bob, "pool"))
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["NODE", "GPU", "MODEL", "MODE", "STATE"]
    device_lines = lines[1 : lines.index("")]
    assert len(device_lines) == 4 + 1 + 7 + 1 + 4  # whole GPUs, MIG GPU and slices, L4, node 2
    for line in device_lines:
        assert "simulated" in line, line
    assert any(line.startswith("sim-node-2") for line in device_lines)
    mig_rows = [x for x in device_lines if "mig slice" in x]
    assert len(mig_rows) == 7 and all(x.startswith("  ") for x in mig_rows)
    assert any(f"{name} lease" in x for x in mig_rows)
    assert any("shared x4" in x for x in device_lines)
    assert "simulated" in lines[-1]

    data = json.loads(ok(cli_as(hub, bob, "pool", "--json")))
    assert data["simulated"] is True and {n["name"] for n in data["nodes"]} == {
        "sim-node-1",
        "sim-node-2",
    }
    leases = json.loads(ok(cli_as(hub, bob, "leases", "--json")))["leases"]
    for lease in leases:
        ok(cli_as(hub, bob, "release", str(lease["id"])))


# -- usage ------------------------------------------------------------------------------


def test_usage_table_csv_and_json(hub: Hub, admin_token: str) -> None:
    name, group = unique("carol"), unique("usage-g")
    carol = hub.add_user(name, groups=[group])
    out = ok(cli_as(hub, carol, "request", "--shared", "--group", group, "--json"))
    ok(cli_as(hub, carol, "release", str(json.loads(out)["id"])))

    text = ok(cli_as(hub, admin_token, "usage", "--csv", "--user", name))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["day", "user", "group", "gpu_hours", "credits", "leases"]
    assert len(rows) == 2 and rows[1][1:3] == [name, group] and rows[1][5] == "1"

    text = ok(cli_as(hub, carol, "usage", "--csv", "--by", "user"))
    assert text.splitlines()[0] == "user,gpu_hours,credits,leases"

    data = json.loads(ok(cli_as(hub, carol, "usage", "--json")))
    assert data["by"] == ["day", "user", "group"]
    assert [r["user"] for r in data["rows"]] == [name]

    out = ok(cli_as(hub, carol, "usage"))
    assert out.splitlines()[0].split() == ["DAY", "USER", "GROUP", "GPU-HOURS", "CREDITS", "LEASES"]
    assert name in out and "total" in out

    text = ok(cli_as(hub, carol, "usage", "--csv", "--by", "week,user"))
    assert text.splitlines()[0] == "week,user,gpu_hours,credits,leases"
    out = ok(cli_as(hub, carol, "usage", "--by", "month"))
    assert out.splitlines()[0].split() == ["MONTH", "GPU-HOURS", "CREDITS", "LEASES"]
    for bad in ("weeks", "day,week", "user,user"):
        msg = one_line_error(cli_as(hub, carol, "usage", "--by", bad))
        assert msg.startswith(f"--by {bad!r}:") and "weeks start Monday" in msg, msg
    msg = one_line_error(cli_as(hub, carol, "usage", "--start", "yesterday"))
    assert "(--start)" in msg, msg  # the API's field, named as the flag that set it
    msg = one_line_error(cli_as(hub, carol, "usage", "--user", "alice"))
    assert f"{name} may not act for user alice" in msg


# -- leases and queue ------------------------------------------------------------------


def test_leases_and_queue_with_a_busy_pool(hub: Hub, admin_token: str, busy_pool) -> None:
    holder, pos = busy_pool.user, busy_pool.position  # every whole GPU is held
    name = unique("dave")
    dave = hub.add_user(name)
    out = ok(cli_as(hub, dave, "request", "--gpus", "1"))
    assert f"queued at position {pos}" in out
    queued_id = out.split()[1]

    out = ok(cli_as(hub, dave, "queue"))
    assert out.splitlines()[0].split()[:3] == ["POS", "ID", "USER"]
    row = next(x for x in out.splitlines()[1:] if x.split()[:2] == [str(pos), queued_id])
    assert row.split()[:3] == [str(pos), queued_id, name]
    # why it waits: the reason, the estimate (if any), the shapes free instead
    assert out.splitlines()[0].split()[-2:] == ["WAITING", "EXPECTED"]
    assert "pool busy" in row
    assert f"\nwhy:\n  #{pos} lease {queued_id}: all 8 GPUs are held; " in out
    assert "MIG 1g.5gb slices (simulated) free now" in out.split("\n      instead: ")[1]
    data = json.loads(ok(cli_as(hub, dave, "queue", "--json")))
    assert data["length"] == pos and data["queue"][pos - 1]["id"] == int(queued_id)

    out = ok(cli_as(hub, dave, "leases"))
    assert out.splitlines()[1].split()[:4] == [queued_id, name, "-", "queued"]

    # admins see everyone's; a user only their own
    out = ok(cli_as(hub, admin_token, "leases"))
    assert name in out and holder in out
    assert "simulated" in next(x for x in out.splitlines() if holder in x)
    msg = one_line_error(cli_as(hub, dave, "leases", "--user", ADMIN))
    assert "only admins" in msg

    ok(cli_as(hub, dave, "release", queued_id))
    out = ok(cli_as(hub, dave, "queue"))
    if pos == 1:  # nobody else waits
        assert "the queue is empty" in out
    else:
        assert f" {queued_id} " not in out
    assert ok(cli_as(hub, dave, "leases")).strip() == "no leases"
    out = ok(cli_as(hub, dave, "leases", "--all-statuses"))
    assert "cancelled" in out
    out = ok(cli_as(hub, dave, "leases", "--status", "cancelled", "released", "--json"))
    assert [x["status"] for x in json.loads(out)["leases"]] == ["cancelled"]


# -- refusals ---------------------------------------------------------------------------


def test_non_admin_cannot_set_quotas(hub: Hub) -> None:
    name, cs101 = unique("erin"), unique("cs101")
    erin = hub.add_user(name, groups=[cs101])
    for who in (["--group", cs101], ["--group", unique("other")], ["--user", name]):
        msg = one_line_error(cli_as(hub, erin, "quota", "set", *who, "--max-units", "5"))
        assert "custom:gpuhub:admin" in msg
    msg = one_line_error(cli_as(hub, erin, "quota", "unset", "--group", cs101))
    assert "custom:gpuhub:admin" in msg
    msg = one_line_error(cli_as(hub, erin, "quota", "list"))
    assert "custom:gpuhub:admin" in msg


def test_quota_unset(hub: Hub, admin_token: str) -> None:
    name, gone = unique("frank"), unique("gone")
    ok(cli_as(hub, admin_token, "quota", "set", "--user", name, "--max-units", "6"))
    frank = hub.add_user(name)
    out = ok(cli_as(hub, frank, "quota", "show"))
    assert next(x for x in out.splitlines() if x.startswith("user")).split()[:3] == [
        "user",
        name,
        "6",
    ]
    out = ok(cli_as(hub, admin_token, "quota", "unset", "--user", name))
    assert f"removed the quota of user {name}" in out
    with hub.client(frank) as c:
        q = c.get(f"/quotas/users/{name}").json()
    assert q["default"] is True and q["quota"]["max_units"] == 2
    msg = one_line_error(cli_as(hub, admin_token, "quota", "unset", "--user", name))
    assert f"user {name} has no quota" in msg

    ok(cli_as(hub, admin_token, "quota", "set", "--group", gone, "--max-units", "1", "--create"))
    ok(cli_as(hub, admin_token, "quota", "unset", "--group", gone))
    msg = one_line_error(cli_as(hub, admin_token, "quota", "show", "--group", gone))
    assert f"group {gone} has no quota" in msg


def test_bad_input_names_the_field_and_changes_nothing(hub: Hub, admin_token: str) -> None:
    g2, x = unique("g2"), unique("x")
    ok(cli_as(hub, admin_token, "quota", "set", "--group", g2, "--max-units", "3", "--create"))
    before = http.get(
        f"{hub.api}/quotas/groups/{g2}", headers={"Authorization": f"token {admin_token}"}
    ).json()["quota"]

    for args, field in [
        (["--max-units", "-1"], "max_units"),
        (["--priority", "5000"], "priority"),
        (["--period", "term"], "term"),
        (["--allowed-profiles", "x" * 200], "allowed_profiles"),
    ]:
        msg = one_line_error(cli_as(hub, admin_token, "quota", "set", "--group", g2, *args))
        assert field in msg, msg
    msg = one_line_error(cli_as(hub, admin_token, "quota", "set", "--user", x, "--per-user-max-units", "1"))  # fmt: skip
    assert "per_user_max_units" in msg
    msg = one_line_error(cli_as(hub, admin_token, "request", "--mig", "big"))
    assert "profile" in msg
    msg = one_line_error(cli_as(hub, admin_token, "request", "--gpus", "64"))
    assert msg

    after = http.get(
        f"{hub.api}/quotas/groups/{g2}", headers={"Authorization": f"token {admin_token}"}
    ).json()["quota"]
    assert after == before
    with hub.client(admin_token) as c:
        assert c.get(f"/quotas/users/{x}").json()["default"] is True

    # usage errors are argparse's: exit 2
    r = cli_as(hub, admin_token, "quota", "set", "--group", g2, "--max-units", "lots")
    assert r.returncode == 2 and "--max-units" in r.stderr
    r = cli_as(hub, admin_token, "request")
    assert r.returncode == 2
    r = cli_as(hub, admin_token, "quota", "set", "--group", g2)
    assert one_line_error(r).startswith("nothing to set")


def test_missing_or_wrong_token(hub: Hub) -> None:
    msg = one_line_error(run_cli("pool", url=service_url(hub)))
    assert "GPUHUB_TOKEN" in msg and f"{hub.url}/hub/token" in msg
    msg = one_line_error(run_cli("quota", "show", url=service_url(hub), token="not-a-token"))
    assert "token" in msg and "/hub/token" in msg
    # JUPYTERHUB_API_TOKEN (as in a single-user server) is used when GPUHUB_TOKEN is not set
    name = unique("grace")
    grace = hub.add_user(name)
    r = run_cli(
        "quota", "show", "--json", url=service_url(hub), env={"JUPYTERHUB_API_TOKEN": grace}
    )
    assert json.loads(ok(r))["name"] == name
    # --url and --token on the command line, before or after the command
    with hub.client(hub.admin_token) as admin:
        queued = admin.get("/queue").json()["length"]  # requests of other tests, if any
    r = run_cli("--url", service_url(hub), "--token", grace, "queue", "--json")
    assert json.loads(ok(r))["length"] == queued
    r = run_cli("queue", "--url", service_url(hub) + "/api/v1/", "--token", grace)
    assert ok(r)


def test_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/gpuhub"
    msg = one_line_error(run_cli("pool", url=url, token="t"))
    assert msg.startswith(f"cannot reach gpuhub at {url}")


def test_wrong_path_is_one_line(hub: Hub, admin_token: str) -> None:
    msg = one_line_error(run_cli("pool", url=f"{hub.url}/services/nothing", token=admin_token))
    assert msg


# -- local inventory --------------------------------------------------------------------


def test_inventory_json_without_gpus() -> None:
    r = run_cli("inventory", "--json", "--node-name", "gpu-07")
    data = json.loads(ok(r))
    assert data["name"] == "gpu-07" and data["simulated"] is False
    assert isinstance(data["gpus"], list)
    if not Path("/dev/nvidiactl").exists():  # this machine has no NVIDIA driver
        assert data["gpus"] == []
        assert "no GPUs found" in ok(run_cli("inventory"))


# -- cohorts and group names ----------------------------------------------------------------


def test_quota_set_refuses_a_group_the_hub_lacks_unless_create(hub: Hub, admin_token: str) -> None:
    cs10l = unique("cs10l")
    msg = one_line_error(
        cli_as(hub, admin_token, "quota", "set", "--group", cs10l, "--max-units", "1")
    )
    assert msg == f"JupyterHub has no group {cs10l}: check the name, or add --create to create it"
    assert hub.hub_api("GET", f"groups/{cs10l}").status_code == 404
    with hub.client(admin_token) as c:
        assert c.get(f"/quotas/groups/{cs10l}").status_code == 404  # nothing was set
    out = ok(cli_as(hub, admin_token, "quota", "set", "--group", cs10l, "--max-units", "1",
                    "--create"))  # fmt: skip
    assert f"quota of group {cs10l} set" in out
    assert hub.hub_api("GET", f"groups/{cs10l}").status_code == 200
    msg = one_line_error(
        cli_as(hub, admin_token, "quota", "set", "--user", unique("x"), "--max-units", "1",
               "--create")
    )  # fmt: skip
    assert msg.startswith("--create is for --group only")


def test_cohort_from_a_roster_in_one_command(hub: Hub, admin_token: str, tmp_path: Path) -> None:
    rita, sam, tess, uma, vic = (unique(x) for x in ("rita", "sam", "tess", "uma", "vic"))
    cs200, cs201, nope = unique("cs200"), unique("cs201"), unique("nope")
    hub.add_user(rita)  # already in the hub; the others are not
    roster = tmp_path / "roster.csv"
    roster.write_text(f"email,username\nr@x.edu,{rita}\n\ns@x.edu,{sam}\nt@x.edu,{tess}\n")
    out = ok(cli_as(hub, admin_token, "cohort", "create", cs200, "--members", str(roster),
                    "--max-units", "8", "--per-member", "1", "--gpu-hours", "200",
                    "--period", "week"))  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == f"created group {cs200}"
    assert lines[1] == f"created 2 user(s) JupyterHub did not have: {sam}, {tess}"
    assert lines[2] == f"added 3 member(s) to group {cs200}; 3 in all"
    assert "per member 1 GPU" in out
    group = hub.hub_api("GET", f"groups/{cs200}").json()
    assert sorted(group["users"]) == [rita, sam, tess]
    with hub.client(admin_token) as c:
        q = c.get(f"/quotas/groups/{cs200}").json()["quota"]
    assert (q["max_units"], q["per_user_max_units"], q["gpu_hours"], q["period"]) == (
        8, 1, 200, "week",
    )  # fmt: skip

    # the per-member cap holds: sam may not take 2 GPUs of the group's 8
    sam_token = hub.add_user(sam)
    msg = one_line_error(cli_as(hub, sam_token, "request", "--gpus", "2", "--group", cs200))
    assert f"each member of group {cs200}" in msg

    # add and remove; --no-create-users names who is missing and changes nothing
    msg = one_line_error(cli_as(hub, admin_token, "cohort", "add", cs200, uma, vic,
                                "--no-create-users"))  # fmt: skip
    assert msg == (
        f"JupyterHub has no users {uma}, {vic}; fix the roster, or leave out --no-create-users "
        "to have them created"
    )
    assert hub.hub_api("GET", f"users/{uma}").status_code == 404
    out = ok(cli_as(hub, admin_token, "cohort", "add", cs200, uma))
    assert f"created 1 user(s) JupyterHub did not have: {uma}" in out and "4 in all" in out
    out = ok(cli_as(hub, admin_token, "cohort", "remove", cs200, tess, uma))
    assert f"removed {tess} from group {cs200}" in out and "2 member(s) left" in out
    assert hub.hub_api("GET", f"users/{tess}").status_code == 200  # still in the hub

    out = ok(cli_as(hub, admin_token, "cohort", "show", cs200))
    assert out.splitlines()[0] == f"cohort {cs200}: 2 member(s)"
    assert f"GPU-hours charged to {cs200} this week" in out and sam in out
    data = json.loads(ok(cli_as(hub, admin_token, "cohort", "show", cs200, "--json")))
    assert data["members"] == [rita, sam] and data["quota"]["quota"]["max_units"] == 8

    # a bad roster line names the file, the line and the flag; nothing is sent
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{unique('ann')}\nbad/name\n")
    msg = one_line_error(cli_as(hub, admin_token, "cohort", "create", cs201, "--members",
                                str(bad)))  # fmt: skip
    assert msg.startswith(f"--members {bad}, line 2: user name 'bad/name' is not a valid name")
    assert hub.hub_api("GET", f"groups/{cs201}").status_code == 404
    msg = one_line_error(cli_as(hub, admin_token, "cohort", "show", nope))
    assert f"JupyterHub has no group {nope}" in msg
    erin = hub.add_user(unique("erin2"))
    msg = one_line_error(cli_as(hub, erin, "cohort", "show", cs200))
    assert "custom:gpuhub:admin" in msg


def test_options_say_what_i_may_ask_for(hub: Hub) -> None:
    name = unique("opal")
    opal = hub.add_user(name)
    out = ok(cli_as(hub, opal, "options"))
    lines = out.splitlines()
    one = next(x for x in lines if x.startswith("1 whole GPU"))
    assert "A100-80GB or H100-80GB" in one and "now" in one and "1.5–2 credits/h" in one
    four = next(x for x in lines if x.startswith("4 whole GPUs"))
    assert " no " in four and "2 GPU units" in four  # the default quota's refusal
    assert "gpu-1" in out and "mig-1g.5gb" in out
    cpu = next(x for x in lines if x.startswith("cpu "))
    assert "No GPU (CPU only)" in cpu and "no GPU (quota-free)" in cpu
    assert "jobs: --max-runtime from 1m to 7d, 1d when not given" in out
    data = json.loads(ok(cli_as(hub, opal, "options", "--json")))
    assert data["user"] == name and data["jobs"]["max_runtime_s"]["default"] == 86400
