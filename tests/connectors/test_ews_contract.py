"""The Exchange (EWS) source meets the calendar source contract (``source_contract``).

The mailbox is the SOAP double ``EwsServer`` (``ews_doubles``) behind the real
exchangelib, over requests_mock. EWS has no occurrence-level delta, so every
sync reads the whole window (FindItem with a CalendarView, then GetItem) and
answers in full; its state only records the window, so there is nothing a
server could expire. A series is its occurrences (one UID, a RecurrenceId
each); a removed occurrence is simply no longer in the view. Throttling is
Exchange's ``ErrorServerBusy`` fault, whose ``BackOffMilliseconds`` is EWS'
Retry-After, waited out in-line; a malformed answer is a 200 that is not SOAP.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from ews_doubles import calendar_item, soap_fault
from ews_fixture import Harness, harness
from source_contract import THROTTLE_RETRIES, WINDOW, CalendarSourceContract, Meeting, Series

from connectors.calendars.base import CalendarSource
from rules.errors import CalendarError, is_retryable


def soap_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestEwsSource(CalendarSourceContract):
    incremental = False
    resyncs_expired_state = False
    waits_out_throttling = True

    @pytest.fixture(autouse=True)
    def _server(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        for ews in harness(monkeypatch):
            self.ews: Harness = ews
            self.items: dict[str, str] = {}
            yield

    def _publish(self) -> None:
        self.ews.server.items = list(self.items.values())

    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        for meeting in meetings:
            self.items[meeting.name] = calendar_item(
                meeting.name,
                soap_time(meeting.start),
                soap_time(meeting.end),
                subject=meeting.subject,
            )
        for one in series:
            for n, start in enumerate(one.starts()):
                self.items[f"{one.name}{n}"] = calendar_item(
                    f"{one.name}{n}",
                    soap_time(start),
                    soap_time(start + one.length),
                    subject=one.subject,
                    uid=f"{one.name.upper()}-SERIES-UID",
                    item_type="Occurrence",
                    recurrence_id=soap_time(start),
                )
        self._publish()
        self.ews.sleeps = self.sleeps
        source: CalendarSource = self.ews.source(throttle_retries=THROTTLE_RETRIES)
        return source

    def edit(self, meeting: Meeting) -> None:
        self.items[meeting.name] = calendar_item(
            meeting.name, soap_time(meeting.start), soap_time(meeting.end), subject=meeting.subject
        )
        self._publish()

    def remove_occurrence(self, series: Series, start: datetime) -> None:
        del self.items[f"{series.name}{series.starts().index(start)}"]
        self._publish()

    def expire_state(self, state: str) -> str:
        pytest.skip("EWS keeps no sync state: every sync reads the whole window")

    def throttle(self, retry_after: int, times: int) -> None:
        busy = soap_fault("ErrorServerBusy", "The server is busy.", retry_after * 1000)
        for _ in range(times):
            self.ews.server.push("FindItem", 500, busy)

    def answer_malformed(self) -> None:
        for _ in range(10):  # more than one sync sends
            self.ews.server.push("FindItem", 200, "<html>proxy error</html>")


@pytest.fixture
def ews(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    yield from harness(monkeypatch)


def test_an_answer_that_is_not_soap_says_so_and_not_that_the_server_is_unreachable(
    ews: Harness,
) -> None:
    for _ in range(10):
        ews.server.push("FindItem", 200, "<html>proxy error</html>")
    with pytest.raises(CalendarError) as caught:
        ews.source().sync(WINDOW, None)
    message = str(caught.value)
    assert "not EWS SOAP" in message and "cannot reach" not in message
    assert not is_retryable(caught.value)
