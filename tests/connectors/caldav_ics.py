"""Small iCalendar texts for the CalDAV and ICS tests: single events, series, the contract's week.

``single`` and ``weekly`` write test events by hand; ``meeting_ics``,
``series_ics`` and ``calendar_ics`` write the neutral ``Meeting`` / ``Series``
of ``source_contract`` as iCalendar (one resource each for CalDAV, or one file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from source_contract import Meeting, Series


def vcalendar(*vevents: str) -> str:
    body = "".join(vevents)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//calref tests//EN\n{body}END:VCALENDAR\n"


def vevent(
    uid: str,
    start: str,
    end: str,
    summary: str = "Meeting",
    *,
    extra: str = "",
    recurrence_id: str | None = None,
) -> str:
    rid = f"RECURRENCE-ID:{recurrence_id}\n" if recurrence_id else ""
    return (
        "BEGIN:VEVENT\n"
        f"UID:{uid}\nDTSTAMP:20260101T000000Z\n{rid}"
        f"DTSTART:{start}\nDTEND:{end}\nSUMMARY:{summary}\n{extra}"
        "END:VEVENT\n"
    )


def single(uid: str, start: str, end: str, summary: str = "Meeting", extra: str = "") -> str:
    return vcalendar(vevent(uid, start, end, summary, extra=extra))


def weekly(
    uid: str,
    *,
    exdates: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
    count: int | None = None,
) -> str:
    """Mondays 09:00-10:00 UTC from 2026-02-23, with EXDATEs and override VEVENTs."""
    rule = "RRULE:FREQ=WEEKLY" + (f";COUNT={count}" if count else "") + "\n"
    ex = "".join(f"EXDATE:{d}\n" for d in exdates)
    master = vevent(uid, "20260223T090000Z", "20260223T100000Z", "Weekly", extra=rule + ex)
    return vcalendar(master, *overrides)


def utc(moment: datetime) -> str:
    """An iCalendar UTC date-time (``20260302T080000Z``)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _meeting(meeting: Meeting) -> str:
    return vevent(meeting.name, utc(meeting.start), utc(meeting.end), meeting.subject)


def _series(series: Series, removed: Iterable[datetime]) -> str:
    rule = f"RRULE:FREQ=DAILY;COUNT={series.count}\n"
    exdates = "".join(f"EXDATE:{utc(t)}\n" for t in removed)
    end = series.first + series.length
    return vevent(series.name, utc(series.first), utc(end), series.subject, extra=rule + exdates)


def meeting_ics(meeting: Meeting) -> str:
    return vcalendar(_meeting(meeting))


def series_ics(series: Series, removed: Iterable[datetime] = ()) -> str:
    """The series as one resource, its ``removed`` occurrences as EXDATEs."""
    return vcalendar(_series(series, removed))


def calendar_ics(
    meetings: Iterable[Meeting],
    series: Sequence[Series],
    removed: Mapping[str, Iterable[datetime]],
) -> str:
    """Every event in one file, as a calendar export has it."""
    vevents = [_meeting(m) for m in meetings]
    vevents += [_series(s, removed.get(s.name, ())) for s in series]
    return vcalendar(*vevents)
