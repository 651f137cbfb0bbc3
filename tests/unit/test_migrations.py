"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from gpuhub.jobs import store as job_store  # noqa: F401  (declares the job tables on Base)
from gpuhub.scheduler.db import Base, alembic_config, open_engine
from sqlalchemy import create_engine, inspect, text


def _migrate(
    empty_db_url: str, revision: str, *, down: bool = False, sql: str = ""
) -> tuple[set, set]:
    """Take the database up (or ``down``) to ``revision`` with Alembic, then run ``sql``;
    the table names and the ``leases`` columns there."""
    url = empty_db_url.replace("postgresql://", "postgresql+psycopg://")
    cfg = alembic_config(empty_db_url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
        if sql:
            with engine.begin() as conn:
                conn.execute(text(sql))
        tables = set(inspect(engine).get_table_names())
        columns = (
            {c["name"] for c in inspect(engine).get_columns("leases")}
            if "leases" in tables
            else set()
        )
        return tables, columns
    finally:
        engine.dispose()


def test_upgrade_builds_the_declared_schema(empty_db_url):
    engine = open_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn)
            diff = compare_metadata(ctx, Base.metadata)
            head = ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
            assert ctx.get_current_revision() == head
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(empty_db_url):
    open_engine(empty_db_url).dispose()
    engine = open_engine(empty_db_url)  # a second start finds the schema current
    engine.dispose()
    cfg = alembic_config(empty_db_url)
    url = empty_db_url.replace("postgresql://", "postgresql+psycopg://")
    with create_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    plain = create_engine(url)
    try:
        assert set(inspect(plain).get_table_names()) <= {"alembic_version"}
    finally:
        plain.dispose()


def test_upgrade_from_0001_keeps_leases_and_adds_idempotency_keys(empty_db_url):
    """A database made by 0001, with live and ended leases, upgrades and works on."""
    from gpuhub.inventory.simulated import parse_spec
    from gpuhub.scheduler.core import Scheduler
    from gpuhub.scheduler.shapes import WholeGpus
    from sqlalchemy import text

    url = empty_db_url.replace("postgresql://", "postgresql+psycopg://")
    cfg = alembic_config(empty_db_url)
    old = create_engine(url)
    try:
        with old.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
        lease = {
            "user": "alice", "group_name": None, "shape": '{"kind": "gpu", "count": 1}',
            "profile": None, "label": "server:alice/", "priority": 0, "units_num": 1,
            "units_den": 1, "hours": None, "requested_at": 1000.0, "end_reason": None,
        }  # fmt: skip
        with old.begin() as conn:
            insert = text(
                'INSERT INTO leases (id, "user", group_name, status, shape, profile, label,'
                " priority, units_num, units_den, hours, node, devices, requested_at,"
                " granted_at, ended_at, end_reason) VALUES (:id, :user, :group_name, :status,"
                " :shape, :profile, :label, :priority, :units_num, :units_den, :hours, :node,"
                " :devices, :requested_at, :granted_at, :ended_at, :end_reason)"
            )
            device = '[{"uuid": "GPU-sim-n-0", "index": 0, "model": "H100-80GB", "memory_mb": 81920, "simulated": true}]'
            conn.execute(insert, {**lease, "id": 1, "status": "released", "node": "n",
                                  "devices": device, "granted_at": 1000.0, "ended_at": 4600.0})  # fmt: skip
            conn.execute(insert, {**lease, "id": 2, "status": "active", "node": "n",
                                  "devices": device, "granted_at": 5000.0, "ended_at": None})  # fmt: skip
            conn.execute(
                text("INSERT INTO claims (device_id, slot, lease_id) VALUES ('GPU-sim-n-0', 0, 2)")
            )
    finally:
        old.dispose()

    engine = open_engine(empty_db_url)  # upgrades to head
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, status, idempotency_key, request_digest FROM leases ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, "released", None, None), (2, "active", None, None)]
        indexes = {i["name"]: i for i in inspect(engine).get_indexes("leases")}
        key_index = indexes["ix_leases_user_idempotency_key"]
        assert key_index["unique"] and key_index["column_names"] == ["user", "idempotency_key"]

        s = Scheduler(engine, parse_spec("n: 2xH100-80GB"), clock=lambda: 9000.0)
        assert s.get(2).status == "active" and s.get(2).devices[0]["uuid"] == "GPU-sim-n-0"
        assert s.get(1).gpu_hours(9000.0) == 1.0
        lease, replayed = s.request_once(
            idempotency_key="k1", user="alice", user_groups=[], shape=WholeGpus(count=1)
        )
        assert not replayed and lease.id == 3 and lease.devices[0]["uuid"] == "GPU-sim-n-1"
        assert s.request_once(
            idempotency_key="k1", user="alice", user_groups=[], shape=WholeGpus(count=1)
        ) == (lease, True)
        assert s.request(user="alice", user_groups=[], shape=WholeGpus()).status == "queued"
    finally:
        engine.dispose()


def test_upgrade_from_0002_adds_the_job_tables_and_keeps_leases(empty_db_url):
    """A database made by 0002, with a lease, upgrades to 0003: jobs and job_definitions
    exist and take rows; downgrading to 0002 removes just them."""
    from gpuhub.jobs.record import Job
    from gpuhub.jobs.store import JobStore

    tables, _ = _migrate(
        empty_db_url,
        "0002",
        sql='INSERT INTO leases (id, "user", status, shape, label, priority, units_num,'
        " units_den, requested_at, granted_at, ended_at) VALUES (1, 'alice',"
        " 'released', '{\"kind\": \"gpu\", \"count\": 1}', 'job:alice/1', 0, 1, 1,"
        " 1000.0, 1000.0, 4600.0)",
    )
    assert "jobs" not in tables

    engine = open_engine(empty_db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"jobs", "job_definitions", "leases"} <= tables
        store = JobStore(engine)
        store.insert_job(
            Job(
                id=1, user="alice", name="t", path="t.py", kind="script",
                status="succeeded", shape={"kind": "gpu", "count": 1}, limits={},
                parameters={}, max_runtime_s=60, source="print(1)\n", lease_id=1,
                executor="local", state={"pid": 1}, created_at=1000.0,
                log_tail=b"\xff log", log_offset=0, log_size=5,
            )
        )  # fmt: skip
        job = store.job(1, full=True)
        assert job.log_tail == b"\xff log" and job.state == {"pid": 1}
        assert store.max_job_id() == 1
        def_id = store.insert_definition(
            {
                "user": "alice", "groups": [], "name": "n", "schedule": "0 2 * * *",
                "paused": False, "request": "{}", "path": "t.py", "kind": "script",
                "profile": None, "shape": {"kind": "gpu", "count": 1}, "parameters": {},
                "max_runtime_s": 60, "next_run_at": 5000.0, "created_at": 1000.0,
            }
        )  # fmt: skip
        assert [d["id"] for d in store.due_definitions(5000.0)] == [def_id]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT label FROM leases")).scalar() == "job:alice/1"
    finally:
        engine.dispose()

    tables, _ = _migrate(empty_db_url, "0002", down=True)
    assert "jobs" not in tables and "job_definitions" not in tables and "leases" in tables


def test_upgrade_from_0003_adds_reservations_and_lease_groups(empty_db_url):
    """A database made by 0003, with a queued lease, upgrades to 0004: the lease loads with
    no groups, reservations can be made; downgrading to 0003 removes just them."""
    from gpuhub.inventory.simulated import parse_spec
    from gpuhub.scheduler.core import Scheduler
    from gpuhub.scheduler.shapes import WholeGpus

    tables, _ = _migrate(
        empty_db_url,
        "0003",
        sql='INSERT INTO leases (id, "user", status, shape, label, priority, units_num,'
        " units_den, requested_at) VALUES (1, 'alice', 'queued',"
        ' \'{"kind": "gpu", "count": 2}\', \'\', 0, 2, 1, 1000.0)',
    )
    assert "reservations" not in tables

    engine = open_engine(empty_db_url)
    try:
        nodes = parse_spec("n: 1xH100-80GB")
        s = Scheduler(engine, nodes, clock=lambda: 2000.0)
        assert s.get(1).status == "queued" and s.get(1).user_groups == []
        r = s.reserve(group="g", shape=WholeGpus(), count=1, start=3000.0, end=4000.0, by="a")
        again = Scheduler(engine, nodes, clock=lambda: 2000.0)
        assert [x.id for x in again.reservations()] == [r.id]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT user_groups FROM leases")).scalar() is None
    finally:
        engine.dispose()

    tables, columns = _migrate(empty_db_url, "0003", down=True)
    assert "reservations" not in tables and "leases" in tables
    assert "user_groups" not in columns


def test_upgrade_from_0004_prices_the_leases_of_before_at_one_credit(empty_db_url):
    """A database made by 0004, with an ended lease (3 GPU-hours) and a queued one,
    upgrades to 0005: the ended lease is charged 1 credit per GPU-hour (what a GPU-hour
    was worth when all cost the same), the queued one gets its price when granted;
    downgrading to 0004 removes the rates table and the price columns."""
    from gpuhub.inventory.simulated import parse_spec
    from gpuhub.scheduler.core import Scheduler
    from gpuhub.scheduler.pricing import RateCard

    shape = '\'{"kind": "gpu", "count": 1}\''
    tables, _ = _migrate(
        empty_db_url,
        "0004",
        sql='INSERT INTO leases (id, "user", status, shape, label, priority, units_num,'
        " units_den, requested_at, granted_at, ended_at) VALUES"
        f" (1, 'alice', 'released', {shape}, '', 0, 1, 1, 0.0, 0.0, 10800.0),"
        f" (2, 'alice', 'queued', {shape}, '', 0, 1, 1, 0.0, NULL, NULL)",
    )
    assert "rates" not in tables

    engine = open_engine(empty_db_url)
    try:
        nodes = parse_spec("n: 1xH100-80GB")
        rates = RateCard(engine, {"H100": 2.0})
        s = Scheduler(engine, nodes, clock=lambda: 4 * 3600.0, rates=rates)
        assert s.get(1).rate == 1.0 and s.get(1).tier == "guaranteed"
        assert s.get(2).status == "active" and s.get(2).rate == 2.0  # granted at load
        assert s.ledger.total_credits(4 * 3600.0) == 3.0
    finally:
        engine.dispose()

    tables, columns = _migrate(empty_db_url, "0004", down=True)
    assert "rates" not in tables and "leases" in tables
    assert not {"rate", "tier", "discount"} & columns
