"""Subscription upkeep on a virtual clock: renewals, per-source fallback to polling, timers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from push_support import ALICE, BOB, STATE_ENV, T0, Stack, Validations, graph_stack

from connectors.calendars.graph.push import DEFAULT_LIFETIME, DEFAULT_RENEW_BEFORE
from sync.push.setup import PushRuntime
from tests.connectors.graph_doubles import FakeGraph, graph_error

WAIT = 10.0
SAFETY = timedelta(hours=1)
NORMAL = timedelta(seconds=60)
ALICE_SOURCE, BOB_SOURCE = f"graph:{ALICE}", f"graph:{BOB}"


def requests_since(fake: FakeGraph, before: int) -> list[tuple[str, str]]:
    return [(r.method, r.url.path) for r in fake.graph_requests[before:]]


def forbidden() -> httpx.Response:
    return graph_error(
        403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden]"
    )


def test_push_sources_poll_at_the_safety_interval_and_subscriptions_are_renewed_in_time(
    stack: Stack, fake: FakeGraph
) -> None:
    stack.hub.ensure_all()
    stack.service.start()
    assert stack.service.settings.interval_for(ALICE_SOURCE) == SAFETY
    assert stack.service.settings.interval_for(BOB_SOURCE) == SAFETY
    assert stack.hub.graph is not None
    expiry = {s.mailbox: s.expires for s in stack.hub.graph.subscriptions.values()}
    assert expiry[ALICE] == T0 + DEFAULT_LIFETIME

    stack.clock.set(T0 + DEFAULT_LIFETIME - DEFAULT_RENEW_BEFORE - timedelta(minutes=10))
    before = len(fake.graph_requests)
    stack.hub.maintain()
    assert requests_since(fake, before) == []  # not due yet

    stack.clock.advance(timedelta(minutes=10))
    stack.hub.maintain()
    patched = {path for method, path in requests_since(fake, before) if method == "PATCH"}
    assert patched == {
        f"/v1.0/subscriptions/{s.id}" for s in stack.hub.graph.subscriptions.values()
    }
    renewed = {s.mailbox: s.expires for s in stack.hub.graph.subscriptions.values()}
    assert renewed[ALICE] == stack.clock.now() + DEFAULT_LIFETIME
    assert stack.hub.active == {ALICE_SOURCE, BOB_SOURCE}


def test_a_failed_subscription_falls_back_to_polling_that_source_only_and_is_retried(
    stack: Stack, fake: FakeGraph, validating: Validations
) -> None:
    fake.throttle_next.append(forbidden())  # the first POST /subscriptions (alice) fails
    live = stack.hub.ensure_all()
    stack.service.start()
    stack.hub.start_worker()
    assert live == {BOB_SOURCE}
    assert stack.service.settings.interval_for(ALICE_SOURCE) == NORMAL
    assert stack.service.settings.interval_for(BOB_SOURCE) == SAFETY

    # the service goes on: alice is polled every minute, bob only hourly
    stack.clock.advance(timedelta(seconds=61))
    before = len(fake.graph_requests)
    stack.service.tick()
    polled = {path for _method, path in requests_since(fake, before)}
    assert polled == {f"/v1.0/users/{ALICE}/calendarView/delta"}

    before = len(fake.graph_requests)
    stack.hub.maintain()  # the next upkeep round retries alice
    assert stack.hub.wait_idle(WAIT)
    calls = requests_since(fake, before)
    assert calls[0] == ("POST", "/v1.0/subscriptions")
    assert ("GET", f"/v1.0/users/{ALICE}/calendarView/delta") in calls  # catch-up sync
    assert stack.hub.active == {ALICE_SOURCE, BOB_SOURCE}
    assert stack.service.settings.interval_for(ALICE_SOURCE) == SAFETY


def test_a_lapsed_subscription_that_cannot_be_renewed_reverts_to_normal_polling_alone(
    stack: Stack, fake: FakeGraph
) -> None:
    stack.hub.ensure_all()
    stack.service.start()
    stack.clock.set(T0 + DEFAULT_LIFETIME + timedelta(minutes=1))
    fake.throttle_next.extend([forbidden(), forbidden()])
    stack.hub.maintain()  # alice's renewal fails twice (in maintain, then on its own)
    assert stack.hub.active == {BOB_SOURCE}  # bob's is renewed all the same
    assert stack.service.settings.interval_for(ALICE_SOURCE) == NORMAL
    assert stack.service.settings.interval_for(BOB_SOURCE) == SAFETY

    stack.hub.maintain()  # Graph answers again
    assert stack.hub.active == {ALICE_SOURCE, BOB_SOURCE}
    assert stack.service.settings.interval_for(ALICE_SOURCE) == SAFETY


def test_scheduler_poll_jobs_follow_push_and_upkeep_runs_as_a_job(
    stack: Stack, fake: FakeGraph
) -> None:
    fake.throttle_next.append(forbidden())
    stack.hub.ensure_all()
    stack.scheduler.start(paused=True)  # timers armed, not firing: the test inspects them
    runtime = PushRuntime(stack.hub, stack.server, stack.scheduler, timedelta(minutes=10))
    runtime.activate()
    jobs = {job.id: job for job in stack.scheduler.scheduler.get_jobs()}
    poller = stack.service.poller  # one due-queue: each source's next poll within its interval
    assert stack.service.settings.interval_for(ALICE_SOURCE) == NORMAL
    assert stack.service.settings.interval_for(BOB_SOURCE) == SAFETY
    for source, interval in ((ALICE_SOURCE, NORMAL), (BOB_SOURCE, SAFETY)):
        due = poller.due_at(source)
        assert due is not None and stack.clock.now() < due <= stack.clock.now() + interval
    upkeep = jobs["push-maintenance"]
    assert upkeep.trigger.interval == timedelta(minutes=10)
    assert upkeep.misfire_grace_time is None and upkeep.coalesce is True

    stack.hub.maintain()  # alice's subscription now succeeds: her polls slow down
    assert stack.service.settings.interval_for(ALICE_SOURCE) == SAFETY
    due = poller.due_at(ALICE_SOURCE)
    assert due is not None and due >= stack.clock.now() + SAFETY - timedelta(seconds=1)


def test_without_the_client_state_secret_graph_calendars_are_just_polled(
    fake: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_ENV)
    running = graph_stack(tmp_path)
    try:
        assert running.hub.graph is None
        assert running.hub.source_ids == []
        assert running.hub.ensure_all() == set()
        running.service.start()
        assert running.service.settings.interval_for(ALICE_SOURCE) == NORMAL
        assert not any(r.url.path.endswith("/subscriptions") for r in fake.graph_requests)
    finally:
        running.stop()
