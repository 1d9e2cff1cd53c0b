"""EWS calls per user per hour for the Exchange connector when polling and nothing changes.

Runs the real connector (exchangelib, NTLM configuration, fixed Exchange 2016
version, no autodiscover) against the SOAP double from the tests, answered via
requests_mock, polling every 60 s for one virtual hour, and counts SOAP
operations. The connector has no push mode (EWS streaming/pull subscriptions
are not implemented), so only polling is measured. Time is virtual; nothing sleeps.
Run: ``.venv/bin/python benchmarks/calls_ews.py``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "connectors"))

import requests_mock  # noqa: E402
from ews_doubles import ENDPOINT, EwsServer, calendar_item  # noqa: E402

from connectors.calendars.base import Mailbox, SyncWindow  # noqa: E402
from connectors.calendars.ews.client import make_client  # noqa: E402
from connectors.calendars.ews.config import EwsConnectionConfig  # noqa: E402
from connectors.calendars.ews.source import EwsCalendarSource  # noqa: E402

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def run(events: int) -> Counter[str]:
    os.environ.setdefault("CALREF_BENCH_EWS_PASSWORD", "benchmark-only")
    server = EwsServer(
        items=[
            calendar_item(
                f"e{i}",
                f"2026-01-0{5 + i % 3}T1{i % 8}:00:00Z",
                f"2026-01-0{5 + i % 3}T1{i % 8}:30:00Z",
            )
            for i in range(events)
        ]
    )
    conn = EwsConnectionConfig(
        service_endpoint=ENDPOINT, username="EXAMPLE\\svc", password_env="CALREF_BENCH_EWS_PASSWORD"
    )
    mailbox = Mailbox("alice", "alice@example.se", ("example.se",))
    now = T0
    with requests_mock.Mocker() as mocker:
        mocker.post(ENDPOINT, text=server)
        client = make_client(conn, mailbox.email, mailbox.timezone, sleep=lambda s: None)
        source = EwsCalendarSource(client, mailbox)
        state = None
        for _ in range(60):
            state = source.sync(SyncWindow(now, now + timedelta(days=7)), state).state
            now += timedelta(seconds=60)
    return Counter(server.operations)


def main() -> None:
    for events in (8, 0):
        calls = run(events)
        print(
            f"polling every 60 s, {events} events in the window: {sum(calls.values())} "
            f"calls/user/h (floor: 60 = one call per poll) {dict(calls)}"
        )
    print(
        "push: not implemented for EWS (streaming subscriptions would need one held "
        "connection per mailbox)"
    )


if __name__ == "__main__":
    main()
