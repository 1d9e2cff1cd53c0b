"""Graph subscriptions across restarts: reused, renewed or replaced, stale ones deleted."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from push_support import (
    ALICE,
    BOB,
    CLIENT_STATE,
    GRAPH_CONFIG,
    STATE_ENV,
    T0,
    Stack,
    graph_change,
    graph_stack,
    post_graph,
)

from connectors.calendars.graph.push import DEFAULT_LIFETIME
from sync.store.push import StoredPush
from tests.connectors.graph_doubles import FakeGraph, graph_error

WAIT = 10.0
ALICE_SOURCE, BOB_SOURCE = f"graph:{ALICE}", f"graph:{BOB}"
WITHOUT_BOB = GRAPH_CONFIG[: GRAPH_CONFIG.index("  - id: bob")]


@pytest.fixture
def stacks() -> Iterator[list[Stack]]:
    made: list[Stack] = []
    yield made
    for stack in made:
        stack.stop()


def start(tmp_path: Path, stacks: list[Stack], config: str = GRAPH_CONFIG) -> Stack:
    stack = graph_stack(tmp_path, config)
    stacks.append(stack)
    return stack


def restart(stack: Stack, tmp_path: Path, stacks: list[Stack], **kw: str) -> Stack:
    """A clean shutdown (as on SIGTERM), then a new process on the same store."""
    stack.stop()
    stacks.remove(stack)
    return start(tmp_path, stacks, **kw)


def calls(fake: FakeGraph, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.url.path) for r in fake.graph_requests[since:]]


def stored(stack: Stack) -> dict[str, StoredPush]:
    return {s.account: s for s in stack.service.store.push_subscriptions("graph")}


def test_a_restart_reuses_the_stored_subscriptions_and_their_notifications_work(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack]
) -> None:
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    assert first.hub.graph is not None
    ids = {s.mailbox: s.id for s in first.hub.graph.subscriptions.values()}
    assert {m: s.remote_id for m, s in stored(first).items()} == ids

    before = len(fake.graph_requests)
    second = restart(first, tmp_path, stacks)
    assert calls(fake, before) == []  # a clean shutdown deletes nothing
    assert len(fake.subscriptions) == 2
    live = second.hub.ensure_all()
    second.service.start()
    second.hub.start_worker()

    assert live == {ALICE_SOURCE, BOB_SOURCE}
    assert not any(method == "POST" for method, _ in calls(fake, before))
    assert second.hub.graph is not None
    assert {s.mailbox: s.id for s in second.hub.graph.subscriptions.values()} == ids
    assert second.service.settings.interval_for(ALICE_SOURCE) == timedelta(hours=1)

    # Graph keeps notifying on the old subscription: now it is accepted and syncs alice
    before = len(fake.graph_requests)
    answer = post_graph(second.url, graph_change(ids[ALICE]))
    assert answer.status_code == 202
    assert second.hub.wait_idle(WAIT)
    assert ("GET", f"/v1.0/users/{ALICE}/calendarView/delta") in calls(fake, before)


def test_a_stored_subscription_due_for_renewal_is_renewed_not_created(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack]
) -> None:
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    ids = {m: s.remote_id for m, s in stored(first).items()}
    second = restart(first, tmp_path, stacks)
    second.clock.set(T0 + DEFAULT_LIFETIME - timedelta(hours=2))  # under the 24 h margin

    before = len(fake.graph_requests)
    assert second.hub.ensure_all() == {ALICE_SOURCE, BOB_SOURCE}
    assert sorted(calls(fake, before)) == sorted(
        ("PATCH", f"/v1.0/subscriptions/{i}") for i in ids.values()
    )
    expiry = second.clock.now() + DEFAULT_LIFETIME
    assert {m: (s.remote_id, s.expires) for m, s in stored(second).items()} == {
        m: (i, expiry) for m, i in ids.items()
    }


def test_an_expired_stored_subscription_is_replaced_and_forgotten(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack]
) -> None:
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    old = {s.remote_id for s in stored(first).values()}
    second = restart(first, tmp_path, stacks)
    second.clock.set(T0 + DEFAULT_LIFETIME + timedelta(minutes=1))

    before = len(fake.graph_requests)
    assert second.hub.ensure_all() == {ALICE_SOURCE, BOB_SOURCE}
    assert calls(fake, before) == [("POST", "/v1.0/subscriptions")] * 2  # nothing to delete
    new = {s.remote_id for s in stored(second).values()}
    assert len(new) == 2 and not new & old
    assert second.hub.graph is not None
    assert set(second.hub.graph.subscriptions) == new


def test_a_removed_sources_subscription_is_deleted_remotely_and_from_the_store(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack]
) -> None:
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    bobs = stored(first)[BOB].remote_id
    second = restart(first, tmp_path, stacks, config=WITHOUT_BOB)

    before = len(fake.graph_requests)
    assert second.hub.ensure_all() == {ALICE_SOURCE}
    assert calls(fake, before) == [("DELETE", f"/v1.0/subscriptions/{bobs}")]
    assert bobs not in fake.subscriptions
    assert set(stored(second)) == {ALICE}


def test_a_failed_delete_is_logged_kept_and_retried_at_the_next_upkeep(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack], caplog: pytest.LogCaptureFixture
) -> None:
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    bobs = stored(first)[BOB].remote_id
    second = restart(first, tmp_path, stacks, config=WITHOUT_BOB)
    fake.throttle_next.append(graph_error(403, "Forbidden", "Insufficient privileges."))

    with caplog.at_level(logging.WARNING, logger="sync.push.state"):
        assert second.hub.ensure_all() == {ALICE_SOURCE}  # the service goes on
    assert f"stale graph subscription {bobs} not removed" in caplog.text
    assert set(stored(second)) == {ALICE, BOB}

    before = len(fake.graph_requests)
    second.hub.maintain()
    assert calls(fake, before) == [("DELETE", f"/v1.0/subscriptions/{bobs}")]
    assert set(stored(second)) == {ALICE}


def test_a_changed_client_state_replaces_the_stored_subscriptions(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    old = {s.remote_id for s in stored(first).values()}
    monkeypatch.setenv(STATE_ENV, "a-rotated-client-state-secret")
    second = restart(first, tmp_path, stacks)

    before = len(fake.graph_requests)
    assert second.hub.ensure_all() == {ALICE_SOURCE, BOB_SOURCE}
    made = calls(fake, before)
    assert made.count(("POST", "/v1.0/subscriptions")) == 2
    assert sorted(c for c in made if c[0] == "DELETE") == sorted(
        ("DELETE", f"/v1.0/subscriptions/{i}") for i in old
    )
    assert not {s.remote_id for s in stored(second).values()} & old


def test_the_client_state_secret_is_never_stored_or_logged(
    tmp_path: Path, fake: FakeGraph, stacks: list[Stack], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = start(tmp_path, stacks)
    first.hub.ensure_all()
    second = restart(first, tmp_path, stacks, config=WITHOUT_BOB)
    second.hub.ensure_all()
    second.hub.maintain()
    assert all(s.client_state_ref for s in stored(second).values())

    with sqlite3.connect(tmp_path / "calref.db") as db:
        rows = db.execute("select * from push_subscriptions").fetchall()
    assert rows and CLIENT_STATE not in repr(rows)
    assert CLIENT_STATE.encode() not in (tmp_path / "calref.db").read_bytes()
    assert CLIENT_STATE not in caplog.text
    assert "stale graph subscription" in caplog.text  # the log was captured
