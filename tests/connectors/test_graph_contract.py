"""The Microsoft Graph source meets the calendar source contract (``source_contract``).

The calendar is the stateful calendarView delta double ``FakeGraph``
(``graph_doubles``), mounted with respx so the real httpx and MSAL code runs.
A series is a master with daily occurrences (sent sparse in a delta round and
derived from the master); a removed occurrence is a deleted occurrence, which
the next delta round sends as ``@removed``. An expired state is a delta token
the server evicted (410 ``SyncStateNotFound``): the source resyncs the window
itself. Throttling is a 429 ``ApplicationThrottled`` with ``Retry-After``,
waited out in-line; a malformed answer is a 200 that is not JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import httpx
import pytest
import respx
from graph_doubles import FakeGraph, event_json, graph_error, series_json
from graph_fixture import BOX, graph_source
from source_contract import THROTTLE_RETRIES, CalendarSourceContract, Meeting, Series

from connectors.calendars.base import CalendarSource


def graph_id(name: str) -> str:
    """An immutable event id as Graph shapes them (base64-ish, ending in ``=``)."""
    return f"AAMkAGI2TG{name.capitalize()}AAA="


def wall(moment: datetime) -> str:
    """A Graph ``dateTime`` in UTC (``Prefer: outlook.timezone="UTC"``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


class TestGraphSource(CalendarSourceContract):
    incremental = True
    resyncs_expired_state = True
    waits_out_throttling = True

    @pytest.fixture(autouse=True)
    def _graph(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        self.monkeypatch = monkeypatch
        with respx.mock(assert_all_called=False) as router:
            self.fake = FakeGraph()
            self.fake.mount(router)
            yield

    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        for meeting in meetings:
            self.edit(meeting)
        for one in series:
            first = one.first.astimezone(UTC).replace(tzinfo=None)
            items = series_json(graph_id(one.name), one.subject, first, one.count, one.length)
            self.fake.put_all(BOX, items)
        return graph_source(
            self.monkeypatch, sleep=self.sleeps.append, page_size=3, max_retries=THROTTLE_RETRIES
        )

    def edit(self, meeting: Meeting) -> None:
        start, end = wall(meeting.start), wall(meeting.end)
        self.fake.put(BOX, event_json(graph_id(meeting.name), meeting.subject, start, end))

    def remove_occurrence(self, series: Series, start: datetime) -> None:
        n = series.starts().index(start)
        self.fake.delete(BOX, f"{graph_id(series.name).rstrip('=')}_{n:03d}=")

    def expire_state(self, state: str) -> str:
        self.fake.evict_tokens()
        return state

    def throttle(self, retry_after: int, times: int) -> None:
        busy = graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            **{"Retry-After": str(retry_after)},
        )
        self.fake.throttle_next.extend([busy] * times)

    def answer_malformed(self) -> None:
        page = httpx.Response(200, text="<html>proxy error</html>")
        self.fake.throttle_next.extend([page] * 10)  # more than one sync sends
