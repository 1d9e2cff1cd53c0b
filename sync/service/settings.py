"""The service's tunables: ``ServiceSettings``, checked when built.

Horizon and lookback of the planning window, poll/tick/re-plan intervals
(per source where push makes a source's safety poll rarer), how many
switchboard calls run at once and how failed ones are retried, the per-source
backoff after failed syncs (both ``connectors.retry.Backoff``, the one backoff
formula), and how long (real time) a poll waits for the calendar syncs it started.

Two windows: ``window(now)`` is the planning window (exact, moves with the clock);
``sync_window(now)`` is the wider one calendars are read for, whose ends move once a
UTC day, so an unchanged calendar answers "nothing changed" (a stat for an ICS file)
instead of being re-read for a window a few seconds later.
``sync.cli.runtime`` maps the config file onto these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from connectors.calendars.base import SyncWindow
from connectors.retry import Backoff
from rules.errors import ConfigError, Problem

#: a failed switchboard call: 2 s, 4 s, 8 s ... up to 5 min, each cut by up to half at random
RETRY_BACKOFF = Backoff(base=2.0, cap=300.0, jitter=0.5)
#: a failed calendar sync: 30 s, 1 min, 2 min ... up to 1 h, each cut by up to a quarter
SOURCE_BACKOFF = Backoff(base=30.0, cap=3600.0, jitter=0.25)


@dataclass(frozen=True)
class ServiceSettings:
    """Tunables of the service (the lead's config maps onto these)."""

    horizon: timedelta = timedelta(days=14)
    lookback: timedelta = timedelta(days=1)
    poll_interval: timedelta = timedelta(seconds=60)
    source_intervals: Mapping[str, timedelta] = field(default_factory=dict)
    tick_interval: timedelta = timedelta(seconds=30)
    replan_interval: timedelta = timedelta(minutes=15)
    concurrency: int = 16
    #: the wait before a failed switchboard call (action or publication) is tried again
    retry_backoff: Backoff = RETRY_BACKOFF
    #: tries of one action or publication before a retryable failure is final
    retry_attempts: int = 10
    #: the wait before a calendar source is polled again after a failed sync
    source_backoff: Backoff = SOURCE_BACKOFF
    late_after: timedelta = timedelta(seconds=60)
    #: how long a poll waits for the syncs it started (real time; the rest finish in the background)
    sync_wait: timedelta = timedelta(seconds=2)
    #: the same at start-up, before the catch-up runs on whatever calendars were read by then
    startup_sync_wait: timedelta = timedelta(seconds=5)
    #: calendar syncs running at once
    sync_workers: int = 8
    #: a sync running this long no longer counts against ``sync_workers``
    sync_stuck_after: timedelta = timedelta(seconds=60)
    #: how often the switchboard's referrals are compared with the published ones
    referral_check_interval: timedelta = timedelta(minutes=5)
    #: how long a user the switchboard does not know (404 unknown_user) waits between tries
    unknown_user_backoff: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in (
            "horizon",
            "poll_interval",
            "tick_interval",
            "replan_interval",
            "sync_stuck_after",
            "unknown_user_backoff",
            "referral_check_interval",
        ):
            if getattr(self, name) <= timedelta(0):
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("sync_wait", "startup_sync_wait"):
            if getattr(self, name) < timedelta(0):
                problems.append(f"{name} must not be negative, got {getattr(self, name)}")
        if self.sync_workers < 1:
            problems.append(f"sync_workers must be at least 1, got {self.sync_workers}")
        if self.lookback < timedelta(0):
            problems.append(f"lookback must not be negative, got {self.lookback}")
        for source, interval in self.source_intervals.items():
            if interval <= timedelta(0):
                problems.append(f"source_intervals[{source}] must be positive, got {interval}")
        if self.concurrency < 1:
            problems.append(f"concurrency must be at least 1, got {self.concurrency}")
        if self.retry_attempts < 1:
            problems.append(f"retry_attempts must be at least 1, got {self.retry_attempts}")
        for name in ("retry_backoff", "source_backoff"):
            problems += _backoff_problems(name, getattr(self, name))
        if problems:
            raise ConfigError([Problem("service settings", None, None, p) for p in problems])

    def interval_for(self, source_id: str) -> timedelta:
        return self.source_intervals.get(source_id, self.poll_interval)

    def window(self, now: datetime) -> SyncWindow:
        """The planning window at ``now``: ``lookback`` before it to ``horizon`` after it."""
        return SyncWindow(now - self.lookback, now + self.horizon)

    def sync_window(self, now: datetime) -> SyncWindow:
        """The window calendars are read for at ``now``: it holds ``window(now)`` and its
        ends move only at UTC midnight (start: the midnight at or before ``now - lookback``;
        end: ``SYNC_MARGIN`` after the midnight at or before ``now + horizon``).

        So a source's sync state stays valid for a day and an unchanged calendar costs
        only the check that it is unchanged; the planner gets ``window(now)``'s events
        (``Service`` drops the rest).
        """
        plan = self.window(now)
        return SyncWindow(_midnight(plan.start), _midnight(plan.end) + SYNC_MARGIN)


#: how far past the planning horizon calendars are read (the sync window's end moves daily)
SYNC_MARGIN = timedelta(days=2)


def _midnight(moment: datetime) -> datetime:
    """The UTC midnight at or before ``moment``."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), UTC)


def _backoff_problems(name: str, backoff: Backoff) -> list[str]:
    problems = []
    if backoff.base <= 0 or backoff.cap <= 0:
        problems.append(f"{name} base and cap must be positive, got {backoff.base}, {backoff.cap}")
    if not 0 <= backoff.jitter < 1:
        problems.append(f"{name} jitter must be at least 0 and less than 1, got {backoff.jitter}")
    return problems
