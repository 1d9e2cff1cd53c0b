"""The contract every calendar source meets, as a test class each connector's tests subclass.

``CalendarSourceContract`` holds the tests; a platform's ``Test…`` subclass (in
``test_<platform>_contract.py``) implements the small hooks that drive its server
double: build a source over a calendar holding given events, edit one event,
remove one occurrence of a series, make the sync state expire, make the server
throttle with ``Retry-After``, make it answer malformed data. The base itself is
not collected (its name does not start with ``Test``).

Every platform is given the same calendar, described here in neutral terms
(``Meeting``, ``Series``): two meetings and a daily standup in the week of
``WINDOW``, plus one meeting the week before that must never be listed. The
tests check what ``connectors.calendars.base.CalendarSource`` promises:

- the first sync (``state`` None) is ``full`` and lists exactly the window's events;
- after an edit or a removed occurrence, the caller's view (each result applied as
  the service applies it: a full result replaces, an incremental one upserts and
  removes) equals the calendar; an ``incremental`` platform sends only the change;
- an expired sync state ends in a full resync with the right events: either the
  source resyncs itself or it raises ``SyncStateExpired`` (not retryable) and the
  caller's ``state=None`` call resyncs (``resyncs_expired_state`` says which);
- a state the source cannot read gives a full sync, a naive window is refused;
- throttling (``Retry-After: N``) either is waited out in-line, at most
  ``THROTTLE_RETRIES`` times, or is raised at once (``waits_out_throttling``);
  when it does not stop, the error ``is_retryable`` with ``retry_after == N``;
- a malformed answer is a ``CalendarError`` naming the source, never a library
  exception.

A hook the platform cannot express calls ``pytest.skip`` with the reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from connectors.calendars.base import CalendarSource, Mailbox, SyncResult, SyncWindow
from rules.errors import CalendarError, CalrefError, Retryable, SyncStateExpired, is_retryable
from rules.model import CalendarEvent

MAILBOX = Mailbox(user_id="alice", email="alice@example.se", org_domains=("example.se",))
WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
THROTTLE_RETRIES = 2
"""How many times the subclasses' sources retry a throttled request in-line."""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2026, UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Meeting:
    """A single meeting; ``name`` is unique in the calendar (the platform's id or file)."""

    name: str
    subject: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Series:
    """A daily series of ``count`` occurrences from ``first``, each ``length`` long."""

    name: str
    subject: str
    first: datetime
    length: timedelta
    count: int

    def starts(self) -> list[datetime]:
        return [self.first + timedelta(days=n) for n in range(self.count)]


BUDGET = Meeting("budget", "Budget", at(3, 13), at(3, 14))
REVIEW = Meeting("review", "Review", at(5, 10), at(5, 11))
RETRO = Meeting("retro", "Retro", at(2, 9) - timedelta(days=6), at(2, 10) - timedelta(days=6))
STANDUP = Series("standup", "Standup", at(2, 8), timedelta(minutes=15), 5)
MEETINGS = (BUDGET, REVIEW, RETRO)
SERIES = (STANDUP,)
MOVED_BUDGET = replace(BUDGET, subject="Budget (moved)", start=at(4, 9), end=at(4, 10))
WEDNESDAY = at(4, 8)  # the standup occurrence that is removed

Shown = tuple[str, datetime, datetime]


def expected(
    meetings: Sequence[Meeting] = MEETINGS,
    series: Sequence[Series] = SERIES,
    removed: Sequence[datetime] = (),
) -> list[Shown]:
    """What the calendar holds in ``WINDOW``: (subject, start, end), sorted."""
    rows = [(m.subject, m.start, m.end) for m in meetings]
    rows += [(s.subject, t, t + s.length) for s in series for t in s.starts() if t not in removed]
    return sorted(row for row in rows if row[1] < WINDOW.end and row[2] > WINDOW.start)


def shown(events: Sequence[CalendarEvent]) -> list[Shown]:
    """Events as the contract compares them: ids and keys differ per platform."""
    rows: list[Shown] = []
    for event in events:
        assert isinstance(event.start, datetime) and isinstance(event.end, datetime)
        rows.append((event.subject, event.start, event.end))
    return sorted(rows)


class CallerView:
    """What the caller knows of the calendar, each result applied as the service does."""

    def __init__(self) -> None:
        self.events: dict[str, CalendarEvent] = {}

    def apply(self, result: SyncResult) -> SyncResult:
        if result.full:
            self.events = {}
        for key in result.removed:
            self.events.pop(key, None)
        self.events.update({e.key: e for e in result.events})
        return result

    def shown(self) -> list[Shown]:
        return shown(list(self.events.values()))

    def key_of(self, start: datetime) -> str:
        (key,) = [k for k, e in self.events.items() if e.start == start]
        return key


class CalendarSourceContract(ABC):
    """The tests every ``CalendarSource`` passes; subclasses implement the hooks."""

    incremental: ClassVar[bool]
    """A sync after the first sends only what changed (``full=False``)."""
    resyncs_expired_state: ClassVar[bool]
    """An expired state is resynced by the source itself, not raised as ``SyncStateExpired``."""
    waits_out_throttling: ClassVar[bool]
    """A throttled request is retried in-line after ``Retry-After`` (else raised at once)."""

    sleeps: list[float]
    """The waits the source asked for: subclasses build it with ``sleep=self.sleeps.append``."""

    @pytest.fixture(autouse=True)
    def _virtual_sleep(self) -> None:
        self.sleeps = []

    # -- the hooks ------------------------------------------------------------------------

    @abstractmethod
    def make_source(self, meetings: Sequence[Meeting], series: Sequence[Series]) -> CalendarSource:
        """A source over a fresh calendar of ``MAILBOX`` holding these events.

        It retries throttled requests at most ``THROTTLE_RETRIES`` times and sleeps
        with ``self.sleeps.append``.
        """

    @abstractmethod
    def edit(self, meeting: Meeting) -> None:
        """Replace the meeting of the same ``name`` with this one (moved, renamed)."""

    @abstractmethod
    def remove_occurrence(self, series: Series, start: datetime) -> None:
        """Remove the occurrence of ``series`` starting at ``start`` (the rest stays)."""

    @abstractmethod
    def expire_state(self, state: str) -> str:
        """Make the server forget the sync state ``state``; returns the state to sync with."""

    @abstractmethod
    def throttle(self, retry_after: int, times: int) -> None:
        """Answer the next ``times`` requests as throttled, asking to wait ``retry_after`` s."""

    @abstractmethod
    def answer_malformed(self) -> None:
        """Answer every later request with a body not in the platform's format (a proxy page)."""

    # -- helpers --------------------------------------------------------------------------

    def first_sync(self) -> tuple[CalendarSource, CallerView, SyncResult]:
        source = self.make_source(MEETINGS, SERIES)
        view = CallerView()
        result = view.apply(source.sync(WINDOW, None))
        assert result.full and result.state is not None
        return source, view, result

    def assert_names_source(self, err: CalendarError, source: CalendarSource) -> None:
        assert err.source == source.id
        assert str(err).startswith(f"{source.id}: ")

    def retry_after(self, err: CalendarError) -> float | None:
        """The wait a retryable error asks for (the error must be retryable)."""
        assert is_retryable(err) and isinstance(err, Retryable)
        return err.retry_after

    # -- the contract ---------------------------------------------------------------------

    def test_first_sync_lists_exactly_the_events_in_the_window(self) -> None:
        source, view, result = self.first_sync()
        assert shown(result.events) == expected()
        assert result.removed == [] and result.warnings == []
        assert len(view.events) == len(result.events)  # keys are unique
        assert {e.source for e in result.events} == {source.id}
        standups = {e.uid for e in result.events if e.subject == STANDUP.subject}
        assert len(standups) == 1  # the occurrences of one series share a uid

    def test_a_sync_without_changes_changes_nothing(self) -> None:
        source, view, first = self.first_sync()
        before = dict(view.events)
        result = view.apply(source.sync(WINDOW, first.state))
        assert view.events == before
        if self.incremental:
            assert (result.full, result.events, result.removed) == (False, [], [])

    def test_an_edited_event_is_seen_by_the_next_sync(self) -> None:
        source, view, first = self.first_sync()
        self.edit(MOVED_BUDGET)
        result = view.apply(source.sync(WINDOW, first.state))
        assert view.shown() == expected((MOVED_BUDGET, REVIEW, RETRO))
        if self.incremental:
            assert not result.full
            assert (shown(result.events), result.removed) == (expected((MOVED_BUDGET,), ()), [])
        else:
            assert result.full

    def test_a_removed_occurrence_disappears(self) -> None:
        source, view, first = self.first_sync()
        gone = view.key_of(WEDNESDAY)
        before = dict(view.events)
        self.remove_occurrence(STANDUP, WEDNESDAY)
        result = view.apply(source.sync(WINDOW, first.state))
        assert view.shown() == expected(removed=(WEDNESDAY,))
        assert gone not in view.events
        if self.incremental:
            assert not result.full and result.removed == [gone]
            # what is sent again (a CalDAV resource re-expanded) is unchanged
            assert all(before.get(e.key) == e for e in result.events)

    def test_an_expired_sync_state_ends_in_a_full_resync_with_the_right_events(self) -> None:
        source, view, first = self.first_sync()
        assert first.state is not None
        self.edit(MOVED_BUDGET)
        state = self.expire_state(first.state)
        if self.resyncs_expired_state:
            result = view.apply(source.sync(WINDOW, state))
        else:
            with pytest.raises(SyncStateExpired) as caught:
                source.sync(WINDOW, state)
            self.assert_names_source(caught.value, source)
            assert not is_retryable(caught.value)
            result = view.apply(source.sync(WINDOW, None))  # what the service does next
        assert result.full
        assert view.shown() == expected((MOVED_BUDGET, REVIEW, RETRO))
        self.remove_occurrence(STANDUP, WEDNESDAY)  # the new state follows changes again
        view.apply(source.sync(WINDOW, result.state))
        assert view.shown() == expected((MOVED_BUDGET, REVIEW, RETRO), removed=(WEDNESDAY,))

    def test_a_state_the_source_cannot_read_gives_a_full_sync(self) -> None:
        source = self.make_source(MEETINGS, SERIES)
        for state in ("not json at all", "{}"):
            result = source.sync(WINDOW, state)
            assert result.full and shown(result.events) == expected()

    def test_a_naive_window_is_refused(self) -> None:
        source = self.make_source(MEETINGS, SERIES)
        naive = SyncWindow(datetime(2026, 3, 2), datetime(2026, 3, 9))
        with pytest.raises(CalrefError, match="aware"):
            source.sync(naive, None)

    def test_a_short_throttle_honours_retry_after(self) -> None:
        source = self.make_source(MEETINGS, SERIES)
        self.throttle(retry_after=7, times=1)
        if self.waits_out_throttling:
            result = source.sync(WINDOW, None)
            assert self.sleeps == [7.0]
        else:
            with pytest.raises(CalendarError) as caught:
                source.sync(WINDOW, None)
            assert self.retry_after(caught.value) == 7.0
            self.assert_names_source(caught.value, source)
            assert self.sleeps == []
            result = source.sync(WINDOW, None)  # the next poll, after the wait
        assert result.full and shown(result.events) == expected()

    def test_throttling_that_does_not_stop_raises_a_retryable_error_with_retry_after(
        self,
    ) -> None:
        source, _, first = self.first_sync()
        self.throttle(retry_after=5, times=THROTTLE_RETRIES + 1)
        with pytest.raises(CalendarError) as caught:
            source.sync(WINDOW, first.state)
        assert self.retry_after(caught.value) == 5.0
        self.assert_names_source(caught.value, source)
        assert self.sleeps == ([5.0] * THROTTLE_RETRIES if self.waits_out_throttling else [])

    def test_a_malformed_answer_is_a_calendar_error_naming_the_source(self) -> None:
        source = self.make_source(MEETINGS, SERIES)
        self.answer_malformed()
        with pytest.raises(CalendarError) as caught:
            source.sync(WINDOW, None)
        self.assert_names_source(caught.value, source)
