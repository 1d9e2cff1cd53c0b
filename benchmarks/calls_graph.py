"""Graph API calls per user: per hour when nothing changes (polling vs push), a first sync
of a daily series, and a day across 00:00 UTC.

Runs the real connector (httpx + MSAL) against the test double in
tests/connectors/graph_doubles.py (which sends occurrences in the sparse shape
the real calendarView delta sends) for one mailbox on a virtual clock (no
sleeps), and prints the calls next to the floor each is compared with.

    .venv/bin/python benchmarks/calls_graph.py
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "connectors")]

import httpx  # noqa: E402
import respx  # noqa: E402
from graph_doubles import CLIENT_ID, TENANT, FakeGraph, event_json, series_json  # noqa: E402

from connectors.calendars.base import Mailbox, SyncWindow  # noqa: E402
from connectors.calendars.graph.client import make_client  # noqa: E402
from connectors.calendars.graph.config import GraphCalendarConfig, GraphConnectionConfig  # noqa: E402
from connectors.calendars.graph.push import SubscriptionManager  # noqa: E402
from connectors.calendars.graph.source import GraphCalendarSource  # noqa: E402
from connectors.clock import VirtualClock  # noqa: E402
from connectors.secrets import Secret  # noqa: E402

BOX = "alice@example.se"
HOUR = timedelta(hours=1)
POLL = timedelta(seconds=60)
SAFETY_POLL = timedelta(minutes=60)  # push mode still runs a delta now and then


def window(now: datetime) -> SyncWindow:
    return SyncWindow(now - timedelta(days=1), now + timedelta(days=14))


def run() -> None:
    os.environ.setdefault("CALREF_BENCH_GRAPH_SECRET", "benchmark-only")
    connection = GraphConnectionConfig(
        tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="CALREF_BENCH_GRAPH_SECRET"
    )
    start = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)

    def new_source() -> Any:
        client = make_client(connection, http=httpx.Client(), sleep=lambda _: None)
        return GraphCalendarSource(client, GraphCalendarConfig(), Mailbox("alice", BOX))

    # a first sync of one series of 14 daily occurrences (sparse in the delta)
    series = FakeGraph()
    with respx.mock(assert_all_called=False) as router:
        series.mount(router)
        series.put_all(BOX, series_json("AAMkBenchSeries=", count=14))
        events = new_source().sync(window(start), None).events
        kinds = dict(series.calls())
        print(
            f"first sync of 14 daily occurrences: {len(series.graph_requests)} calls {kinds} "
            f"for {len(events)} events (floor: 1 delta page + 1 master; "
            "a GET per occurrence would be 15)"
        )

    fake = FakeGraph()
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        for n in range(20):
            fake.put(BOX, event_json(f"AAMkBench{n:02d}="))
        fake.put_all(BOX, series_json("AAMkBenchSeries=", count=14))
        source = new_source()
        # polling: the initial window sync, then one delta call per minute
        now, state = start, source.sync(window(start), None).state
        base = len(fake.graph_requests)
        while now < start + HOUR:
            now += POLL
            state = source.sync(window(now), state).state
        polling = len(fake.graph_requests) - base
        print(
            f"polling: {polling} calls/user/h (floor: {HOUR // POLL} = one call per poll; "
            f"initial sync of 20 events + a 14-day series: {base} calls; "
            f"token requests: {fake.token_requests})"
        )
        # a day of polling across 00:00 UTC: the window slides without a re-read
        mark = len(fake.graph_requests)
        day_end = now + timedelta(days=1)
        polls = 0
        while now < day_end:
            now += POLL
            polls += 1
            result = source.sync(window(now), state)
            state = result.state
            assert not result.full, "the sliding window caused a full re-read"
        kinds = dict(fake.calls(mark))
        print(
            f"24 h across 00:00 UTC: {len(fake.graph_requests) - mark} calls {kinds} "
            f"(floor: {polls} polls + 1 read of the added day; no full re-read)"
        )

        # push: subscription create (+ renewals when due), no notifications, safety delta
        push_start = now
        clock = VirtualClock(push_start)
        manager = SubscriptionManager(
            source.client,  # type: ignore[attr-defined]
            notification_url="https://calref.example.se/graph/notify",
            lifecycle_url="https://calref.example.se/graph/lifecycle",
            client_state=Secret("bench-state"),
            clock=clock,
        )
        before = len(fake.graph_requests)
        manager.ensure([BOX])
        next_safety = push_start + SAFETY_POLL
        while clock.now() < push_start + HOUR:
            clock.advance(POLL)
            manager.maintain()
            if clock.now() >= next_safety:
                result = source.sync(window(clock.now()), state)
                assert not result.full
                state = result.state
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
