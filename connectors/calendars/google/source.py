"""Google Workspace calendars through the Calendar API v3: the source and ``build_source``.

A service account with domain-wide delegation reads each user's calendar
(``events.list`` with ``singleEvents=true``; requests, retries and errors in
``connectors/calendars/google/client.py``, each item becomes a ``CalendarEvent`` in
``mapping.py``): the first call lists the window (``timeMin``/``timeMax``, paged
with ``pageToken``) and keeps the final page's ``nextSyncToken``; later calls send
only ``syncToken`` (Google refuses it together with
``timeMin``/``timeMax``/``orderBy``/``q``...) and get the changes for the whole
calendar, which are filtered back to the window here. The state string records the
span it was made for; a window outside that span (the next day) starts over with a
full window sync. A ``410`` (``fullSyncRequired``) becomes ``SyncStateExpired``.
See docs/calendars-google.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.google.client import GoogleClient, make_client
from connectors.calendars.google.config import GoogleCalendarConfig, GoogleConnectionConfig
from connectors.calendars.google.mapping import EventMapper
from connectors.calendars.limits import CalendarLimits
from rules.errors import CalendarError, CalrefError
from rules.model import CalendarEvent

STATE_VERSION = 1


def build_source(
    connection: GoogleConnectionConfig,
    calendar: GoogleCalendarConfig,
    mailbox: Mailbox,
    *,
    limits: CalendarLimits | None = None,
    base_dir: Path | None = None,
) -> GoogleCalendarSource:
    """The source for ``mailbox``'s calendar, acting as the user with the service account.

    ``limits`` and ``base_dir`` are not used: Google answers JSON page by page, and a
    Google entry names no file.
    """
    return GoogleCalendarSource(make_client(connection, mailbox.email), calendar, mailbox)


@dataclass(frozen=True)
class _State:
    span_start: datetime
    span_end: datetime
    sync_token: str | None

    def dump(self) -> str:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "span": [self.span_start.isoformat(), self.span_end.isoformat()],
                "sync_token": self.sync_token,
            }
        )

    @classmethod
    def load(cls, text: str) -> _State | None:
        """The state, or None when it is unreadable (then a full sync starts over)."""
        try:
            data = json.loads(text)
            if data.get("v") != STATE_VERSION:
                return None
            start, end = (datetime.fromisoformat(s) for s in data["span"])
            token = data.get("sync_token")
            if start.tzinfo is None or end.tzinfo is None:
                return None
            return cls(start, end, token if isinstance(token, str) else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def day_span(window: SyncWindow) -> tuple[datetime, datetime]:
    """The whole UTC days covering the window: what a full sync fetches and a state covers."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise CalrefError("sync window: start and end must be timezone-aware")
    start = window.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end_utc = window.end.astimezone(UTC)
    end = end_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    if end < end_utc:
        end += timedelta(days=1)
    return start, end


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GoogleCalendarSource:
    """One user's Google calendar as a ``CalendarSource``.

    ``client`` may be any ``GoogleClient`` (tests and benchmarks give one made with
    their own transport, see ``make_client``).
    """

    def __init__(
        self, client: GoogleClient, calendar: GoogleCalendarConfig, mailbox: Mailbox
    ) -> None:
        self.client = client
        self._mailbox = mailbox
        self._calendar_id = calendar.calendar_id
        suffix = "" if calendar.calendar_id == "primary" else f"/{calendar.calendar_id}"
        self._id = f"google:{mailbox.email}{suffix}"
        self._mapper = EventMapper(self._id, mailbox)

    @property
    def id(self) -> str:
        return self._id

    @property
    def calendar_id(self) -> str:
        return self._calendar_id

    @property
    def service(self) -> Any:
        return self.client.service

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        span = day_span(window)
        previous = _State.load(state) if state else None
        if previous is None or previous.sync_token is None:
            return self._full(span)
        if (previous.span_start, previous.span_end) != span:  # the window moved to another day
            return self._full(span)
        return self._incremental(previous)

    def _overlaps(self, event: CalendarEvent, start: datetime, end: datetime) -> bool:
        return self._mapper.bounds(event.end) > start and self._mapper.bounds(event.start) < end

    def _full(self, span: tuple[datetime, datetime]) -> SyncResult:
        params = {"timeMin": _rfc3339(span[0]), "timeMax": _rfc3339(span[1])}
        events: dict[str, CalendarEvent] = {}
        token: str | None = None
        for page in self._pages(params):
            for item in page.get("items") or ():
                if item.get("status") == "cancelled":
                    events.pop(str(item.get("id")), None)
                    continue
                event = self._mapper.event(item)
                if self._overlaps(event, *span):
                    events[event.key] = event
            token = page.get("nextSyncToken", token)
        state = _State(span[0], span[1], token).dump()
        return SyncResult(events=list(events.values()), full=True, state=state)

    def _incremental(self, previous: _State) -> SyncResult:
        upserts: dict[str, CalendarEvent] = {}
        removed: dict[str, None] = {}
        token = previous.sync_token
        assert token is not None
        new_token: str | None = None
        for page in self._pages({"syncToken": token}):
            for item in page.get("items") or ():
                key = item.get("id")
                if not isinstance(key, str) or not key:
                    raise CalendarError(self._id, "a changed event has no id")
                if item.get("status") == "cancelled":
                    upserts.pop(key, None)
                    removed[key] = None
                    continue
                event = self._mapper.event(item)
                if self._overlaps(event, previous.span_start, previous.span_end):
                    upserts[key] = event
                    removed.pop(key, None)
                else:  # moved out of the span: the caller may know it from before
                    upserts.pop(key, None)
                    removed[key] = None
            new_token = page.get("nextSyncToken", new_token)
        state = _State(previous.span_start, previous.span_end, new_token or token).dump()
        return SyncResult(
            events=list(upserts.values()), full=False, state=state, removed=list(removed)
        )

    def _pages(self, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        page_token: str | None = None
        while True:
            query: dict[str, Any] = {
                "calendarId": self._calendar_id,
                "singleEvents": True,
                "maxResults": self.client.page_size,
                **params,
            }
            if page_token:
                query["pageToken"] = page_token
            page = self.execute(self.service.events().list(**query))
            if not isinstance(page, dict):
                raise CalendarError(
                    self._id, "events.list answered with something not a JSON object"
                )
            yield page
            page_token = page.get("nextPageToken")
            if not page_token:
                return

    def execute(self, request: Any) -> Any:
        """Run one request of this calendar's (``GoogleClient.execute``, errors named by it)."""
        return self.client.execute(request, self._id)
