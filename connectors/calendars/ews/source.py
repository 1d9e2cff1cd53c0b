"""Exchange Server on premises through EWS: the source and ``build_source``.

For on-premises Exchange Server only: EWS in Exchange Online is blocked by
default from 1 October 2026 and switched off on 1 April 2027 (use the Graph
connector there). A service account holding the ApplicationImpersonation role
(or delegate rights) reads each user's calendar with NTLM or Kerberos
(``connectors/calendars/ews/client.py``; each item becomes a ``CalendarEvent`` in
``mapping.py``).

Each sync reads the whole window again (one FindItem and one GetItem round trip).
EWS offers no occurrence-level delta (SyncFolderItems reports series masters only),
so every result is ``full=True``; the state only records the window. See
docs/calendars-ews.md.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.ews.client import EwsClient, make_client
from connectors.calendars.ews.config import EwsCalendarConfig, EwsConnectionConfig
from connectors.calendars.ews.mapping import EventMapper
from connectors.calendars.limits import CalendarLimits
from connectors.calendars.organizer import parse_address
from rules.errors import CalrefError
from rules.model import CalendarEvent


def build_source(
    connection: EwsConnectionConfig,
    calendar: EwsCalendarConfig,
    mailbox: Mailbox,
    *,
    limits: CalendarLimits | None = None,
    base_dir: Path | None = None,
) -> EwsCalendarSource:
    """The source for ``mailbox``'s Exchange calendar (``calendar.mailbox`` overrides the
    address); reads the service account's password.

    ``limits`` and ``base_dir`` are not used: Exchange answers typed items, and an
    EWS entry names no file.
    """
    address = calendar.mailbox or mailbox.email
    return EwsCalendarSource(make_client(connection, address, mailbox.timezone), mailbox)


class EwsCalendarSource:
    """The calendar of ``client``'s mailbox as a ``CalendarSource`` of ``mailbox``'s user
    (full window read on every sync).

    Another mailbox's calendar is never the user's own, whatever the entry says.
    """

    def __init__(self, client: EwsClient, mailbox: Mailbox) -> None:
        if parse_address(client.address) != parse_address(mailbox.email):
            mailbox = replace(mailbox, own_calendar=False)
        self.client = client
        self._mailbox = mailbox
        self._id = f"ews:{client.address}"
        self._mapper = EventMapper(self._id, mailbox)

    @property
    def id(self) -> str:
        return self._id

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        if window.start.tzinfo is None or window.end.tzinfo is None:
            raise CalrefError("sync window: start and end must be timezone-aware")
        events: dict[str, CalendarEvent] = {}
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
        for item in self.client.calendar_items(window.start, window.end, self._id):
            event = self._mapper.event(item)
            if self._bound(event.end) <= start or self._bound(event.start) >= end:
                continue  # CalendarView also returns items ending exactly at the window start
            events[event.key] = event
        window_state = {"v": 1, "window": [start.isoformat(), end.isoformat()]}
        return SyncResult(events=list(events.values()), full=True, state=json.dumps(window_state))

    def _bound(self, when: datetime | date) -> datetime:
        if isinstance(when, datetime):
            return when
        return datetime(when.year, when.month, when.day, tzinfo=self._mapper.zone).astimezone(UTC)
