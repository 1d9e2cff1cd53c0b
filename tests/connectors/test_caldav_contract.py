"""The CalDAV source meets the calendar source contract (``source_contract``) on Radicale.

Each event is one calendar object resource on a real Radicale 3 server
(``radicale_server``); a removed occurrence is an EXDATE on the series'
resource, which the sync-token increment re-expands (its other occurrences come
again, unchanged). An expired state is a sync token the server does not know,
which Radicale refuses (403 ``DAV:valid-sync-token``): ``SyncStateExpired``.
Throttling is a 429 with ``Retry-After`` from the WSGI layer in front of
Radicale, waited out in-line. A malformed answer is a 207 that is not XML: the
``caldav`` package reads such a PROPFIND as "no properties", and the REPORT
after it fails.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from caldav_ics import meeting_ics, series_ics
from radicale_server import CalendarWriter, Fault, RadicaleServer
from source_contract import MAILBOX, THROTTLE_RETRIES, CalendarSourceContract, Meeting, Series

from connectors.calendars.base import CalendarSource
from connectors.calendars.caldav.source import CalDAVSource

_names = itertools.count()


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    with RadicaleServer() as server:
        yield server


class TestCalDAVSource(CalendarSourceContract):
    incremental = True
    resyncs_expired_state = False
    waits_out_throttling = True

    @pytest.fixture(autouse=True)
    def _server(self, radicale: RadicaleServer) -> None:
        self.server = radicale
        radicale.faults.clear()

    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        self.calendar = CalendarWriter(self.server, f"/alice/contract{next(_names)}/").create()
        self.removed: dict[str, list[datetime]] = {}
        for meeting in meetings:
            self.edit(meeting)
        for one in series:
            self.calendar.put(f"{one.name}.ics", series_ics(one))
        return CalDAVSource(
            calendar_url=self.calendar.url,
            mailbox=MAILBOX,
            throttle_retries=THROTTLE_RETRIES,
            sleep=self.sleeps.append,
        )

    def edit(self, meeting: Meeting) -> None:
        self.calendar.put(f"{meeting.name}.ics", meeting_ics(meeting))

    def remove_occurrence(self, series: Series, start: datetime) -> None:
        removed = self.removed.setdefault(series.name, [])
        removed.append(start)
        self.calendar.put(f"{series.name}.ics", series_ics(series, removed))

    def expire_state(self, state: str) -> str:
        data = json.loads(state)
        assert data["token"].startswith("http://radicale.org/ns/sync/")
        data["token"] = "http://radicale.org/ns/sync/" + "0" * 64  # never issued
        return json.dumps(data)

    def throttle(self, retry_after: int, times: int) -> None:
        busy = Fault("429 Too Many Requests", [("Retry-After", str(retry_after))])
        self.server.fail_next(*[busy] * times)

    def answer_malformed(self) -> None:
        xml = [("Content-Type", "application/xml; charset=utf-8")]
        page = Fault("207 Multi-Status", xml, b"<html>proxy error</html>")
        self.server.fail_next(*[page] * 10)  # more than one sync sends
