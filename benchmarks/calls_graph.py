"""Graph API calls per user per hour when nothing changes, polling vs push.

Runs the real connector (httpx + MSAL) against the test double in
tests/connectors/graph_doubles.py for one mailbox and one simulated hour on a
virtual clock (no sleeps), and prints the calls per user per hour for each
mode next to the floor it is compared with.

    .venv/bin/python benchmarks/calls_graph.py
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "connectors")]

import httpx  # noqa: E402
import respx  # noqa: E402
from graph_doubles import CLIENT_ID, TENANT, FakeGraph, event_json  # noqa: E402

from connectors.calendars.base import Mailbox, SyncWindow  # noqa: E402
from connectors.calendars.graph import GraphCalendar, GraphConnection, build_source  # noqa: E402
from connectors.calendars.graph_push import SubscriptionManager  # noqa: E402
from connectors.secrets import Secret  # noqa: E402

BOX = "alice@example.se"
HOUR = timedelta(hours=1)
POLL = timedelta(seconds=60)
SAFETY_POLL = timedelta(minutes=60)  # push mode still runs a delta now and then


def run() -> None:
    os.environ.setdefault("CALREF_BENCH_GRAPH_SECRET", "benchmark-only")
    connection = GraphConnection(
        tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="CALREF_BENCH_GRAPH_SECRET"
    )
    start = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
    window = SyncWindow(start - timedelta(days=1), start + timedelta(days=14))

    fake = FakeGraph()
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        for n in range(20):
            fake.put(BOX, event_json(f"AAMkBench{n:02d}="))
        source = build_source(
            connection,
            GraphCalendar(),
            Mailbox("alice", BOX),
            http=httpx.Client(),
            sleep=lambda _: None,
        )
        # polling: the initial window sync, then one delta call per minute
        now, state = start, source.sync(window, None).state
        base = len(fake.graph_requests)
        while now < start + HOUR:
            now += POLL
            state = source.sync(window, state).state
        polling = len(fake.graph_requests) - base
        print(
            f"polling: {polling} calls/user/h (floor: {HOUR // POLL} = one call per poll; "
            f"initial sync of 20 events: {base} calls; token requests: {fake.token_requests})"
        )

        # push: subscription create (+ renewals when due), no notifications, safety delta
        clock_now = [start]
        manager = SubscriptionManager(
            source.client,  # type: ignore[attr-defined]
            notification_url="https://calref.example.se/graph/notify",
            lifecycle_url="https://calref.example.se/graph/lifecycle",
            client_state=Secret("bench-state"),
            clock=lambda: clock_now[0],
        )
        before = len(fake.graph_requests)
        manager.ensure([BOX])
        next_safety = start + SAFETY_POLL
        while clock_now[0] < start + HOUR:
            clock_now[0] += POLL
            manager.maintain()
            if clock_now[0] >= next_safety:
                state = source.sync(window, state).state
                next_safety += SAFETY_POLL
        push = len(fake.graph_requests) - before
        lifetime_h = manager.lifetime / HOUR
        renew_h = (manager.lifetime - manager.renew_before) / HOUR
        print(
            f"push:    {push} calls/user/h in the first hour = 1 subscription create + "
            f"{push - 1} safety delta (floor: 1 safety delta/h; steady state "
            f"{1 + 1 / renew_h:.3f} with one renewal every {renew_h:.0f} h of a "
            f"{lifetime_h:.0f} h subscription)"
        )


if __name__ == "__main__":
    run()
