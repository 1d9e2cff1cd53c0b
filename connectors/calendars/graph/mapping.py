"""Turning a Microsoft Graph ``event`` resource into calref's ``CalendarEvent``.

Field choices (see docs/calendars-graph.md):

- ``key`` is the Graph ``id`` (an immutable id, because every request sends
  ``Prefer: IdType="ImmutableId"``): ``@removed`` entries carry only the id, so
  the key must be the id for removals to match.
- ``uid`` is ``seriesMasterId`` for occurrences and exceptions (so a series
  shares one uid, as in iCalendar), else ``iCalUId``, else the id.
  ``recurrence_id`` is ``originalStart`` in UTC for occurrences and exceptions.
- ``showAs``: ``unknown`` (and a missing value) count as busy.
- ``responseStatus.response``: ``organizer`` counts as accepted,
  ``notResponded`` as none; compared case-insensitively.
- ``sensitivity`` private or confidential make the event private; personal does not.
- All-day events become ``date``s (end exclusive) taken from the wall-clock
  date Graph sends; an all-day value that is not at midnight (a zone mismatch)
  is converted to the mailbox's zone first.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.calendars.base import Mailbox
from connectors.calendars.organizer import classify_organizer
from rules.errors import CalendarError
from rules.model import CalendarEvent, Response, ShowAs

# Properties ``to_event`` reads. A delta round may send only the changed ones
# for an updated event; when any of these is absent the source fetches the event,
# or, for an occurrence in the delta's sparse shape, its series master (graph_series).
REQUIRED_FIELDS = (
    "subject",
    "start",
    "end",
    "isAllDay",
    "isCancelled",
    "showAs",
    "sensitivity",
    "responseStatus",
    "categories",
    "type",
    "iCalUId",
)
SELECT_FIELDS = (*REQUIRED_FIELDS, "organizer", "seriesMasterId", "originalStart", "id")

SHOW_AS = {
    "free": ShowAs.FREE,
    "tentative": ShowAs.TENTATIVE,
    "busy": ShowAs.BUSY,
    "oof": ShowAs.OOF,
    "workingelsewhere": ShowAs.WORKING_ELSEWHERE,
    "unknown": ShowAs.BUSY,
}
RESPONSES = {
    "none": Response.NONE,
    "notresponded": Response.NONE,
    "organizer": Response.ACCEPTED,
    "accepted": Response.ACCEPTED,
    "tentativelyaccepted": Response.TENTATIVE,
    "declined": Response.DECLINED,
}
PRIVATE_SENSITIVITIES = frozenset({"private", "confidential"})


def is_removed(item: dict[str, Any]) -> bool:
    return "@removed" in item


def missing_fields(item: dict[str, Any]) -> list[str]:
    """The required properties a (delta) item does not carry."""
    return [name for name in REQUIRED_FIELDS if name not in item]


def to_event(item: dict[str, Any], mailbox: Mailbox, source: str) -> CalendarEvent:
    """Normalise one Graph event; raises ``CalendarError`` naming the event on bad data."""
    event_id = item.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise CalendarError(source, "event without an id in Graph response")
    where = f"event {event_id[-12:]}"
    all_day = bool(item.get("isAllDay", False))
    start_raw = _time_field(item, "start", source, where)
    end_raw = _time_field(item, "end", source, where)
    start: datetime | date
    end: datetime | date
    if all_day:
        start = _all_day_date(start_raw, mailbox, source, where)
        end = _all_day_date(end_raw, mailbox, source, where)
        if end <= start:
            end = start + timedelta(days=1)
    else:
        start, end = start_raw.astimezone(UTC), end_raw.astimezone(UTC)
        if end < start:
            raise CalendarError(source, f"{where}: ends before it starts")

    kind = str(item.get("type") or "singleInstance")
    recurrence_id: str | None = None
    uid = str(item.get("iCalUId") or event_id)
    if kind in ("occurrence", "exception"):
        master = item.get("seriesMasterId")
        if master:
            uid = str(master)
        original = item.get("originalStart")
        if original:
            recurrence_id = _parse_offset_time(str(original), source, where).isoformat()
        else:
            recurrence_id = start.isoformat()

    response_status = item.get("responseStatus") or {}
    response_value = str(response_status.get("response") or "none").lower()
    organizer_address = ((item.get("organizer") or {}).get("emailAddress") or {}).get("address")
    organizer = str(organizer_address).strip().lower() if organizer_address else None
    categories = item.get("categories") or []
    if not isinstance(categories, list):
        raise CalendarError(source, f"{where}: categories is not a list")
    return CalendarEvent(
        uid=uid,
        start=start,
        end=end,
        subject=str(item.get("subject") or ""),
        recurrence_id=recurrence_id,
        show_as=SHOW_AS.get(str(item.get("showAs") or "unknown").lower(), ShowAs.BUSY),
        response=RESPONSES.get(response_value, Response.NONE),
        cancelled=bool(item.get("isCancelled", False)),
        private=str(item.get("sensitivity") or "normal").lower() in PRIVATE_SENSITIVITIES,
        categories=tuple(str(c) for c in categories),
        organizer_kind=classify_organizer(organizer, mailbox),
        organizer=organizer,
        source=source,
        key=event_id,
    )


def _time_field(item: dict[str, Any], name: str, source: str, where: str) -> datetime:
    """A ``dateTimeTimeZone`` as an aware datetime in its own zone (UTC when we asked)."""
    value = item.get(name)
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise CalendarError(source, f"{where}: {name} has no dateTime")
    try:
        naive = datetime.fromisoformat(value["dateTime"])
    except ValueError:
        raise CalendarError(
            source, f"{where}: {name}.dateTime {value['dateTime']!r} is not ISO 8601"
        ) from None
    zone = zone_named(str(value.get("timeZone") or "UTC"), source, where)
    if naive.tzinfo is not None:
        return naive.astimezone(UTC) if zone is UTC else naive.astimezone(zone)
    return naive.replace(tzinfo=zone)


def zone_named(name: str, source: str, where: str) -> ZoneInfo | Any:
    """UTC, an IANA zone or a Windows zone name (Graph uses both)."""
    if name.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return UTC
    olson = WINDOWS_TO_OLSON.get(name, name)
    try:
        return ZoneInfo(olson)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(source, f"{where}: unknown time zone {name!r}") from None


def _all_day_date(value: datetime, mailbox: Mailbox, source: str, where: str) -> date:
    if value.time() == datetime.min.time():
        return value.date()
    local = value.astimezone(zone_named(mailbox.timezone, source, where))
    return local.date() if local.hour < 12 else local.date() + timedelta(days=1)


def _parse_offset_time(text: str, source: str, where: str) -> datetime:
    """``originalStart`` is an Edm.DateTimeOffset (``...Z`` or with an offset)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CalendarError(source, f"{where}: originalStart {text!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def time_in_window(event: CalendarEvent, start: datetime, end: datetime) -> bool:
    """Whether the event overlaps [start, end) (all-day dates read in UTC)."""
    ev_start, ev_end = event.start, event.end
    if not isinstance(ev_start, datetime):
        ev_start = datetime(ev_start.year, ev_start.month, ev_start.day, tzinfo=UTC) - timedelta(
            days=1
        )
    if not isinstance(ev_end, datetime):
        ev_end = datetime(ev_end.year, ev_end.month, ev_end.day, tzinfo=UTC) + timedelta(days=1)
    return ev_start < end and (ev_end > start or ev_start == ev_end == start)
