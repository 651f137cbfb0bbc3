"""Idempotency keys: a lease request made again with its key gets the lease it made.

On SQLite and PostgreSQL, against the database: a retry after a restart of the scheduler,
after the lease ended, and from another user; a conflicting reuse of a key; a refused
request that leaves its key free.
"""

from __future__ import annotations

import pytest
from gpuhub.inventory.simulated import parse_spec
from gpuhub.scheduler.core import IdempotencyConflict, QuotaExceeded, Scheduler, Unsatisfiable
from gpuhub.scheduler.quota import QuotaSpec

from tests.support.scheduler import HOUR, assert_consistent, counts, gpu, lease_rows, mig

POOL = "a: 2xH100-80GB, 1xA100-40GB[mig=7x1g.5gb]"


def once(s: Scheduler, user: str, key: str, shape=None, groups=(), **kwargs):
    return s.request_once(
        idempotency_key=key, user=user, user_groups=groups, shape=shape or gpu(), **kwargs
    )


def test_the_same_key_and_request_gets_the_same_lease(make, engine):
    s = make(POOL)
    lease, replayed = once(s, "alice", "k1", label="server:alice/")
    assert lease.status == "active" and replayed is False
    again, replayed = once(s, "alice", "k1", label="server:alice/")
    assert replayed is True and again is lease
    assert counts(engine) == (1, 1)
    row = lease_rows(engine)[lease.id]
    assert row["idempotency_key"] == "k1" and len(row["request_digest"]) == 64
    # the same request as the API would parse it again (a default spelled out) is the same
    again, replayed = once(s, "alice", "k1", gpu(1, None), label="server:alice/")
    assert replayed and again.id == lease.id


def test_a_key_belongs_to_its_user(make, engine):
    s = make(POOL)
    alices, _ = once(s, "alice", "k1")
    bobs, replayed = once(s, "bob", "k1")
    assert not replayed and bobs.id != alices.id and bobs.user == "bob"
    assert counts(engine) == (2, 2)


def test_a_key_reused_for_another_request_is_refused_and_changes_nothing(make, engine):
    s = make(POOL)
    lease, _ = once(s, "alice", "k1", label="train")
    before = lease_rows(engine)
    for other in (
        {"shape": gpu(2), "label": "train"},
        {"label": "other"},
        {"label": "train", "hours": 2.0},
        {"label": "train", "profile": "pytorch"},
        {"label": "train", "group": "cs101", "groups": ["cs101"]},
    ):
        with pytest.raises(
            IdempotencyConflict, match=rf"'k1' of alice was used for lease {lease.id}"
        ):
            once(s, "alice", "k1", **other)
    assert lease_rows(engine) == before
    assert_consistent(s)


def test_a_retry_after_the_lease_ended_gets_it_as_it_is_now(make, engine, clock):
    s = make(POOL)
    lease, _ = once(s, "alice", "k1")
    clock.advance(HOUR)
    s.release(lease.id)
    again, replayed = once(s, "alice", "k1")
    assert replayed and again.id == lease.id and again.status == "released"
    assert counts(engine) == (1, 0)
    with pytest.raises(IdempotencyConflict):
        once(s, "alice", "k1", gpu(2))


def test_a_queued_lease_replays_as_granted_once_it_is(make, clock):
    s = make("a: 1xH100-80GB")
    first = s.request(user="bob", user_groups=[], shape=gpu())
    waiting, _ = once(s, "alice", "k1")
    assert waiting.status == "queued"
    assert once(s, "alice", "k1")[0].status == "queued"
    s.release(first.id)
    again, replayed = once(s, "alice", "k1")
    assert replayed and again.id == waiting.id and again.status == "active"


def test_keys_survive_a_restart_on_the_same_database(make, engine, clock):
    s = make(POOL)
    live, _ = once(s, "alice", "live-key", label="server:alice/")
    ended, _ = once(s, "alice", "ended-key", mig("1g.5gb"))
    s.release(ended.id)
    clock.advance(HOUR)
    again = Scheduler(engine, parse_spec(POOL), clock=clock)
    lease, replayed = once(again, "alice", "live-key", label="server:alice/")
    assert replayed and lease.id == live.id and lease.status == "active"
    lease, replayed = once(again, "alice", "ended-key", mig("1g.5gb"))
    assert replayed and lease.id == ended.id and lease.status == "released"
    with pytest.raises(IdempotencyConflict, match=f"lease {live.id}"):
        once(again, "alice", "live-key", gpu(2))
    new, replayed = once(again, "alice", "new-key")
    assert not replayed and new.id == again.next_id - 1
    assert counts(engine)[0] == 3
    assert_consistent(again)


def test_a_refused_request_is_not_remembered(make, engine):
    s = make(POOL, default_user_quota=QuotaSpec(max_units=1))
    held, _ = once(s, "alice", "k0")
    with pytest.raises(QuotaExceeded):
        once(s, "alice", "k1")
    with pytest.raises(Unsatisfiable):
        once(s, "alice", "k2", gpu(8))
    assert counts(engine) == (1, 1)
    # decided again, not replayed: still refused while the quota is used ...
    with pytest.raises(QuotaExceeded):
        once(s, "alice", "k1")
    s.release(held.id)
    # ... and granted once it is not; the key is free for any request
    lease, replayed = once(s, "alice", "k1", gpu(1, "H100"))
    assert not replayed and lease.status == "active"
    s.release(lease.id)
    lease2, replayed = once(s, "alice", "k2", mig("1g.5gb"))
    assert not replayed and lease2.status == "active"


def test_requests_without_a_key_are_never_replayed(make, engine):
    s = make(POOL)
    a = s.request(user="alice", user_groups=[], shape=gpu())
    b = s.request(user="alice", user_groups=[], shape=gpu())
    assert a.id != b.id
    rows = lease_rows(engine)
    assert rows[a.id]["idempotency_key"] is None and rows[b.id]["idempotency_key"] is None
