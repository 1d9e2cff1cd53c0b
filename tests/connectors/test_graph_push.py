"""Graph change-notification subscriptions and the framework-independent webhook handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from graph_doubles import CLIENT_ID, TENANT, FakeGraph

from connectors.calendars.graph.client import GraphClient
from connectors.calendars.graph.push import SubscriptionManager
from connectors.clock import VirtualClock
from connectors.secrets import Secret
from rules.errors import CalendarError

STATE = "c1ientSt4te-from-env"
BOX = "alice@example.se"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    graph = FakeGraph()
    with respx.mock(assert_all_called=False) as router:
        graph.mount(router)
        yield graph


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2024, 5, 6, 8, 0, tzinfo=UTC))


@pytest.fixture
def manager(fake: FakeGraph, clock: VirtualClock) -> SubscriptionManager:
    client = GraphClient(
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        credential=Secret("s"),
        http=httpx.Client(),
        sleep=lambda _: None,
    )
    return SubscriptionManager(
        client,
        notification_url="https://calref.example.se/graph/notify",
        lifecycle_url="https://calref.example.se/graph/lifecycle",
        client_state=Secret(STATE),
        clock=clock,
    )


def notification(sub_id: str, client_state: str = STATE, **extra: str) -> bytes:
    item = {
        "subscriptionId": sub_id,
        "subscriptionExpirationDateTime": "2024-05-09T06:00:00.0000000Z",
        "changeType": "updated",
        "resource": "Users/ddfcd489-628b-40d7-b48b-57002df800e5/Events/AAMkAGUwNjQ4ZjIxAAA=",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": "Users/ddfcd489-628b-40d7-b48b-57002df800e5/Events/AAMkAGUwNjQ4ZjIxAAA=",
            "@odata.etag": 'W/"DwAAABYAAABQ9dfOhvVFSqzGxk9KbRCXAAAxy4Ro"',
            "id": "AAMkAGUwNjQ4ZjIxAAA=",
        },
        "clientState": client_state,
        "tenantId": TENANT,
    }
    item.update(extra)
    return json.dumps({"value": [item]}).encode()


def lifecycle(sub_id: str, event: str, client_state: str = STATE) -> bytes:
    item = {
        "subscriptionId": sub_id,
        "subscriptionExpirationDateTime": "2024-05-09T06:00:00.0000000Z",
        "tenantId": TENANT,
        "clientState": client_state,
        "lifecycleEvent": event,
    }
    return json.dumps({"value": [item]}).encode()


def test_subscription_is_created_for_the_mailbox_events_with_lifecycle_url(
    manager: SubscriptionManager, fake: FakeGraph
) -> None:
    sub = manager.subscribe(BOX)
    sent = json.loads(fake.graph_requests[-1].content)
    assert sent["resource"] == f"/users/{BOX}/events"
    assert sent["changeType"] == "created,updated,deleted"
    assert sent["clientState"] == STATE
    assert sent["lifecycleNotificationUrl"] == "https://calref.example.se/graph/lifecycle"
    assert sent["expirationDateTime"] == "2024-05-09T06:00:00.0000000Z"  # now + 4200 min
    assert sub.expires == datetime(2024, 5, 9, 6, 0, tzinfo=UTC)
    assert 'IdType="ImmutableId"' in fake.graph_requests[-1].headers.get_list("Prefer")


def test_validation_token_is_echoed_as_plain_text(manager: SubscriptionManager) -> None:
    outcome = manager.handle_notification_request(
        {
            "validationToken": "Validation: Testing client application reachability "
            "for subscription Request-Id: 1"
        },
        b"",
    )
    assert (outcome.status, outcome.content_type) == (200, "text/plain")
    assert outcome.body.startswith("Validation: Testing client application")


def test_notification_asks_for_a_delta_sync_of_its_mailbox(manager: SubscriptionManager) -> None:
    sub = manager.subscribe(BOX)
    outcome = manager.handle_notification_request({}, notification(sub.id))
    assert (outcome.status, outcome.mailboxes_to_sync) == (202, (BOX,))


def test_client_state_mismatch_is_rejected(manager: SubscriptionManager) -> None:
    sub = manager.subscribe(BOX)
    outcome = manager.handle_notification_request({}, notification(sub.id, "forged"))
    assert (outcome.status, outcome.mailboxes_to_sync) == (403, ())


def test_malformed_body_is_a_bad_request(manager: SubscriptionManager) -> None:
    assert manager.handle_notification_request({}, b"{not json").status == 400


def test_renewal_happens_only_when_expiry_is_near(
    manager: SubscriptionManager, fake: FakeGraph, clock: VirtualClock
) -> None:
    sub = manager.subscribe(BOX)
    calls = len(fake.graph_requests)
    clock.advance(timedelta(hours=40))  # 30 h left: not due (renew in the last 24 h)
    manager.maintain()
    assert len(fake.graph_requests) == calls
    clock.advance(timedelta(hours=10))  # 20 h left: due
    manager.maintain()
    patch = fake.graph_requests[-1]
    assert (patch.method, patch.url.path) == ("PATCH", f"/v1.0/subscriptions/{sub.id}")
    assert sub.expires == clock.now() + timedelta(minutes=4200)


def test_renewing_a_subscription_graph_forgot_creates_a_new_one(
    manager: SubscriptionManager, fake: FakeGraph, clock: VirtualClock
) -> None:
    sub = manager.subscribe(BOX)
    fake.subscriptions.clear()
    clock.advance(timedelta(days=2, hours=12))
    manager.maintain()
    assert sub.id not in manager.subscriptions
    assert [s.mailbox for s in manager.subscriptions.values()] == [BOX]


def test_lifecycle_events_queue_reauthorize_recreate_and_resync(
    manager: SubscriptionManager, fake: FakeGraph
) -> None:
    sub = manager.subscribe(BOX)
    reauth = manager.handle_notification_request({}, lifecycle(sub.id, "reauthorizationRequired"))
    assert (reauth.status, reauth.mailboxes_to_sync) == (202, ())
    missed = manager.handle_notification_request({}, lifecycle(sub.id, "missed"))
    assert missed.mailboxes_to_sync == (BOX,)
    calls = len(fake.graph_requests)
    assert manager.maintain() == []
    assert fake.graph_requests[calls].method == "PATCH"  # reauthorized by extending

    removed = manager.handle_notification_request({}, lifecycle(sub.id, "subscriptionRemoved"))
    assert removed.mailboxes_to_sync == (BOX,)
    assert manager.maintain() == [BOX]
    assert fake.graph_requests[-1].method == "POST"
    assert len(manager.subscriptions) == 1 and sub.id not in manager.subscriptions


def test_client_state_longer_than_graph_allows_is_refused(fake: FakeGraph) -> None:
    client = GraphClient(tenant_id=TENANT, client_id=CLIENT_ID, credential=Secret("s"))
    with pytest.raises(CalendarError, match="128"):
        SubscriptionManager(
            client,
            notification_url="https://a.example/n",
            lifecycle_url="https://a.example/l",
            client_state=Secret("x" * 129),
        )
