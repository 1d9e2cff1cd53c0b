"""In-process measurements of the scale benchmark: the floors and the planning pipeline (row 8).

- ``stat_cost``: one ``os.stat`` of a calendar file (the floor of an idle poll);
- ``raw_cost``: the raw library cost of the same calendars, ``icalendar`` parsing and
  ``recurring_ical_events.of(cal).between(window)`` (the floor of the first full plan
  and the yardstick of row 8);
- ``pipeline_cost``: calref's own path over the same calendars and window: its ICS
  parser (``parse_ics``) and planning with the default rules (``plan_user``), as
  ``benchmarks/core_throughput.py`` measures it.

Each runs over every calendar and reports wall seconds in total (this process does
nothing else meanwhile). calref's modules are imported only in ``pipeline_cost``;
if they moved, it says so instead of failing the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Cost:
    """Seconds for all calendars and what they produced."""

    seconds: float
    calendars: int
    occurrences: int
    error: str | None = None

    @property
    def per_calendar_ms(self) -> float:
        return self.seconds / max(1, self.calendars) * 1000


def stat_cost(paths: Sequence[Path], rounds: int = 20) -> float:
    """Seconds of one ``os.stat`` of a calendar file (warm cache, the best of ``rounds``)."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for path in paths:
            os.stat(path)
        best = min(best, (time.perf_counter() - t0) / max(1, len(paths)))
    return best


def raw_cost(texts: Sequence[str], start: datetime, end: datetime) -> Cost:
    """``icalendar`` parse + ``recurring_ical_events`` ``between()`` of every calendar."""
    import icalendar
    import recurring_ical_events

    occurrences = 0
    t0 = time.perf_counter()
    for text in texts:
        calendar = icalendar.Calendar.from_ical(text)
        occurrences += len(recurring_ical_events.of(calendar).between(start, end))
    return Cost(time.perf_counter() - t0, len(texts), occurrences)


def pipeline_cost(
    texts: Sequence[str],
    user_ids: Sequence[str],
    domain: str,
    tz: str,
    start: datetime,
    end: datetime,
) -> Cost:
    """calref's parse and plan of every calendar (default rules), or the import error."""
    try:
        from zoneinfo import ZoneInfo

        from connectors.calendars.base import Mailbox, SyncWindow
        from connectors.calendars.ics.parse import parse_ics
        from rules.actions import ForwardPolicy
        from rules.evaluate import EvaluationContext
        from rules.model import Profile, User
        from rules.planner import plan_user
        from rules.rulefile import default_rules
    except ImportError as err:
        return Cost(float("nan"), 0, 0, f"calref's core could not be imported: {err}")
    window = SyncWindow(start, end)
    ctx = EvaluationContext(timezone=ZoneInfo(tz), policy=ForwardPolicy(), rules=default_rules())
    profiles = (
        Profile("ext", "Extension", None, ("ext", "desk")),
        Profile("mobile", "Mobile", "0701234567", ("mobile", "mobil")),
    )
    occurrences = 0
    t0 = time.perf_counter()
    for n, (uid, text) in enumerate(zip(user_ids, texts, strict=True)):
        email = f"{uid}@{domain}"
        user = User(uid, f"User {n}", email, str(100000 + n), profiles)
        mailbox = Mailbox(uid, email, (domain,), tz)
        events = parse_ics(text.encode(), mailbox=mailbox, window=window, source=f"bench:{uid}")
        plan_user(user, events, ctx)
        occurrences += len(events)
    return Cost(time.perf_counter() - t0, len(texts), occurrences)
