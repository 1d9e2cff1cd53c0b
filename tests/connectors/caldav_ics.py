"""Small iCalendar texts for the CalDAV tests: single events and a weekly series."""

from __future__ import annotations


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
