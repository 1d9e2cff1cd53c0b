"""Expanding recurring events in the window, in bounded batches under the parse deadline.

recurring-ical-events (over dateutil) cannot be interrupted once called, so the
series of a calendar are handed to it in batches whose estimated cost (the
``rule_steps`` the parser computed for each event) stays under ``max_rule_steps``
and whose size stays under ``BATCH_SERIES``; the deadline is checked between
batches. A batch that fails is retried one series at a time, so only the series
that cannot be expanded is skipped (reported through ``skipped``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import icalendar
import recurring_ical_events

from connectors.calendars.ics.values import text_of
from connectors.calendars.limits import Deadline

log = logging.getLogger(__name__)

BATCH_SERIES = 500


def occurrences(
    calendar: icalendar.Calendar,
    events: list[Any],
    steps: dict[int, int],
    span: tuple[datetime, datetime],
    max_steps: int,
    deadline: Deadline,
    skipped: Callable[[Any, Exception], None],
) -> Iterator[Any]:
    """Every occurrence of ``events`` (components of ``calendar``) inside ``span``."""
    timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    by_uid: dict[str, list[Any]] = {}
    cost: dict[str, int] = {}
    for component in events:
        uid = text_of(component, "UID")
        by_uid.setdefault(uid, []).append(component)
        cost[uid] = cost.get(uid, 0) + steps.get(id(component), 1)
    batch: list[str] = []
    budget = 0
    pending: list[str | None] = [*by_uid, None]  # None: flush the last batch
    for key in pending:
        fits = budget + cost.get(key or "", 0) <= max_steps
        if key is not None and (not batch or (fits and len(batch) < BATCH_SERIES)):
            batch.append(key)
            budget += cost[key]
            continue
        deadline.check()
        yield from _batch(calendar, timezones, [by_uid[u] for u in batch], span, deadline, skipped)
        if key is not None:
            batch, budget = [key], cost[key]


def _batch(
    calendar: icalendar.Calendar,
    timezones: list[Any],
    series: list[list[Any]],
    span: tuple[datetime, datetime],
    deadline: Deadline,
    skipped: Callable[[Any, Exception], None],
) -> Iterator[Any]:
    if not series:
        return
    try:
        found = _between(calendar, timezones, [c for s in series for c in s], span)
    except Exception:
        log.debug("expanding %d series failed; isolating them", len(series))
    else:
        yield from found
        return
    for components in series:
        deadline.check()
        try:
            found = _between(calendar, timezones, components, span)
        except Exception as err:  # the library raises what dateutil raises
            skipped(components[0], err)
            continue
        yield from found


def _between(
    calendar: icalendar.Calendar,
    timezones: list[Any],
    components: list[Any],
    span: tuple[datetime, datetime],
) -> list[Any]:
    single = icalendar.Calendar()
    for key, value in calendar.items():
        single.add(key, value)
    single.subcomponents = [*timezones, *components]
    return list(recurring_ical_events.of(single).between(*span))
