"""Reading single values out of icalendar components, and placing times.

Helpers the ICS parser shares: the first of a repeated property, text of a
property, the line a component was read from (``X-CALREF-LINE``, added by
``prepare.py``), RFC 5545's DURATION arithmetic and DST-gap rule, busy status,
categories and addresses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as day_time
from typing import Any

from connectors.calendars.ics import prepare as ics_prepare
from connectors.calendars.limits import escape
from rules.model import Response, ShowAs

_BUSY_STATUS = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WORKINGELSEWHERE": ShowAs.WORKING_ELSEWHERE,
}
PARTSTAT = {
    "ACCEPTED": Response.ACCEPTED,
    "TENTATIVE": Response.TENTATIVE,
    "DECLINED": Response.DECLINED,
    "NEEDS-ACTION": Response.NONE,
}


def utc_start(value: datetime | date, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, day_time(), zone).astimezone(UTC)


def component_line(component: Any) -> int | None:
    value = component.get(ics_prepare.LINE_PROP)
    try:
        return int(str(value[0] if isinstance(value, list) else value))
    except (TypeError, ValueError):
        return None


def one(component: Any, name: str) -> Any:
    """The property, or the first of several (repeated single properties)."""
    value = component.get(name)
    return value[0] if isinstance(value, list) and value else value


def text_of(component: Any, name: str) -> str:
    value = one(component, name)
    return "" if value is None else str(value)


def existing(value: datetime) -> datetime:
    """``value`` itself, or for a local time skipped by a DST gap the same instant read with
    the offset before the gap (RFC 5545 3.3.5: 02:30 on a spring-forward night is 03:30).

    zoneinfo already does this; the time zones icalendar builds from a VTIMEZONE block
    (Outlook) use the offset after the gap instead, which would start the event an hour early.
    """
    back = value.astimezone(UTC).astimezone(value.tzinfo)
    if back.replace(tzinfo=None, fold=0) == value.replace(tzinfo=None, fold=0):
        return value
    before = (value - timedelta(days=1)).utcoffset()
    after = (value + timedelta(days=1)).utcoffset()
    if before is None or after is None or after <= before:
        return value
    return value + (after - before)


def plus_duration(
    as_utc: Callable[[datetime | date], datetime], start: datetime | date, duration: timedelta
) -> datetime | date:
    """``start + duration`` as RFC 5545 3.3.6 means it: days and weeks are nominal (same
    local time), hours, minutes and seconds exact (so PT1H is one hour across a DST change)."""
    if not isinstance(start, datetime):
        return start + duration
    days = timedelta(days=duration.days)
    return as_utc(start + days) + (duration - days)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def address(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    return text.strip().lower() or None


def raw_value(prop: Any) -> str:
    if prop is None:
        return ""
    try:
        raw = prop.to_ical()
    except Exception:
        return str(prop)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.replace("\\;", ";").replace("\\,", ",")


def rule_problem(event: Any) -> str | None:
    """Rule values that parse but would make expansion loop forever or fail."""
    for rule in as_list(event.get("RRULE")):
        for part, least in (("INTERVAL", 1), ("COUNT", 1)):
            for value in rule.get(part, []):
                if not isinstance(value, int) or value < least:
                    shown = escape(str(value))
                    return f"RRULE {part} must be a whole number of at least {least}, not {shown}"
    return None


def drop(calendar: Any, broken: set[int]) -> None:
    """Remove the components whose ``id`` is in ``broken``, wherever they are nested."""
    stack = [calendar]
    while stack:
        component = stack.pop()
        component.subcomponents = [c for c in component.subcomponents if id(c) not in broken]
        stack.extend(component.subcomponents)


def show_as(event: Any, status: str) -> ShowAs:
    busy = text_of(event, "X-MICROSOFT-CDO-BUSYSTATUS").strip().upper()
    if busy in _BUSY_STATUS:
        return _BUSY_STATUS[busy]
    if text_of(event, "TRANSP").strip().upper() == "TRANSPARENT":
        return ShowAs.FREE
    if status == "TENTATIVE":
        return ShowAs.TENTATIVE
    return ShowAs.BUSY


def categories(event: Any) -> tuple[str, ...]:
    found: list[str] = []
    for prop in as_list(event.get("CATEGORIES")):
        names = getattr(prop, "cats", None)
        values = names if names is not None else str(prop).split(",")
        for name in values:
            text = str(name).strip()
            if text and text not in found:
                found.append(text)
    return tuple(found)
