"""Benchmark: event occurrences per second through expand + rules + timeline.

Generates realistic calendars for N users (default 1,000) over 4 weeks:
daily stand-ups and weekly one-to-ones as recurring series with exceptions,
ad-hoc meetings, lunches, declined and tentative invitations, private
appointments, tagged subjects and multi-day out-of-office. Then it times the
core: ICS parsing with recurrence expansion (``parse_ics``) and planning
(``plan_user`` = rules + tags + timeline), and reports peak memory.

The floor it is compared against: the service re-plans every user within one
polling interval (60 s), so the core must manage at least all occurrences / 60 s.
The yardstick of issue 9: the raw libraries on the same calendars and window
(``icalendar`` parsing and ``recurring_ical_events.of(calendar).between()``), timed
in the same run, calendar by calendar; the whole pipeline (expand + rules +
timeline) should cost at most 1.5 x that. Times are the process's CPU time, so
other load on the machine counts less.

    .venv/bin/python benchmarks/core_throughput.py [--users 1000] [--weeks 4]
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar, Event, vCalAddress

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics.parse import parse_ics
from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext
from rules.model import Profile, User
from rules.planner import plan_user
from rules.rulefile import default_rules

TZ = ZoneInfo("Europe/Stockholm")
UTC = ZoneInfo("UTC")
POLL_SECONDS = 60


def _event(uid: str, subject: str, start: datetime | date, end: datetime | date) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("summary", subject)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("dtstamp", datetime(2026, 1, 1, tzinfo=UTC))
    return event


def user_calendar(rng: random.Random, n: int, monday: date, weeks: int) -> bytes:
    """A realistic calendar for user ``n``."""
    email = f"user{n}@example.se"
    cal = Calendar()
    cal.add("prodid", "-//calref//benchmark//EN")
    cal.add("version", "2.0")
    at = lambda d, h, m=0: datetime.combine(d, clock_time(h, m), tzinfo=TZ)  # noqa: E731
    standup = _event(f"u{n}-standup", "Stand-up", at(monday, 8, 30), at(monday, 8, 45))
    standup.add("rrule", {"FREQ": "DAILY", "BYDAY": ["MO", "TU", "WE", "TH", "FR"]})
    standup.add("exdate", at(monday + timedelta(days=rng.randrange(5)), 8, 30))
    cal.add_component(standup)
    one2one = _event(f"u{n}-1on1", "1:1 #mobile", at(monday, 15), at(monday, 15, 30))
    one2one.add("rrule", {"FREQ": "WEEKLY"})
    cal.add_component(one2one)
    for day_index in range(weeks * 7):
        day = monday + timedelta(days=day_index)
        if day.weekday() >= 5:
            continue
        for k in range(rng.randrange(3, 8)):
            hour = rng.randrange(8, 17)
            start = at(day, hour, rng.choice((0, 15, 30)))
            end = start + timedelta(minutes=rng.choice((30, 45, 60, 90)))
            subject = rng.choice(
                (
                    "Project meeting",
                    "Customer call #fwd:0701234567",
                    "Lunch #lunch",
                    "Review",
                    "Workshop #close",
                    "Interview",
                    "Planning #soft",
                    "Sync #noref",
                )
            )
            event = _event(f"u{n}-{day_index}-{k}", subject, start, end)
            event.add(
                "X-MICROSOFT-CDO-BUSYSTATUS", rng.choice(("BUSY",) * 6 + ("FREE", "TENTATIVE"))
            )
            if rng.random() < 0.4:
                event.add(
                    "organizer",
                    vCalAddress(f"mailto:{rng.choice(('boss@example.se', 'x@other.com'))}"),
                )
                attendee = vCalAddress(f"mailto:{email}")
                attendee.params["PARTSTAT"] = rng.choice(
                    ("ACCEPTED",) * 5 + ("DECLINED", "TENTATIVE")
                )
                event.add("attendee", attendee)
            if rng.random() < 0.05:
                event.add("class", "PRIVATE")
            cal.add_component(event)
    if rng.random() < 0.3:
        first = monday + timedelta(days=rng.randrange(weeks * 7 - 3))
        oof = _event(f"u{n}-oof", "Vacation", first, first + timedelta(days=rng.randrange(1, 4)))
        oof.add("X-MICROSOFT-CDO-BUSYSTATUS", "OOF")
        cal.add_component(oof)
    return cal.to_ical()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=4)
    args = parser.parse_args()

    rng = random.Random(42)
    monday = date(2026, 11, 30)
    calendars = [user_calendar(rng, n, monday, args.weeks) for n in range(args.users)]
    window = SyncWindow(
        datetime.combine(monday, clock_time(), tzinfo=TZ),
        datetime.combine(monday + timedelta(weeks=args.weeks), clock_time(), tzinfo=TZ),
    )
    ctx = EvaluationContext(timezone=TZ, policy=ForwardPolicy(), rules=default_rules())
    users = [
        User(
            f"user{n}",
            f"User {n}",
            f"user{n}@example.se",
            str(1000 + n),
            (
                Profile("ext", "Extension", None, ("ext",)),
                Profile("mobile", "Mobile", "0701234567", ("mobile",)),
            ),
        )
        for n in range(args.users)
    ]

    occurrences = referrals = actions = raw_occurrences = 0
    expand_seconds = plan_seconds = raw_seconds = 0.0
    for user, data in zip(users, calendars, strict=True):
        t0 = time.process_time()  # the raw libraries, interleaved: both see the same load
        raw_calendar = Calendar.from_ical(data)
        found = recurring_ical_events.of(raw_calendar).between(window.start, window.end)
        raw_occurrences += len(found)
        raw_seconds += time.process_time() - t0
        t0 = time.process_time()
        mailbox = Mailbox(user.id, user.email, ("example.se",), "Europe/Stockholm")
        events = parse_ics(data, mailbox=mailbox, window=window, source=f"bench:{user.id}")
        t1 = time.process_time()
        plan = plan_user(user, events, ctx)
        t2 = time.process_time()
        expand_seconds += t1 - t0
        plan_seconds += t2 - t1
        occurrences += len(events)
        referrals += len(plan.referrals)
        actions += len(plan.actions)
    total = expand_seconds + plan_seconds
    rate = occurrences / total
    floor = occurrences / POLL_SECONDS
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"users: {args.users}, weeks: {args.weeks}, occurrences: {occurrences}, "
        f"referrals: {referrals}, phone actions: {actions}"
    )
    print(f"expand (parse_ics):        {occurrences / expand_seconds:10.0f} occurrences/s")
    print(f"plan (rules + timeline):   {occurrences / plan_seconds:10.0f} occurrences/s")
    print(
        f"expand + rules + timeline: {rate:10.0f} occurrences/s "
        f"(floor: {floor:.0f}/s = every user re-planned within one {POLL_SECONDS} s poll) "
        f"{'OK' if rate >= floor else 'BELOW FLOOR'}"
    )
    ratio = total / raw_seconds
    print(
        f"raw libraries (icalendar + recurring_ical_events between()): "
        f"{raw_occurrences / raw_seconds:10.0f} occurrences/s ({raw_occurrences} occurrences); "
        f"pipeline vs raw: {ratio:.2f} x (goal <= 1.5 x) {'OK' if ratio <= 1.5 else 'OVER'}"
    )
    print(f"peak memory (RSS of the whole run, calendars included): {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
