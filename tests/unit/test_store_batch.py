"""How a scheduler decision reaches its database (gpuhub.scheduler.store): every decision
runs on the one connection the store keeps; on PostgreSQL its writes are held and go with
their COMMIT as one message, a decision that runs anything else sends what it holds
first, a decision that fails sends nothing, and a connection the server drops costs one
decision, the next running on a new one; a decision that grants nothing does not wait
for its WAL flush."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.store import NO_FLUSH_WAIT
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from tests.support import pg
from tests.support.scheduler import CLAIMS, ask, claim_rows, gpu, lease_rows


def test_decisions_run_on_one_kept_connection(engine, clock):
    """The scheduler is the one writer: after the first decision it takes no connection
    from the pool, and disposing of the engine gives its connection back."""
    s = Scheduler(engine, parse_spec("n: 8xH100-80GB"), clock=clock)
    checkouts: list[int] = []
    event.listen(engine, "checkout", lambda dbapi, *_: checkouts.append(id(dbapi)))
    first = ask(s, "ann", gpu(1))
    for user in ("bob", "cy", "dee"):
        ask(s, user, gpu(1))
    s.release(first.id)
    assert len(checkouts) <= 1  # none at all if the start already opened it
    engine.dispose()
    assert s.store._writer is None
    assert ask(s, "eve", gpu(1)).status == "active"  # a new connection after the dispose


@pytest.fixture
def pg_engine(postgres):
    engine = open_engine(postgres.create_database(template=pg.TEMPLATE), upgrade=False)
    yield engine
    engine.dispose()


@pytest.fixture
def said(monkeypatch) -> list[str]:
    """Every text the driver's ``Connection.execute`` sends (the held writes go that way;
    SQLAlchemy's own statements go through cursors and are not listed)."""
    sent: list[str] = []
    execute = psycopg.Connection.execute

    def spy(self, query, *args, **kwargs):
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    return sent


@pytest.mark.postgres
def test_a_grant_and_a_release_go_as_one_message_each(pg_engine, clock, said):
    s = Scheduler(pg_engine, parse_spec("n: 2xH100-80GB"), clock=clock)
    said.clear()
    a = ask(s, "ann", gpu(2))
    assert len(said) == 1
    assert said[0].startswith("BEGIN;INSERT INTO leases") and said[0].endswith(";COMMIT")
    assert said[0].count("INSERT INTO claims") == 2  # one per GPU, in the same message
    said.clear()
    s.release(a.id)
    assert len(said) == 1 and "UPDATE leases" in said[0] and "DELETE FROM claims" in said[0]
    assert lease_rows(pg_engine)[a.id]["status"] == "released" and claim_rows(pg_engine) == {}


@pytest.mark.postgres
def test_a_decision_that_also_reads_sends_its_writes_first(pg_engine, clock, said):
    """The read inside the transaction sees the decision's own writes, and the commit
    makes them and whatever came after durable together."""
    s = Scheduler(pg_engine, parse_spec("n: 2xH100-80GB"), clock=clock)
    a = ask(s, "ann", gpu(1))
    lease = s.live[a.id]
    lease.status, lease.ended_at, lease.end_reason = "released", clock.now, "released"
    seen: list[int] = []

    def write(conn):
        s.store.end_lease(conn, lease, was="active")  # held
        seen.append(s.store.rows(select(func.count()).select_from(CLAIMS), conn)[0][0])

    said.clear()
    s.store.guarded(write, resync=lambda: None)
    assert seen == [0]  # the held DELETE reached the server before the read
    assert len(said) == 1 and not said[0].startswith("BEGIN")  # the driver began it
    assert lease_rows(pg_engine)[a.id]["status"] == "released" and claim_rows(pg_engine) == {}


@pytest.mark.postgres
def test_a_decision_that_fails_sends_nothing(pg_engine, clock, said):
    s = Scheduler(pg_engine, parse_spec("n: 2xH100-80GB"), clock=clock)
    a = ask(s, "ann", gpu(1))
    before = (lease_rows(pg_engine), claim_rows(pg_engine))
    resynced: list[bool] = []

    def write(conn):
        s.store.end_lease(conn, s.live[a.id], was="active")
        raise RuntimeError("the decision changed its mind")

    said.clear()
    with pytest.raises(RuntimeError):
        s.store.guarded(write, resync=lambda: resynced.append(True))
    assert said == [] and resynced == [True]
    assert (lease_rows(pg_engine), claim_rows(pg_engine)) == before
    assert ask(s, "bob", gpu(1)).status == "active"  # the same store goes on


@pytest.mark.postgres
def test_a_connection_the_server_drops_costs_one_decision(pg_engine, clock):
    s = Scheduler(pg_engine, parse_spec("n: 2xH100-80GB"), clock=clock)
    a = ask(s, "ann", gpu(1))
    pid = s.store._writer.connection.driver_connection.info.backend_pid
    with pg_engine.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    with pytest.raises(
        (OperationalError, psycopg.OperationalError), match="terminating connection"
    ):
        ask(s, "bob", gpu(1))
    assert sorted(s.live) == [a.id]  # memory was read back from the database
    b = ask(s, "bob", gpu(1))  # on a new connection
    assert b.status == "active" and sorted(lease_rows(pg_engine)) == [a.id, b.id]


@pytest.mark.postgres
def test_a_refused_write_leaves_no_connection_in_autocommit_behind(pg_engine, clock):
    """The one-message commit runs in autocommit; when the server refuses it, that driver
    connection is dropped, so nothing later runs outside a transaction on it."""
    from gpuhub.scheduler.core import SchedulerError

    s = Scheduler(pg_engine, parse_spec("n: 2xH100-80GB"), clock=clock)
    a = ask(s, "ann", gpu(1))
    raw = s.store._writer.connection.driver_connection
    other = next(d for d in ("GPU-sim-n-0", "GPU-sim-n-1") if d != a.devices[0]["uuid"])
    with pg_engine.begin() as conn:  # a second writer claims the free GPU
        conn.exec_driver_sql(
            f"INSERT INTO claims (device_id, slot, lease_id) VALUES ('{other}', 0, {a.id})"
        )
    with pytest.raises(SchedulerError, match="the pool changed under this request"):
        ask(s, "bob", gpu(1))
    assert raw.closed
    with pg_engine.connect() as conn:  # every pooled connection is transactional
        assert conn.connection.driver_connection.autocommit is False
    assert sorted(lease_rows(pg_engine)) == [a.id]


@pytest.mark.postgres
def test_on_postgresql_only_decisions_that_grant_nothing_skip_the_flush_wait(
    pg_engine, clock, said
):
    """A grant (also one a release lets in) waits for its flush; a request that queues
    and a release that lets nobody in do not (docs/explanation/architecture.md, "One
    writer")."""

    def lazy_commits(step: Callable[[], Any]) -> tuple[Any, int]:
        said.clear()
        out = step()
        # the decision went to the server as one message: its writes and its COMMIT
        assert len(said) == 1, said
        assert said[0].startswith("BEGIN;") and said[0].endswith(";COMMIT"), said[0]
        return out, said[0].count(NO_FLUSH_WAIT)

    s = Scheduler(pg_engine, parse_spec("n: 1xH100-80GB"), clock=clock)
    first, lazy = lazy_commits(lambda: ask(s, "ann", gpu(1)))
    assert (first.status, lazy) == ("active", 0)  # a grant waits
    queued, lazy = lazy_commits(lambda: ask(s, "bob", gpu(1)))
    assert (queued.status, lazy) == ("queued", 1)  # a request that queues does not
    _, lazy = lazy_commits(lambda: s.release(first.id))
    assert lazy == 0  # the release lets bob in: a grant, which waits
    assert s.view.get(queued.id).status == "active"
    _, lazy = lazy_commits(lambda: s.release(queued.id))
    assert lazy == 1  # a release that lets nobody in does not
