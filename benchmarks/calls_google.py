"""API calls per user per hour for the Google connector: polling vs push, with nothing changing.

Runs the real connector (google-api-python-client with the shipped discovery
document) against an in-process double of the Calendar API that answers
``events.list`` (full and syncToken), ``events.watch`` and ``channels.stop``,
and counts requests. Time is a virtual clock; nothing sleeps.
Run: ``.venv/bin/python benchmarks/calls_google.py``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.google.client import make_client
from connectors.calendars.google.config import GoogleCalendarConfig, GoogleConnectionConfig
from connectors.calendars.google.push import GoogleChannelManager
from connectors.calendars.google.source import GoogleCalendarSource
from connectors.clock import VirtualClock

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ITEMS = [
    {
        "kind": "calendar#event",
        "id": f"ev{i}",
        "status": "confirmed",
        "summary": f"Meeting {i}",
        "iCalUID": f"ev{i}@google.com",
        "organizer": {"email": "alice@example.se", "self": True},
        "start": {"dateTime": f"2026-01-0{5 + i % 3}T1{i % 8}:00:00+01:00"},
        "end": {"dateTime": f"2026-01-0{5 + i % 3}T1{i % 8}:30:00+01:00"},
        "eventType": "default",
    }
    for i in range(8)
]


class FakeCalendarApi:
    """An httplib2-like object answering the Calendar v3 calls the connector makes."""

    def __init__(self, clock: VirtualClock) -> None:
        self.calls: Counter[str] = Counter()
        self.clock = clock
        self.follow_redirects = True

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        redirections: int = 1,
        connection_type: Any = None,
    ) -> tuple[Any, bytes]:
        import httplib2

        url = urlparse(uri)
        query = parse_qs(url.query)
        if url.path.endswith("/events/watch"):
            self.calls["events.watch"] += 1
            sent = json.loads(body)
            expires = self.clock.now() + timedelta(seconds=int(sent["params"]["ttl"]))
            answer: dict[str, Any] = {
                "kind": "api#channel",
                "id": sent["id"],
                "resourceId": "r1",
                "expiration": str(int(expires.timestamp() * 1000)),
            }
        elif url.path.endswith("/channels/stop"):
            self.calls["channels.stop"] += 1
            return httplib2.Response({"status": "204"}), b""
        else:
            incremental = "syncToken" in query
            self.calls["events.list (sync token)" if incremental else "events.list (window)"] += 1
            answer = {
                "kind": "calendar#events",
                "items": [] if incremental else ITEMS,
                "nextSyncToken": "tok",
            }
        return httplib2.Response({"status": "200"}), json.dumps(answer).encode()


def run(mode: str, hours: int = 1) -> Counter[str]:
    clock = VirtualClock(T0)
    api = FakeCalendarApi(clock)
    mailbox = Mailbox("alice", "alice@example.se", ("example.se",))
    connection = GoogleConnectionConfig(service_account_env="UNUSED")
    client = make_client(connection, mailbox.email, http=api, sleep=lambda s: None)
    source = GoogleCalendarSource(client, GoogleCalendarConfig(), mailbox)
    window = SyncWindow(T0, T0 + timedelta(days=7))
    state = source.sync(window, None).state
    if mode == "polling":
        for _ in range(hours * 60 - 1):
            clock.advance(timedelta(seconds=60))
            state = source.sync(window, state).state
        return api.calls
    channels = GoogleChannelManager("https://calref.example.se/hooks/google", clock=clock)
    for _ in range(hours * 60):  # the scheduler checks renewals every minute; no notifications
        channels.ensure("alice", source)
        clock.advance(timedelta(seconds=60))
    return api.calls


def main() -> None:
    polling = run("polling")
    print(
        f"polling every 60 s: {sum(polling.values())} calls/user/h "
        f"(floor: 60 = one call per poll) {dict(polling)}"
    )
    push = run("push")
    print(
        f"push, first hour: {sum(push.values())} calls/user/h "
        f"(floor: 2 = one window read + one events.watch) {dict(push)}"
    )
    week = run("push", hours=24 * 14)
    per_hour = (sum(week.values()) - 1) / (24 * 14)
    print(
        f"push, steady state over 14 days: {per_hour:.4f} calls/user/h "
        f"(floor: 2 per renewal = new watch + channels.stop every 6 days) {dict(week)}"
    )


if __name__ == "__main__":
    main()
