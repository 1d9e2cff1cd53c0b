"""Google watch notifications over real HTTP: channel checks, sync of that source, renewal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from googleapiclient.http import HttpMockSequence
from push_support import PUBLIC, T0, google_headers

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.google.push import GoogleChannelManager
from connectors.clock import VirtualClock
from connectors.http_server import RunningServer, serve_in_thread
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext
from rules.model import ActionStatus, CalendarEvent, Plan, Profile, User
from rules.planner import plan_user
from rules.rulefile import default_rules
from sync.push.app import create_push_app
from sync.push.hub import PushHub
from sync.service.scheduler import ServiceScheduler
from sync.service.service import Service
from sync.store import Store
from tests.connectors.gcal_doubles import event, events_page, make_source, ok, path, query

WAIT = 10.0
BOB = User("bob", "Bob Berg", "bob@example.se", "1235", (Profile("ext", "Extension", "1235"),))
SOURCE = "google:bob@example.se"


def watch_answer(channel_id: str, resource_id: str, days: float) -> tuple[dict[str, str], str]:
    """The Channel resource events.watch returns (expiration: ms since the epoch, a string)."""
    expires = T0 + timedelta(days=days)
    return ok(
        json.dumps(
            {
                "kind": "api#channel",
                "id": channel_id,
                "resourceId": resource_id,
                "resourceUri": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
                "expiration": str(int(expires.timestamp() * 1000)),
            }
        )
    )


@dataclass
class GoogleStack:
    clock: VirtualClock
    http: HttpMockSequence
    service: Service
    switchboard: SimulatedSwitchboard
    hub: PushHub
    server: RunningServer
    scheduler: ServiceScheduler

    def post(self, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.server.url}/hooks/google", headers=headers, timeout=5)

    def calls(self) -> list[str]:
        return [path(self.http, i) for i in range(len(self.http.request_sequence))]


def planner(user: User, events: list[CalendarEvent], window: SyncWindow) -> Plan:
    ctx = EvaluationContext(
        timezone=ZoneInfo("Europe/Stockholm"), policy=ForwardPolicy(), rules=default_rules()
    )
    return plan_user(user, events, ctx)


def google_stack(tmp_path: Path, responses: list[tuple[dict[str, str], str]]) -> GoogleStack:
    clock = VirtualClock(T0)
    source, http, _ = make_source(
        responses, mailbox=Mailbox("bob", BOB.email, ("example.se",), "Europe/Stockholm")
    )
    store = Store.open(f"sqlite:///{tmp_path}/calref.db")
    store.migrate()  # as ``calref run`` does before push starts
    switchboard = SimulatedSwitchboard([BOB], clock=clock)
    service = Service(store, switchboard, {"bob": [source]}, [BOB], planner, clock)
    scheduler = ServiceScheduler(service)
    ids: Iterator[str] = iter(["chan-1", "chan-2", "chan-3"])
    tokens: Iterator[str] = iter(["tok-1", "tok-2", "tok-3"])
    manager = GoogleChannelManager(
        f"{PUBLIC}/hooks/google",
        clock=clock,
        new_id=lambda: next(ids),
        new_token=lambda: next(tokens),
    )
    hub = PushHub(
        service,
        graph=None,
        google=manager,
        safety_interval=timedelta(hours=1),
        set_interval=scheduler.set_source_interval,
    )
    server = serve_in_thread(create_push_app(hub), "127.0.0.1", 0)
    hub.ensure_all()
    service.start()
    hub.start_worker()
    return GoogleStack(clock, http, service, switchboard, hub, server, scheduler)


@pytest.fixture
def stacks() -> Iterator[list[GoogleStack]]:
    made: list[GoogleStack] = []
    yield made
    for stack in made:
        stack.server.stop()
        stack.hub.stop_worker()
        stack.service.store.close()


def meeting(event_id: str, summary: str, start: str, end: str) -> dict[str, Any]:
    return event(event_id, start, end, summary=summary)


def test_exists_notification_runs_the_incremental_sync_and_plans_the_action(
    tmp_path: Path, stacks: list[GoogleStack]
) -> None:
    changed = meeting(
        "ev1", "Planning #close", "2026-03-02T10:00:00+01:00", "2026-03-02T11:00:00+01:00"
    )
    stack = google_stack(
        tmp_path,
        [
            watch_answer("chan-1", "res-1", days=7),
            ok(events_page([], next_sync="sync-1")),
            ok(events_page([changed], next_sync="sync-2")),
        ],
    )
    stacks.append(stack)
    assert stack.calls() == [
        "/calendar/v3/calendars/primary/events/watch",
        "/calendar/v3/calendars/primary/events",
    ]
    assert stack.hub.active == {SOURCE}
    assert stack.service.settings.interval_for(SOURCE) == timedelta(hours=1)

    answer = stack.post(google_headers("chan-1", "tok-1", "exists", "res-1"))

    assert answer.status_code == 200
    assert stack.hub.wait_idle(WAIT)
    assert len(stack.calls()) == 3
    assert query(stack.http, 2)["syncToken"] == ["sync-1"]  # incremental, from the stored token
    actions = stack.service.store.actions("bob")
    assert [(a.moment, a.action.kind.value, a.status) for a in actions] == [
        ("start", "close", ActionStatus.PENDING),
        ("end", "follow_profile", ActionStatus.PENDING),
    ]
    assert actions[0].due_at == T0 + timedelta(hours=2)


def test_sync_message_wrong_token_and_unknown_channel_trigger_nothing(
    tmp_path: Path, stacks: list[GoogleStack]
) -> None:
    stack = google_stack(
        tmp_path, [watch_answer("chan-1", "res-1", days=7), ok(events_page([], next_sync="s1"))]
    )
    stacks.append(stack)
    first = stack.post(google_headers("chan-1", "tok-1", "sync", "res-1"))
    wrong = stack.post(google_headers("chan-1", "tok-2", "exists", "res-1"))
    stray = stack.post(google_headers("chan-from-last-week", "tok-1", "exists", "res-9"))
    missing = httpx.post(f"{stack.server.url}/hooks/google", timeout=5)

    assert first.status_code == 200  # acknowledged, nothing changed yet
    assert wrong.status_code == 403
    assert stray.status_code == 200  # Google would only retry; the channel is ignored
    assert missing.status_code == 400
    assert stack.hub.wait_idle(WAIT)
    assert len(stack.calls()) == 2  # watch + the start-up read; no further sync


def test_channel_is_renewed_before_expiry_and_only_the_new_one_triggers(
    tmp_path: Path, stacks: list[GoogleStack]
) -> None:
    stack = google_stack(
        tmp_path,
        [
            watch_answer("chan-1", "res-1", days=7),
            ok(events_page([], next_sync="s1")),
            watch_answer("chan-2", "res-2", days=13),
            ({"status": "204"}, ""),  # channels.stop of chan-1
            ok(events_page([], next_sync="s2")),
        ],
    )
    stacks.append(stack)
    stack.clock.advance(timedelta(days=5))
    stack.hub.maintain()
    assert len(stack.calls()) == 2  # not due yet: 2 days left, renewal starts 1 day before

    stack.clock.advance(timedelta(days=1, minutes=1))
    stack.hub.maintain()
    assert stack.calls()[2:] == [
        "/calendar/v3/calendars/primary/events/watch",
        "/calendar/v3/channels/stop",
    ]
    assert stack.hub.active == {SOURCE}
    assert stack.post(google_headers("chan-1", "tok-1", "exists", "res-1")).status_code == 200
    assert stack.hub.wait_idle(WAIT)
    assert len(stack.calls()) == 4  # the stopped channel triggers nothing
    assert stack.post(google_headers("chan-2", "tok-2", "exists", "res-2")).status_code == 200
    assert stack.hub.wait_idle(WAIT)
    assert len(stack.calls()) == 5


def test_watch_failure_falls_back_to_polling_and_is_retried(
    tmp_path: Path, stacks: list[GoogleStack]
) -> None:
    forbidden = json.dumps(
        {
            "error": {
                "errors": [
                    {
                        "domain": "global",
                        "reason": "push.webhookUrlUnauthorized",
                        "message": "Unauthorized WebHook callback channel: "
                        "https://calref.example.se/hooks/google",
                    }
                ],
                "code": 401,
                "message": "Unauthorized WebHook callback channel",
            }
        }
    )
    stack = google_stack(
        tmp_path,
        [
            ({"status": "401", "content-type": "application/json"}, forbidden),
            ok(events_page([], next_sync="s1")),
            watch_answer("chan-2", "res-2", days=7),  # chan-1 was the refused attempt
            ok(events_page([], next_sync="s2")),
        ],
    )
    stacks.append(stack)
    assert stack.hub.active == set()
    assert stack.service.settings.interval_for(SOURCE) == timedelta(seconds=60)
    assert stack.service.store.sources()[0].last_success == T0  # the service runs on

    stack.clock.advance(timedelta(minutes=10))
    stack.hub.maintain()
    assert stack.hub.wait_idle(WAIT)
    assert stack.hub.active == {SOURCE}
    assert stack.service.settings.interval_for(SOURCE) == timedelta(hours=1)
    assert len(stack.calls()) == 4  # the retried watch, then a catch-up sync
