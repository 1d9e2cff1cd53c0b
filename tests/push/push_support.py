"""Shared pieces of the push tests: config text, notification payloads, a running push stack.

Payload shapes follow Microsoft's "Receive change notifications through webhooks"
and "lifecycle notifications" pages (a ``value`` collection of items with
``subscriptionId``, ``clientState``, ``changeType``, ``resource``, ``resourceData``,
``tenantId``; lifecycle items carry ``lifecycleEvent``) and Google's "Push
notifications" guide (everything in ``X-Goog-*`` headers, empty body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from connectors.clock import VirtualClock
from connectors.http_server import RunningServer, serve_in_thread
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.cli.runtime import build_service
from sync.config import AppConfig, load_config
from sync.push.app import create_push_app
from sync.push.hub import PushHub
from sync.push.setup import build_hub
from sync.service.scheduler import ServiceScheduler
from sync.service.service import Service
from tests.connectors.graph_doubles import CLIENT_ID, TENANT, FakeGraph, graph_error

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday, 08:00 in Stockholm
CLIENT_STATE = "s3cret-client-state-from-the-environment"
STATE_ENV = "CALREF_TEST_PUSH_CLIENT_STATE"
GRAPH_SECRET_ENV = "CALREF_TEST_PUSH_GRAPH_SECRET"
PUBLIC = "https://calref.example.se"
ALICE = "alice@example.se"
BOB = "bob@example.se"
TENANT_USER = "ddfcd489-628b-40d7-b48b-57002df800e5"

GRAPH_CONFIG = f"""\
timezone: Europe/Stockholm
organization: {{domains: [example.se]}}
store: sqlite:///calref.db
sync: {{poll_seconds: 60}}
connections:
  graph:
    tenant_id: {TENANT}
    client_id: {CLIENT_ID}
    client_secret_env: {GRAPH_SECRET_ENV}
push:
  listen_host: 127.0.0.1
  listen_port: 0
  public_url: {PUBLIC}
  client_state_env: {STATE_ENV}
  safety_poll_seconds: 3600
  maintenance_seconds: 600
users:
  - id: alice
    name: Alice Andersson
    email: {ALICE}
    extension: "1234"
    calendars: [{{kind: graph}}]
  - id: bob
    name: Bob Berg
    email: {BOB}
    extension: "1235"
    calendars: [{{kind: graph}}]
"""


def graph_change(
    subscription_id: str,
    client_state: str = CLIENT_STATE,
    change_type: str = "created",
    event_id: str = "AAMkAGUwNjQ4ZjIxAAA=",
) -> dict[str, Any]:
    """One change notification item, as Graph POSTs it to the notification URL."""
    resource = f"Users/{TENANT_USER}/Events/{event_id}"
    return {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": "2026-03-05T05:00:00.0000000Z",
        "changeType": change_type,
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": 'W/"DwAAABYAAABQ9dfOhvVFSqzGxk9KbRCXAAAxy4Ro"',
            "id": event_id,
        },
        "clientState": client_state,
        "tenantId": TENANT,
    }


def graph_lifecycle(
    subscription_id: str, event: str, client_state: str = CLIENT_STATE
) -> dict[str, Any]:
    """One lifecycle notification item (``reauthorizationRequired``, ``subscriptionRemoved``...)."""
    return {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": "2026-03-05T05:00:00.0000000Z",
        "tenantId": TENANT,
        "clientState": client_state,
        "lifecycleEvent": event,
    }


def post_graph(url: str, *items: dict[str, Any], path: str = "/hooks/graph") -> httpx.Response:
    """POST a notification collection the way Graph does (JSON, ``{"value": [...]}``)."""
    return httpx.post(
        url + path,
        content=json.dumps({"value": list(items)}),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=5,
    )


def google_headers(channel: str, token: str, state: str, resource: str) -> dict[str, str]:
    """The headers of a Google Calendar push message (the body is empty)."""
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Channel-Expiration": "Mon, 09 Mar 2026 07:00:00 GMT",
        "X-Goog-Message-Number": "1",
        "X-Goog-Resource-ID": resource,
        "X-Goog-Resource-URI": (
            "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json"
        ),
        "X-Goog-Resource-State": state,
        "Content-Length": "0",
    }


def graph_time(moment: datetime) -> str:
    """A Graph ``dateTime`` (seven fraction digits, no offset) in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


@dataclass
class Stack:
    """A service with its push hub served over real HTTP on 127.0.0.1."""

    app: AppConfig
    clock: VirtualClock
    switchboard: SimulatedSwitchboard
    service: Service
    scheduler: ServiceScheduler
    hub: PushHub
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.hub.stop_worker()
        self.scheduler.shutdown(wait=False)
        self.service.store.close()


def graph_stack(directory: Path, config: str = GRAPH_CONFIG) -> Stack:
    """Load ``config`` from ``directory``, build the service on a virtual clock, serve push.

    Nothing is contacted yet: the caller runs ``hub.ensure_all()``, ``service.start()``
    and ``hub.start_worker()`` (the order ``calref run`` uses).
    """
    path = directory / "calref.yaml"
    path.write_text(config, encoding="utf-8")
    app = load_config(path)
    clock = VirtualClock(T0)
    switchboard = SimulatedSwitchboard(app.users, clock=clock)
    service = build_service(app, clock, switchboard=switchboard)
    scheduler = ServiceScheduler(service)
    hub = build_hub(app, service, scheduler.set_source_interval)
    server = serve_in_thread(create_push_app(hub), "127.0.0.1", 0)
    return Stack(app, clock, switchboard, service, scheduler, hub, server)


class PushFakeGraph(FakeGraph):
    """``FakeGraph`` that also answers ``DELETE /subscriptions/{id}`` (subscription-delete docs).

    204 with no body when the subscription exists, 404 ``ResourceNotFound`` when not.
    """

    def _subscriptions(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        if request.method == "DELETE" and len(parts) == 2:
            if self.subscriptions.pop(parts[1], None) is None:
                return graph_error(404, "ResourceNotFound", "The object was not found.")
            return httpx.Response(204)
        return super()._subscriptions(request, parts)


VALIDATION_TOKEN = (
    "Validation: Testing client application reachability for subscription "
    "Request-Id: 5d1ad3c4-a3b5-4d58-9b49-ca2a3b6a2b5c"
)


@dataclass
class Validations:
    """The validation handshakes FakeGraph performed: (url, status, content type, body)."""

    seen: list[tuple[str, int, str, str]] = field(default_factory=list)


def validate_like_graph(fake: FakeGraph, stack: Stack) -> Validations:
    """Make ``POST /subscriptions`` validate both URLs first, as Graph does.

    The validation request (``POST <url>?validationToken=...``, text/plain) goes to
    the test's loopback listener in place of the public address; unless both
    answer 200 with the token as plain text, the creation fails with Graph's 400.
    """
    record = Validations()

    def on_request(request: httpx.Request) -> None:
        if request.method != "POST" or not request.url.path.endswith("/subscriptions"):
            return
        body = json.loads(request.content)
        for key in ("notificationUrl", "lifecycleNotificationUrl"):
            url = body[key].replace(PUBLIC, stack.url, 1)
            answer = httpx.post(
                f"{url}?validationToken={quote(VALIDATION_TOKEN)}",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=10,
            )
            record.seen.append(
                (body[key], answer.status_code, answer.headers.get("content-type", ""), answer.text)
            )
            if answer.status_code != 200 or answer.text != VALIDATION_TOKEN:
                fake.throttle_next.append(
                    graph_error(
                        400,
                        "InvalidRequest",
                        "Subscription validation request failed. Notification endpoint "
                        "must respond with 200 OK to validation request.",
                    )
                )
                return

    fake.on_request = on_request
    return record
