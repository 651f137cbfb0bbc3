"""What a scheduler decision's commit waits for on PostgreSQL: a decision that grants
waits for its WAL flush (an admission is durable when ``request()`` returns); one that
grants nothing does not (docs/explanation/architecture.md, "One writer")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import Scheduler
from gpuhub.scheduler.db import open_engine
from gpuhub.scheduler.store import NO_FLUSH_WAIT

from tests.support import pg
from tests.support.scheduler import ask, gpu


@pytest.mark.postgres
def test_on_postgresql_only_decisions_that_grant_nothing_skip_the_flush_wait(
    postgres, clock, monkeypatch
):
    """A grant (also one a release lets in) waits for its flush; a request that queues
    and a release that lets nobody in do not."""
    engine = open_engine(postgres.create_database(template=pg.TEMPLATE))
    said: list[str] = []
    execute = psycopg.Connection.execute

    def spy(self, query, *args, **kwargs):
        said.append(str(query))
        return execute(self, query, *args, **kwargs)

    def lazy_commits(step: Callable[[], Any]) -> tuple[Any, int]:
        said.clear()
        out = step()
        # the decision went to the server as one message: its writes and its COMMIT
        assert len(said) == 1, said
        assert said[0].startswith("BEGIN;") and said[0].endswith(";COMMIT"), said[0]
        return out, said[0].count(NO_FLUSH_WAIT)

    try:
        s = Scheduler(engine, parse_spec("n: 1xH100-80GB"), clock=clock)
        monkeypatch.setattr(psycopg.Connection, "execute", spy)
        first, lazy = lazy_commits(lambda: ask(s, "ann", gpu(1)))
        assert (first.status, lazy) == ("active", 0)  # a grant waits
        queued, lazy = lazy_commits(lambda: ask(s, "bob", gpu(1)))
        assert (queued.status, lazy) == ("queued", 1)  # a request that queues does not
        _, lazy = lazy_commits(lambda: s.release(first.id))
        assert lazy == 0  # the release lets bob in: a grant, which waits
        assert s.view.get(queued.id).status == "active"
        _, lazy = lazy_commits(lambda: s.release(queued.id))
        assert lazy == 1  # a release that lets nobody in does not
    finally:
        engine.dispose()
