"""The ICS file and URL sources meet the calendar source contract (``source_contract``).

ICS has no delta: every real change is answered in full, and the state only
tells "nothing changed" (the file's hash, the feed's ETag). It has no sync
state a server could forget either. The file has no server at all; the feed is
an HTTP double (``IcsFeed``) that serves the calendar with an ETag, answers
``If-None-Match`` with 304 and can throttle with 429 ``Retry-After``, which the
URL source raises at once for the service to wait out before its next poll.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from caldav_ics import calendar_ics
from source_contract import MAILBOX, CalendarSourceContract, Meeting, Series

from connectors.calendars.base import CalendarSource
from connectors.calendars.ics.source import IcsFileSource, IcsUrlSource

NOT_A_CALENDAR = b"<html><body>Please sign in</body></html>"


class IcsCalendar:
    """The calendar's events, written out as one iCalendar text."""

    def __init__(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> None:
        self.meetings = {m.name: m for m in meetings}
        self.series = list(series)
        self.removed: dict[str, list[datetime]] = {}

    def text(self) -> bytes:
        return calendar_ics(self.meetings.values(), self.series, self.removed).encode()


class IcsFeed:
    """An ICS feed over HTTP (an httpx ``MockTransport`` handler) with ETag validators."""

    def __init__(self) -> None:
        self.body = b""
        self.faults: list[httpx.Response] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            return self.faults.pop(0)
        etag = f'"{hashlib.sha256(self.body).hexdigest()[:16]}"'
        if request.headers.get("If-None-Match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        headers = {"ETag": etag, "Content-Type": "text/calendar; charset=utf-8"}
        return httpx.Response(200, content=self.body, headers=headers)


class TestIcsFileSource(CalendarSourceContract):
    incremental = False
    resyncs_expired_state = False
    waits_out_throttling = False

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.path = tmp_path / "alice.ics"

    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        self.calendar = IcsCalendar(meetings, series)
        self.path.write_bytes(self.calendar.text())
        return IcsFileSource(self.path, MAILBOX)

    def edit(self, meeting: Meeting) -> None:
        self.calendar.meetings[meeting.name] = meeting
        self.path.write_bytes(self.calendar.text())

    def remove_occurrence(self, series: Series, start: datetime) -> None:
        self.calendar.removed.setdefault(series.name, []).append(start)
        self.path.write_bytes(self.calendar.text())

    def expire_state(self, state: str) -> str:
        pytest.skip("an ICS file has no sync state to expire: its state is the file's hash")

    def throttle(self, retry_after: int, times: int) -> None:
        pytest.skip("ics files have no server")

    def answer_malformed(self) -> None:
        self.path.write_bytes(NOT_A_CALENDAR)


class TestIcsUrlSource(CalendarSourceContract):
    incremental = False
    resyncs_expired_state = False
    waits_out_throttling = False

    @pytest.fixture(autouse=True)
    def _feed(self) -> None:
        self.feed = IcsFeed()

    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        self.calendar = IcsCalendar(meetings, series)
        self.feed.body = self.calendar.text()
        client = httpx.Client(transport=httpx.MockTransport(self.feed))
        return IcsUrlSource("https://cal.example.se/alice/basic.ics", MAILBOX, client=client)

    def edit(self, meeting: Meeting) -> None:
        self.calendar.meetings[meeting.name] = meeting
        self.feed.body = self.calendar.text()

    def remove_occurrence(self, series: Series, start: datetime) -> None:
        self.calendar.removed.setdefault(series.name, []).append(start)
        self.feed.body = self.calendar.text()

    def expire_state(self, state: str) -> str:
        pytest.skip("an ICS feed has no sync state to expire: its state is the ETag and hash")

    def throttle(self, retry_after: int, times: int) -> None:
        busy = httpx.Response(429, headers={"Retry-After": str(retry_after)})
        self.feed.faults.extend([busy] * times)

    def answer_malformed(self) -> None:
        self.feed.body = NOT_A_CALENDAR  # a proxy's sign-in page
