"""The Google Calendar source meets the calendar source contract (``source_contract``).

The calendar is ``GoogleCalendarServer`` (``gcal_doubles``), a stateful
``events.list`` behind the real google-api-python-client. A series is listed as
its instances (``singleEvents=true``); a removed occurrence is a cancelled
instance, which the next ``syncToken`` listing sends as ``status: cancelled``.
An expired state is a sync token the server dropped (410 ``fullSyncRequired``):
``SyncStateExpired``. Throttling is a 429 ``rateLimitExceeded`` with
``Retry-After`` (the library's own retries are off), waited out in-line; a
malformed answer is a 200 that is not JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from gcal_doubles import (
    GoogleCalendarServer,
    error_body,
    event,
    instance,
    instance_id,
    local,
    status,
)
from source_contract import MAILBOX, THROTTLE_RETRIES, CalendarSourceContract, Meeting, Series

from connectors.calendars.base import CalendarSource
from connectors.calendars.google.client import make_client
from connectors.calendars.google.config import GoogleCalendarConfig, GoogleConnectionConfig
from connectors.calendars.google.source import GoogleCalendarSource


def google_id(name: str) -> str:
    """An event id as Google allows them (base32hex characters): the name in hex."""
    return name.encode().hex()


class TestGoogleSource(CalendarSourceContract):
    incremental = True
    resyncs_expired_state = False
    waits_out_throttling = True

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        self.server = GoogleCalendarServer()
        yield

    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        for meeting in meetings:
            self.edit(meeting)
        for one in series:
            for start in one.starts():
                end = start + one.length
                item = instance(google_id(one.name), start, local(start), local(end))
                self.server.put(dict(item, summary=one.subject))
        connection = GoogleConnectionConfig(
            service_account_env="UNUSED_IN_TESTS",
            page_size=3,
            library_retries=0,
            throttle_retries=THROTTLE_RETRIES,
        )
        client = make_client(connection, MAILBOX.email, http=self.server, sleep=self.sleeps.append)
        return GoogleCalendarSource(client, GoogleCalendarConfig(), MAILBOX)

    def edit(self, meeting: Meeting) -> None:
        start, end = local(meeting.start), local(meeting.end)
        self.server.put(event(google_id(meeting.name), start, end, summary=meeting.subject))

    def remove_occurrence(self, series: Series, start: datetime) -> None:
        self.server.cancel(instance_id(google_id(series.name), start))

    def expire_state(self, state: str) -> str:
        self.server.evict_tokens()
        return state

    def throttle(self, retry_after: int, times: int) -> None:
        busy = status(
            429,
            error_body(429, "rateLimitExceeded", "Rate Limit Exceeded"),
            **{"retry-after": str(retry_after)},
        )
        self.server.answers.extend([busy] * times)

    def answer_malformed(self) -> None:
        page = ({"status": "200", "content-type": "text/html"}, "<html>proxy error</html>")
        self.server.answers.extend([page] * 10)  # more than one sync sends
