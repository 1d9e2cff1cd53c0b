"""Turning an exchangelib ``CalendarItem`` into calref's ``CalendarEvent``.

``FIELDS`` are the item fields the server is asked for (GetItem), exactly those read
here. Times become aware UTC datetimes; all-day events become the local dates of the
mailbox (EWS sends local midnight as a UTC instant; end exclusive).
``LegacyFreeBusyStatus`` gives ``show_as`` (``NoData`` counts as busy),
``MyResponseType`` the user's response (``Organizer`` counts as accepted),
``Sensitivity`` private or confidential makes the event private, and the organizer's
kind comes from ``classify_organizer``, except that the mailbox owner's own meetings
are the user and an Exchange directory (``EX``) address is internal. See
docs/calendars-ews.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.calendars.base import Mailbox
from connectors.calendars.organizer import classify_organizer
from rules.errors import CalendarError
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs

FIELDS = (
    "subject",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "my_response_type",
    "sensitivity",
    "is_cancelled",
    "categories",
    "organizer",
    "uid",
    "recurrence_id",
    "original_start",
    "type",
)
SHOW_AS = {
    "Free": ShowAs.FREE,
    "Tentative": ShowAs.TENTATIVE,
    "Busy": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WorkingElsewhere": ShowAs.WORKING_ELSEWHERE,
    "NoData": ShowAs.BUSY,
}
RESPONSES = {
    "Accept": Response.ACCEPTED,
    "Organizer": Response.ACCEPTED,
    "Tentative": Response.TENTATIVE,
    "Decline": Response.DECLINED,
    "NoResponseReceived": Response.NONE,
    "Unknown": Response.NONE,
}


class EventMapper:
    """Turns exchangelib ``CalendarItem``s into ``CalendarEvent``s for one mailbox."""

    def __init__(self, source: str, mailbox: Mailbox) -> None:
        self.source = source
        self.mailbox = mailbox
        self.zone = mailbox.zone(source)

    def _moment(self, value: Any, what: str, item_id: str) -> datetime | date:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise CalendarError(self.source, f"item {item_id}: {what} has no time zone")
            return datetime.fromtimestamp(value.timestamp(), tz=UTC)
        if isinstance(value, date):
            return date(value.year, value.month, value.day)
        raise CalendarError(self.source, f"item {item_id}: {what} is missing")

    def _all_day(self, value: Any, what: str, item_id: str) -> date:
        """The local date of an all-day boundary (EWS sends local midnight as a UTC instant)."""
        moment = self._moment(value, what, item_id)
        if isinstance(moment, datetime):
            return moment.astimezone(self.zone).date()
        return moment

    def organizer(self, item: Any) -> tuple[str | None, OrganizerKind]:
        """Self when the mailbox's owner organised it on their own calendar (MyResponseType
        Organizer); internal for an Exchange directory (``EX``, legacyDN) address, which the
        server resolved from its own directory; otherwise ``classify_organizer``."""
        box = getattr(item, "organizer", None)
        address = getattr(box, "email_address", None) if box is not None else None
        if self.mailbox.own_calendar and getattr(item, "my_response_type", None) == "Organizer":
            return address, OrganizerKind.SELF
        if address and getattr(box, "routing_type", None) == "EX":
            return address, OrganizerKind.INTERNAL
        return address, classify_organizer(address, self.mailbox)

    def recurrence_id(self, item: Any) -> str | None:
        value = getattr(item, "recurrence_id", None) or getattr(item, "original_start", None)
        if value is None or getattr(item, "type", "Single") == "Single":
            return None
        if isinstance(value, datetime):
            return datetime.fromtimestamp(value.timestamp(), tz=UTC).isoformat()
        return str(value)

    def event(self, item: Any) -> CalendarEvent:
        item_id = str(getattr(item, "id", None) or "?")
        if getattr(item, "is_all_day", False):
            start: datetime | date = self._all_day(item.start, "start", item_id)
            end: datetime | date = self._all_day(item.end, "end", item_id)
            if not isinstance(item.end, datetime):
                end += timedelta(days=1)  # exchangelib turned the exclusive end into the last day
        else:
            start = self._moment(item.start, "start", item_id)
            end = self._moment(item.end, "end", item_id)
        organizer, kind = self.organizer(item)
        uid = getattr(item, "uid", None) or item_id
        status = getattr(item, "legacy_free_busy_status", None) or "Busy"
        return CalendarEvent(
            uid=str(uid),
            start=start,
            end=end,
            subject=str(getattr(item, "subject", None) or ""),
            recurrence_id=self.recurrence_id(item),
            show_as=SHOW_AS.get(status, ShowAs.BUSY),
            response=RESPONSES.get(getattr(item, "my_response_type", None) or "", Response.NONE),
            cancelled=bool(getattr(item, "is_cancelled", False)),
            private=getattr(item, "sensitivity", None) in ("Private", "Confidential"),
            categories=tuple(getattr(item, "categories", None) or ()),
            organizer_kind=kind,
            organizer=organizer,
            source=self.source,
        )
