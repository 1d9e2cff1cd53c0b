"""The Graph source's opaque sync state and how a moving window is followed without a re-read.

State (JSON, ``v`` 2): the mailbox, the window the delta link was made for
(``start``, ``end``), how far bounded ``calendarView`` reads have extended it
(``covered``, ≥ ``end``) and the delta link. Version 1 states (no ``covered``)
are read as ``covered = end``.

The service's window slides with the clock (now − lookback … now + horizon),
but a calendarView delta link is bound to the range it was made for. Instead
of a new delta round (a full re-read of every mailbox each day at 00:00 UTC),
``plan`` keeps the delta link and covers the days added at the far end with a
bounded ``calendarView`` read of just those days (``covered`` is rounded up to
the next UTC midnight, so that is one small read per mailbox per day). Only
when the extension would exceed the mailbox's ``max_extension`` (5–11 days,
fixed per mailbox from a hash of its address, so mailboxes that started
together do not all re-read on the same day), or the window moved backwards
or past the delta range, does the source start a new delta round.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

STATE_VERSION = 2
MIN_EXTENSION = timedelta(days=5)
EXTENSION_SPREAD_DAYS = 7  # max_extension is MIN_EXTENSION + 0..6 days


@dataclass(frozen=True)
class DeltaState:
    mailbox: str
    start: datetime  # the delta link's range [start, end)
    end: datetime
    covered: datetime  # [end, covered) is read with bounded calendarView reads
    delta: str

    def dump(self) -> str:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "mailbox": self.mailbox,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "covered": self.covered.isoformat(),
                "delta": self.delta,
            }
        )


def load_state(state: str | None, mailbox: str) -> DeltaState | None:
    """The saved state, or None when absent, unreadable or for another mailbox."""
    if not state:
        return None
    try:
        saved = json.loads(state)
        if (
            saved.get("v") not in (1, STATE_VERSION)
            or saved.get("mailbox") != mailbox
            or not isinstance(saved.get("delta"), str)
        ):
            return None
        start = _aware(datetime.fromisoformat(saved["start"]))
        end = _aware(datetime.fromisoformat(saved["end"]))
        covered = _aware(datetime.fromisoformat(saved.get("covered") or saved["end"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not start < end <= covered:
        return None
    return DeltaState(mailbox, start, end, covered, saved["delta"])


def max_extension(mailbox: str) -> timedelta:
    """How far bounded reads may extend a delta range before a new round (per mailbox)."""
    spread = zlib.crc32(mailbox.encode()) % EXTENSION_SPREAD_DAYS
    return MIN_EXTENSION + timedelta(days=spread)


def next_midnight(moment: datetime) -> datetime:
    """``moment`` rounded up to a UTC midnight (a midnight stays as it is)."""
    utc = moment.astimezone(UTC)
    midnight = datetime.combine(utc.date(), time(), tzinfo=UTC)
    return midnight if midnight == utc else midnight + timedelta(days=1)


def plan(saved: DeltaState, start: datetime, end: datetime) -> datetime | None:
    """The new ``covered`` for a window [start, end), or None when a new delta round is due."""
    if start < saved.start or start >= saved.end:
        return None  # the window moved back, or past the whole delta range
    if end <= saved.covered:
        return saved.covered
    covered = next_midnight(end)
    if covered - saved.end > max_extension(saved.mailbox):
        return None
    return covered


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive time in state")
    return moment.astimezone(UTC)
