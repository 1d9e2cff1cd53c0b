"""Graph change notifications over real HTTP: handshake, notification → delta sync → plan."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, unquote

import httpx
from push_support import (
    ALICE,
    BOB,
    CLIENT_STATE,
    T0,
    VALIDATION_TOKEN,
    Stack,
    Validations,
    graph_change,
    graph_lifecycle,
    graph_time,
    post_graph,
)

from connectors.switchboard.base import PhoneMode
from rules.model import ActionStatus
from tests.connectors.graph_doubles import FakeGraph, event_json

WAIT = 10.0  # seconds; the worker normally finishes in milliseconds


def start(stack: Stack) -> dict[str, str]:
    """Subscribe, start the service, start the worker; returns subscription id per mailbox."""
    stack.hub.ensure_all()
    stack.service.start()
    stack.hub.start_worker()
    assert stack.hub.graph is not None
    return {sub.mailbox: sub.id for sub in stack.hub.graph.subscriptions.values()}


def delta_calls(fake: FakeGraph, mailbox: str) -> list[str]:
    return [
        unquote(str(r.url))
        for r in fake.graph_requests
        if r.url.path.endswith(f"/users/{mailbox}/calendarView/delta")
    ]


def test_subscriptions_are_created_after_graph_validates_both_urls(
    stack: Stack, fake: FakeGraph, validating: Validations
) -> None:
    subs = start(stack)
    assert set(subs) == {ALICE, BOB}
    created = list(fake.subscriptions.values())
    assert {s["resource"] for s in created} == {f"/users/{ALICE}/events", f"/users/{BOB}/events"}
    for sub in created:
        assert sub["notificationUrl"] == "https://calref.example.se/hooks/graph"
        assert sub["lifecycleNotificationUrl"] == "https://calref.example.se/hooks/graph/lifecycle"
        assert sub["clientState"] == CLIENT_STATE
        assert sub["changeType"] == "created,updated,deleted"
    assert len(validating.seen) == 4
    for _url, status, content_type, body in validating.seen:
        assert status == 200
        assert content_type.startswith("text/plain")
        assert body == VALIDATION_TOKEN
    assert stack.hub.active == {f"graph:{ALICE}", f"graph:{BOB}"}


def test_validation_handshake_echoes_the_decoded_token_as_plain_text(stack: Stack) -> None:
    for path in ("/hooks/graph", "/hooks/graph/lifecycle"):
        answer = httpx.post(
            f"{stack.url}{path}?validationToken={quote(VALIDATION_TOKEN)}",
            headers={"Content-Type": "text/plain"},
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.text == VALIDATION_TOKEN


def test_created_notification_runs_that_mailboxs_delta_and_plans_the_phone_action(
    stack: Stack, fake: FakeGraph
) -> None:
    subs = start(stack)
    assert stack.service.store.actions("alice") == []
    baseline_bob = len(delta_calls(fake, BOB))
    meeting_start = T0 + timedelta(hours=2)
    fake.put(
        ALICE,
        event_json(
            "AAMkAGUwNjQ4ZjIxAAA=",
            subject="Budget review #close",
            start=graph_time(meeting_start),
            end=graph_time(meeting_start + timedelta(hours=1)),
        ),
    )

    answer = post_graph(stack.url, graph_change(subs[ALICE], change_type="created"))

    assert answer.status_code == 202
    assert answer.text == ""
    assert stack.hub.wait_idle(WAIT)
    alice_calls = delta_calls(fake, ALICE)
    assert "$deltatoken=" in alice_calls[-1]  # the stored delta link, not a full read
    assert len(delta_calls(fake, BOB)) == baseline_bob  # only the notified mailbox
    actions = stack.service.store.actions("alice")
    assert [(a.moment, a.action.kind.value, a.due_at, a.status) for a in actions] == [
        ("start", "close", meeting_start, ActionStatus.PENDING),
        ("end", "follow_profile", meeting_start + timedelta(hours=1), ActionStatus.PENDING),
    ]
    stack.clock.set(meeting_start + timedelta(seconds=1))
    stack.service.execute_due()
    assert stack.switchboard.phone("alice").mode is PhoneMode.CLOSED


def test_updated_notification_moves_the_planned_action(stack: Stack, fake: FakeGraph) -> None:
    first = T0 + timedelta(hours=2)
    fake.put(
        ALICE,
        event_json(
            "ev-1", "Review #close", graph_time(first), graph_time(first + timedelta(hours=1))
        ),
    )
    subs = start(stack)
    assert [a.due_at for a in stack.service.store.actions("alice") if a.moment == "start"] == [
        first
    ]
    moved = first + timedelta(hours=3)
    fake.put(
        ALICE,
        event_json(
            "ev-1", "Review #close", graph_time(moved), graph_time(moved + timedelta(hours=1))
        ),
    )
    assert (
        post_graph(stack.url, graph_change(subs[ALICE], change_type="updated")).status_code == 202
    )
    assert stack.hub.wait_idle(WAIT)
    live = [
        a
        for a in stack.service.store.actions("alice")
        if a.status == ActionStatus.PENDING and a.moment == "start"
    ]
    assert [a.due_at for a in live] == [moved]


def test_wrong_client_state_is_refused_and_syncs_nothing(stack: Stack, fake: FakeGraph) -> None:
    subs = start(stack)
    before = len(fake.graph_requests)
    fake.put(ALICE, event_json("ev-2", "Should not be seen #close"))

    answer = post_graph(stack.url, graph_change(subs[ALICE], client_state="not-the-secret"))

    assert answer.status_code == 403
    assert CLIENT_STATE not in answer.text
    assert stack.hub.wait_idle(WAIT)
    assert len(fake.graph_requests) == before
    assert stack.service.store.actions("alice") == []


def test_unknown_subscription_and_malformed_bodies_are_refused(
    stack: Stack, fake: FakeGraph
) -> None:
    start(stack)
    before = len(fake.graph_requests)
    assert post_graph(stack.url, graph_change("no-such-subscription")).status_code == 403
    garbage = httpx.post(f"{stack.url}/hooks/graph", content=b"{not json", timeout=5)
    assert garbage.status_code == 400
    huge = httpx.post(f"{stack.url}/hooks/graph", content=b"x" * (2 << 20), timeout=5)
    assert huge.status_code == 413
    assert stack.hub.wait_idle(WAIT)
    assert len(fake.graph_requests) == before


def test_reauthorization_required_renews_the_subscription_at_once(
    stack: Stack, fake: FakeGraph
) -> None:
    subs = start(stack)
    before = len(fake.graph_requests)
    answer = post_graph(
        stack.url,
        graph_lifecycle(subs[BOB], "reauthorizationRequired"),
        path="/hooks/graph/lifecycle",
    )
    assert answer.status_code == 202
    assert stack.hub.wait_idle(WAIT)
    calls = [(r.method, r.url.path) for r in fake.graph_requests[before:]]
    assert calls == [("PATCH", f"/v1.0/subscriptions/{subs[BOB]}")]  # renewed; no sync needed


def test_subscription_removed_is_recreated_and_the_mailbox_synced(
    stack: Stack, fake: FakeGraph
) -> None:
    subs = start(stack)
    before = len(fake.graph_requests)
    answer = post_graph(
        stack.url,
        graph_lifecycle(subs[ALICE], "subscriptionRemoved"),
        path="/hooks/graph/lifecycle",
    )
    assert answer.status_code == 202
    assert stack.hub.wait_idle(WAIT)
    calls = [(r.method, r.url.path) for r in fake.graph_requests[before:]]
    assert ("POST", "/v1.0/subscriptions") in calls
    assert ("GET", f"/v1.0/users/{ALICE}/calendarView/delta") in calls
    assert stack.hub.graph is not None
    new_ids = {s.id for s in stack.hub.graph.subscriptions.values() if s.mailbox == ALICE}
    assert new_ids and subs[ALICE] not in new_ids
    assert f"graph:{ALICE}" in stack.hub.active
