"""Google watch channels across restarts: reused, replaced when expired, stopped when stale."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from push_support import PUBLIC, T0, google_headers
from test_push_google import BOB, SOURCE, GoogleStack, planner, watch_answer

from connectors.calendars.base import Mailbox
from connectors.calendars.google.push import GoogleChannelManager
from connectors.calendars.google.source import GoogleCalendarSource
from connectors.clock import VirtualClock
from connectors.http_server import serve_in_thread
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.push.app import create_push_app
from sync.push.hub import PushHub
from sync.service.scheduler import ServiceScheduler
from sync.service.service import Service
from sync.store import Store
from sync.store.push import StoredPush
from tests.connectors.gcal_doubles import events_page, make_source, ok, path

WAIT = 10.0
BOB_MAILBOX = Mailbox("bob", BOB.email, ("example.se",), "Europe/Stockholm")
STOPPED = ({"status": "204"}, "")


def start(
    tmp_path: Path,
    responses: list[tuple[dict[str, str], str]],
    *,
    ids: list[str],
    tokens: list[str],
    days: float = 0,
    calendar_id: str = "primary",
    stopper: list[GoogleCalendarSource] | None = None,
) -> GoogleStack:
    """A process on the store in ``tmp_path``, ``days`` after T0; push upkeep runs first."""
    clock = VirtualClock(T0 + timedelta(days=days))
    source, http, _ = make_source(responses, mailbox=BOB_MAILBOX, calendar_id=calendar_id)
    store = Store.open(f"sqlite:///{tmp_path}/calref.db")
    store.migrate()
    switchboard = SimulatedSwitchboard([BOB], clock=clock)
    service = Service(store, switchboard, {"bob": [source]}, [BOB], planner, clock)
    scheduler = ServiceScheduler(service)
    new_ids: Iterator[str] = iter(ids)
    new_tokens: Iterator[str] = iter(tokens)
    manager = GoogleChannelManager(
        f"{PUBLIC}/hooks/google",
        clock=clock,
        new_id=lambda: next(new_ids),
        new_token=lambda: next(new_tokens),
    )
    stoppers = iter(stopper or [])
    hub = PushHub(
        service,
        graph=None,
        google=manager,
        safety_interval=timedelta(hours=1),
        set_interval=scheduler.set_source_interval,
        google_source_for=lambda account: next(stoppers),
    )
    server = serve_in_thread(create_push_app(hub), "127.0.0.1", 0)
    hub.ensure_all()
    service.start()
    hub.start_worker()
    return GoogleStack(clock, http, service, switchboard, hub, server, scheduler)


def stop(stack: GoogleStack) -> None:
    stack.server.stop()
    stack.hub.stop_worker()
    stack.service.store.close()


@pytest.fixture
def running() -> Iterator[list[GoogleStack]]:
    made: list[GoogleStack] = []
    yield made
    for stack in made:
        stop(stack)


def start_with_one_channel(tmp_path: Path) -> GoogleStack:
    """A first run that watches bob's calendar as channel chan-1 (token tok-1) for 7 days."""
    return start(
        tmp_path,
        [watch_answer("chan-1", "res-1", days=7), ok(events_page([], next_sync="s1"))],
        ids=["chan-1"],
        tokens=["tok-1"],
    )


def channels(stack: GoogleStack) -> list[StoredPush]:
    return stack.service.store.push_subscriptions("google")


def test_a_restart_reuses_the_stored_channel_without_a_new_watch(
    tmp_path: Path, running: list[GoogleStack]
) -> None:
    first = start_with_one_channel(tmp_path)
    assert [(c.remote_id, c.resource_id, c.account) for c in channels(first)] == [
        ("chan-1", "res-1", BOB.email)
    ]
    stop(first)  # a clean shutdown stops nothing
    assert first.calls()[2:] == []

    second = start(
        tmp_path,
        [ok(events_page([], next_sync="s2")), ok(events_page([], next_sync="s3"))],
        ids=["chan-2"],
        tokens=["tok-2"],
        days=2,
    )
    running.append(second)
    assert second.calls() == ["/calendar/v3/calendars/primary/events"]  # no events.watch
    assert second.hub.active == {SOURCE}
    assert second.post(google_headers("chan-1", "tok-1", "exists", "res-1")).status_code == 200
    assert second.hub.wait_idle(WAIT)
    assert len(second.calls()) == 2  # the old channel's notification ran the sync
    assert second.post(google_headers("chan-1", "tok-x", "exists", "res-1")).status_code == 403


def test_an_expired_stored_channel_is_replaced_without_a_stop(
    tmp_path: Path, running: list[GoogleStack]
) -> None:
    first = start_with_one_channel(tmp_path)
    stop(first)
    second = start(
        tmp_path,
        [watch_answer("chan-2", "res-2", days=15), ok(events_page([], next_sync="s2"))],
        ids=["chan-2"],
        tokens=["tok-2"],
        days=8,
    )
    running.append(second)
    assert second.calls() == [
        "/calendar/v3/calendars/primary/events/watch",
        "/calendar/v3/calendars/primary/events",
    ]
    assert [c.remote_id for c in channels(second)] == ["chan-2"]


def test_a_channel_due_at_restart_is_renewed_and_the_old_one_stopped_and_forgotten(
    tmp_path: Path, running: list[GoogleStack]
) -> None:
    first = start_with_one_channel(tmp_path)
    stop(first)
    second = start(
        tmp_path,
        [watch_answer("chan-2", "res-2", days=13), STOPPED, ok(events_page([], next_sync="s2"))],
        ids=["chan-2"],
        tokens=["tok-2"],
        days=6.5,
    )
    running.append(second)
    assert second.calls()[:2] == [
        "/calendar/v3/calendars/primary/events/watch",
        "/calendar/v3/channels/stop",
    ]
    assert [(c.remote_id, c.token) for c in channels(second)] == [("chan-2", "tok-2")]


def test_a_removed_sources_channel_is_stopped_and_forgotten(
    tmp_path: Path, running: list[GoogleStack]
) -> None:
    first = start_with_one_channel(tmp_path)
    stop(first)
    # bob's primary calendar left the config; his "team" calendar came in
    stopper, stop_http, _ = make_source([STOPPED], mailbox=BOB_MAILBOX)
    second = start(
        tmp_path,
        [watch_answer("chan-2", "res-2", days=7), ok(events_page([], next_sync="s2"))],
        ids=["chan-2"],
        tokens=["tok-2"],
        days=1,
        calendar_id="team",
        stopper=[stopper],
    )
    running.append(second)
    assert [path(stop_http, i) for i in range(len(stop_http.request_sequence))] == [
        "/calendar/v3/channels/stop"
    ]
    assert json.loads(stop_http.request_sequence[0][2]) == {"id": "chan-1", "resourceId": "res-1"}
    assert [(c.remote_id, c.source_id) for c in channels(second)] == [("chan-2", f"{SOURCE}/team")]


def test_a_failed_stop_of_a_replaced_channel_is_retried_at_the_next_upkeep(
    tmp_path: Path, running: list[GoogleStack], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    denied = ({"status": "403", "content-type": "application/json"}, '{"error": {"code": 403}}')
    stack = start(
        tmp_path,
        [
            watch_answer("chan-1", "res-1", days=7),
            ok(events_page([], next_sync="s1")),
            watch_answer("chan-2", "res-2", days=13),
            denied,  # channels.stop of chan-1 fails,
            denied,  # ... again when retired at the end of that upkeep,
            STOPPED,  # ... and succeeds at the next upkeep
        ],
        ids=["chan-1", "chan-2"],
        tokens=["tok-1", "tok-2"],
    )
    running.append(stack)
    stack.clock.advance(timedelta(days=6, minutes=1))
    stack.hub.maintain()
    assert stack.hub.wait_idle(WAIT)
    assert {c.remote_id for c in channels(stack)} == {"chan-1", "chan-2"}
    assert stack.hub.active == {SOURCE}  # the new channel is live all the same
    stack.hub.maintain()
    assert stack.hub.wait_idle(WAIT)
    assert stack.calls()[2:] == [
        "/calendar/v3/calendars/primary/events/watch",
        "/calendar/v3/channels/stop",
        "/calendar/v3/channels/stop",
        "/calendar/v3/channels/stop",
    ]
    assert [c.remote_id for c in channels(stack)] == ["chan-2"]
    assert "tok-1" not in caplog.text and "tok-2" not in caplog.text
