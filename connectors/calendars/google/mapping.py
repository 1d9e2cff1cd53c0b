"""Mapping Google Calendar v3 ``Event`` resources onto calref's ``CalendarEvent``.

Times become aware UTC datetimes (``date`` for all-day events, end exclusive);
``eventType``/``transparency`` give ``show_as``; the attendee marked ``self``
gives the user's response; ``visibility`` private/confidential marks the event
private; ``recurringEventId`` + ``originalStartTime`` give the recurrence id.
The event ``id`` (unique per instance) is the key. The organizer's kind comes from
``classify_organizer`` (``organizer.self`` counts as the user on their own calendar).
See docs/calendars-google.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from connectors.calendars.base import Mailbox
from connectors.calendars.organizer import classify_organizer
from rules.errors import CalendarError
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs


class EventMapper:
    """Turns Google ``Event`` resources into ``CalendarEvent``s for one mailbox."""

    def __init__(self, source: str, mailbox: Mailbox) -> None:
        self.source = source
        self.mailbox = mailbox
        self.zone = mailbox.zone(source)

    def _when(self, item: dict[str, Any], field: str) -> datetime | date:
        value = item.get(field)
        where = f"event {item.get('id', '?')}: {field}"
        if not isinstance(value, dict):
            raise CalendarError(self.source, f"{where} is missing")
        try:
            if "dateTime" in value:
                moment = datetime.fromisoformat(value["dateTime"])
                if moment.tzinfo is None:
                    raise CalendarError(self.source, f"{where}.dateTime has no UTC offset")
                return moment.astimezone(UTC)
            if "date" in value:
                return date.fromisoformat(value["date"])
        except (TypeError, ValueError):
            raise CalendarError(self.source, f"{where} is not an RFC 3339 date/time") from None
        raise CalendarError(self.source, f"{where} has neither date nor dateTime")

    def bounds(self, when: datetime | date) -> datetime:
        """A comparable UTC instant: all-day dates start at local midnight of the mailbox."""
        if isinstance(when, datetime):
            return when
        return datetime(when.year, when.month, when.day, tzinfo=self.zone).astimezone(UTC)

    def show_as(self, item: dict[str, Any]) -> ShowAs:
        kind = item.get("eventType", "default")
        if kind == "outOfOffice":
            return ShowAs.OOF
        if kind == "workingLocation":
            location = item.get("workingLocationProperties") or {}
            if location.get("type") == "officeLocation":
                return ShowAs.FREE
            return ShowAs.WORKING_ELSEWHERE
        if kind == "focusTime":
            return ShowAs.BUSY
        if item.get("transparency") == "transparent" or kind == "birthday":
            return ShowAs.FREE
        return ShowAs.BUSY

    @staticmethod
    def response(item: dict[str, Any]) -> Response:
        for attendee in item.get("attendees") or ():
            if attendee.get("self"):
                return {
                    "accepted": Response.ACCEPTED,
                    "tentative": Response.TENTATIVE,
                    "declined": Response.DECLINED,
                }.get(attendee.get("responseStatus", ""), Response.NONE)
        if (item.get("organizer") or {}).get("self") or not item.get("attendees"):
            return Response.ACCEPTED
        return Response.NONE

    def organizer_kind(self, item: dict[str, Any]) -> OrganizerKind:
        """``organizer.self`` (Google: the organizer is the calendar this copy is on) is the
        user on their own calendar, e.g. a secondary calendar whose id is not their address;
        on a shared calendar it is that calendar's owner, judged by address like the rest."""
        organizer = item.get("organizer") or {}
        if self.mailbox.own_calendar and organizer.get("self") is True:
            return OrganizerKind.SELF
        return classify_organizer(organizer.get("email"), self.mailbox)

    def recurrence_id(self, item: dict[str, Any]) -> str | None:
        if not item.get("recurringEventId"):
            return None
        original = self._when(item, "originalStartTime")
        return original.isoformat()

    def event(self, item: dict[str, Any]) -> CalendarEvent:
        event_id = item.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise CalendarError(self.source, "an event has no id")
        organizer = (item.get("organizer") or {}).get("email")
        kind = self.organizer_kind(item)
        return CalendarEvent(
            uid=str(item.get("iCalUID") or event_id),
            start=self._when(item, "start"),
            end=self._when(item, "end"),
            subject=str(item.get("summary") or ""),
            recurrence_id=self.recurrence_id(item),
            show_as=self.show_as(item),
            response=self.response(item),
            cancelled=False,
            private=item.get("visibility") in ("private", "confidential"),
            categories=(),
            organizer_kind=kind,
            organizer=organizer,
            source=self.source,
            key=event_id,
        )
