"""The generated organisation of the scale benchmark: ICS calendars and the calref config.

Every user gets one realistic calendar (``user_calendar``): a few meetings a day
on the weekdays of the sync window (yesterday to two weeks ahead), one weekly
recurring series, some all-day events (out of office, free notes), organizers and
attendees, times in ``Europe/Stockholm`` with its VTIMEZONE, subjects with tags.
The content is seeded random: the same seed, date and quiet span give the same
bytes. Nothing fires a phone action while the benchmark runs: timed meetings keep
clear of the *quiet span* around the run, and ``#close``, ``#fwd`` and out-of-office
events are at least two days ahead. The benchmark adds what must happen at a known
moment itself: a ``#close`` meeting (``due_meeting``) or an edit (``edit_meeting``),
both on times no generated meeting uses.

``write_config`` writes the YAML a new user would write (block style), one ICS
path calendar per user; ``write_simulator_config`` the same users without calendars
for ``calref simulator``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Stockholm")
TZID = "Europe/Stockholm"
DOMAIN = "example.se"
LOOKBACK = timedelta(days=1)
HORIZON_DAYS = 14

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Stockholm
X-LIC-LOCATION:Europe/Stockholm
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

#: subjects that never make a phone action (busy meetings: start none, end none)
PLAIN_SUBJECTS = (
    "Project meeting",
    "Review",
    "Interview",
    "Lunch #lunch",
    "Planning #soft",
    "Customer call",
    "Sync #noref",
    "Training #course",
)
#: subjects with a phone action, only used two days ahead or more
ACTION_SUBJECTS = ("Workshop #close", "Site visit #fwd:0701234567")


def user_id(n: int) -> str:
    return f"u{n:05d}"


@dataclass(frozen=True)
class Span:
    """A stretch of time (UTC) that generated timed meetings keep clear of."""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return start < self.end and self.start < end


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%Y%m%dT%H%M%S")


def _event(
    uid: str,
    subject: str,
    start: datetime,
    end: datetime,
    extra: tuple[str, ...] = (),
) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}@bench.{DOMAIN}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART;TZID={TZID}:{_local(start)}",
        f"DTEND;TZID={TZID}:{_local(end)}",
        f"SUMMARY:{subject}",
        *extra,
        "END:VEVENT",
    ]


def _all_day(uid: str, subject: str, first: date, days: int, extra: tuple[str, ...]) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}@bench.{DOMAIN}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
        f"DTEND;VALUE=DATE:{first + timedelta(days=days):%Y%m%d}",
        f"SUMMARY:{subject}",
        *extra,
        "END:VEVENT",
    ]


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock_time(hour, minute), tzinfo=TZ)


def user_calendar(
    n: int, today: date, quiet: Span, *, seed: int = 42, busy_today: bool = True
) -> str:
    """The realistic calendar of user ``n`` (see the module docstring) as ICS text.

    ``busy_today`` False leaves yesterday, today and tomorrow without timed
    meetings (the users who get a ``due_meeting``).
    """
    rng = random.Random(f"{seed}/{n}")
    email = f"{user_id(n)}@{DOMAIN}"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calref//scale benchmark//EN", VTIMEZONE]
    first = today - timedelta(days=1)
    last = today + timedelta(days=HORIZON_DAYS)
    action_from = today + timedelta(days=2)
    # one weekly series, begun two months ago; an occurrence in the quiet span is excluded
    weekday = rng.randrange(5)
    series_day = today - timedelta(weeks=8, days=today.weekday() - weekday)
    hour = rng.choice((9, 10, 13, 14, 15))
    series = _at(series_day, hour)
    extra = ["RRULE:FREQ=WEEKLY", "X-MICROSOFT-CDO-BUSYSTATUS:BUSY"]
    for week in range(12):
        occurrence = series + timedelta(weeks=week)
        if quiet.overlaps(occurrence, occurrence + timedelta(minutes=30)):
            extra.append(f"EXDATE;TZID={TZID}:{_local(occurrence)}")
    lines += _event(
        f"{n}-1on1", "1:1 #mobile", series, series + timedelta(minutes=30), tuple(extra)
    )
    day = first
    while day <= last:
        if day.weekday() < 5 and (busy_today or abs((day - today).days) > 1):
            for k in range(rng.randrange(2, 5)):
                start = _at(day, rng.randrange(8, 17), rng.choice((0, 15, 30, 45)))
                end = start + timedelta(minutes=rng.choice((30, 45, 60, 90)))
                if quiet.overlaps(start, end):
                    continue
                pool = PLAIN_SUBJECTS + (ACTION_SUBJECTS if day >= action_from else ())
                extra = [
                    "X-MICROSOFT-CDO-BUSYSTATUS:"
                    + rng.choice(("BUSY",) * 6 + ("FREE", "TENTATIVE"))
                ]
                if rng.random() < 0.4:
                    boss = rng.choice(("boss@example.se", "x@other.com"))
                    partstat = rng.choice(("ACCEPTED",) * 5 + ("DECLINED", "TENTATIVE"))
                    extra += [
                        f"ORGANIZER:mailto:{boss}",
                        f"ATTENDEE;PARTSTAT={partstat}:mailto:{email}",
                    ]
                if rng.random() < 0.05:
                    extra.append("CLASS:PRIVATE")
                lines += _event(f"{n}-{day:%Y%m%d}-{k}", rng.choice(pool), start, end, tuple(extra))
        day += timedelta(days=1)
    # all-day: a free note for some, a few days out of office (weekdays, ahead) for others
    if rng.random() < 0.3:
        note_day = first + timedelta(days=rng.randrange(HORIZON_DAYS))
        lines += _all_day(f"{n}-note", "Name day", note_day, 1, ("TRANSP:TRANSPARENT",))
    if rng.random() < 0.3:
        start_day = action_from + timedelta(days=rng.randrange(HORIZON_DAYS - 4))
        while start_day.weekday() > 2:  # Monday to Wednesday, so it ends by Friday
            start_day += timedelta(days=1)
        oof = ("X-MICROSOFT-CDO-BUSYSTATUS:OOF",)
        lines += _all_day(f"{n}-oof", "Vacation", start_day, rng.randrange(1, 3), oof)
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def due_meeting(uid: str, start: datetime, minutes: int = 60) -> str:
    """A busy ``#close`` meeting: its start action closes the phone at ``start``."""
    end = start + timedelta(minutes=minutes)
    return "\r\n".join(_event(uid, "Board meeting #close", start, end)) + "\r\n"


def edit_start(now: datetime) -> datetime:
    """A Saturday evening inside the window: no generated meeting is there."""
    day = now.astimezone(TZ).date()
    while True:
        day += timedelta(days=1)
        if day.weekday() == 5:
            moment = _at(day, 21)
            if moment > now + timedelta(hours=2):
                return moment


def edit_meeting(uid: str, subject: str, start: datetime) -> str:
    extra = ("X-MICROSOFT-CDO-BUSYSTATUS:BUSY",)
    return "\r\n".join(_event(uid, subject, start, start + timedelta(minutes=30), extra)) + "\r\n"


def with_events(calendar: str, *events: str) -> str:
    """``calendar`` (ICS text) with ``events`` added before its end."""
    head, _, _ = calendar.rpartition("END:VCALENDAR")
    return head + "".join(events) + "END:VCALENDAR\r\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` so that a poll never reads half a file (its mtime and size change)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(path)


def write_calendars(
    folder: Path,
    users: int,
    today: date,
    quiet: Span,
    *,
    seed: int = 42,
    quiet_users: frozenset[int] = frozenset(),
) -> dict[int, str]:
    """``folder/uNNNNN.ics`` for each user; returns the texts (for edits and in-process rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    texts: dict[int, str] = {}
    for n in range(users):
        text = user_calendar(n, today, quiet, seed=seed, busy_today=n not in quiet_users)
        (folder / f"{user_id(n)}.ics").write_text(text, encoding="utf-8", newline="")
        texts[n] = text
    return texts


def _switchboard_block(url: str) -> list[str]:
    return [
        "switchboard:",
        "  kind: http",
        f'  url: "{url}"',
        "  client_name: calref-scale",
        "  timeout_seconds: 10",
    ]


def _user_lines(n: int, calendars: str | None) -> list[str]:
    uid = user_id(n)
    lines = [
        f"  - id: {uid}",
        f"    name: User {n}",
        f"    email: {uid}@{DOMAIN}",
        f'    extension: "{100000 + n}"',
        "    profiles:",
        "      - {id: ext, name: Extension, tags: [ext, desk]}",
        '      - {id: mobile, name: Mobile, number: "0701234567", tags: [mobile, mobil]}',
    ]
    if calendars is not None:
        lines += ["    calendars:", f"      - {{kind: ics, path: {calendars}/{uid}.ics}}"]
    return lines


def write_config(
    path: Path,
    users: int,
    url: str,
    *,
    poll_seconds: float,
    store: str = "sqlite:///store.db",
    calendars: str = "calendars",
) -> Path:
    """The calref config a new user would write for ``users`` ICS-file calendars."""
    lines = [
        "# generated by benchmarks/scale.py",
        f"timezone: {TZID}",
        f"organization: {{domains: [{DOMAIN}]}}",
        f"store: {store}",
        *_switchboard_block(url),
        "sync:",
        f"  poll_seconds: {poll_seconds:g}",
        f"  horizon_days: {HORIZON_DAYS}",
        "users:",
    ]
    for n in range(users):
        lines += _user_lines(n, calendars)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_simulator_config(path: Path, users: int, url: str) -> Path:
    """The same users without calendars: all ``calref simulator`` needs."""
    lines = [f"timezone: {TZID}", *_switchboard_block(url), "users:"]
    for n in range(users):
        lines += _user_lines(n, None)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
