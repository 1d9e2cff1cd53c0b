"""Calendar polling: when each source is due, one sync of it at a time, and backoff.

``Poller`` is held by ``sync.service.service.Service``. It keeps every source's
next poll in one heap (a due-queue: production's one polling loop in
``sync.service.scheduler`` starts what is due with ``dispatch_due``, so 10,000
idle sources cost nothing between their polls; ``spread`` spaces the polls after
start-up over the interval), and each source's sync bookkeeping in memory, so an
unchanged poll (an ICS file's stat) reads nothing from the store and writes only
its time, batched with the others' (``flush``). It polls each
calendar source whose interval has passed, each sync in the background
(``sync.service.source_runner``: never two syncs of one source at once, and a slow or
hung source never holds up the others or its caller for longer than a
bounded wait), falls back to a full sync when the source's sync
state expired, and after a failure records it and backs the source off
(``settings.source_backoff``, at least as long as a throttling source asked).
It tells its caller which users' calendars changed; a sync that outlasts the
caller's wait reports its change later, to ``on_late_change``.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import random
import threading
from collections.abc import Callable, Mapping
from concurrent import futures
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime, timedelta

from connectors.calendars.base import CalendarSource, SyncResult
from connectors.clock import Clock
from rules.errors import CalendarError, CalrefError, StoreError, SyncStateExpired, ThrottledError
from sync.service.settings import ServiceSettings
from sync.service.source_runner import SourceRunner
from sync.store import Store
from sync.store.records import AuditKind, Outcome, SourceState

log = logging.getLogger(__name__)


class Poller:
    """Polls the service's calendar sources; ``settings`` may be replaced at run time.

    It keeps each source's sync bookkeeping in memory (read from the store once) and
    its next poll time in a heap, so neither a due check nor an unchanged poll reads
    the store. A poll that found nothing changed is not written one by one: its time
    (``last_attempt``, ``last_success``) is written with the others' by ``flush``.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        sources: Mapping[str, tuple[str, CalendarSource]],
        settings: ServiceSettings,
        *,
        rng: random.Random,
        on_late_change: Callable[[str], None],
    ) -> None:
        self.store = store
        self.clock = clock
        #: source id -> (user id, source)
        self.sources = sources
        self.settings = settings
        self.rng = rng
        self.on_late_change = on_late_change
        self.runner = SourceRunner(settings.sync_workers, settings.sync_stuck_after.total_seconds())
        self._lock = threading.Lock()
        self._known: dict[str, SourceState] | None = None  # read from the store on first use
        self._next: dict[str, datetime] = {}  # source id -> its next poll
        self._heap: list[tuple[datetime, int, str]] = []  # (next poll, seq, source id)
        self._seq = itertools.count()
        self._touched: dict[str, datetime] = {}  # unchanged polls not yet written

    def close(self) -> None:
        """Start no new sync (syncs running go on); write the unchanged polls' times."""
        self.runner.close()
        with contextlib.suppress(CalrefError):
            self.flush()

    # -- when each source is due -----------------------------------------------------------------

    def _load(self) -> dict[str, SourceState]:
        """The sources' bookkeeping, read from the store on first use (lock held)."""
        if self._known is None:
            stored = {s.id: s for s in self.store.sources()}
            now = self.clock.now()
            self._known = {}
            for source_id, (user_id, _source) in self.sources.items():
                known = stored.get(source_id) or _new_state(source_id, user_id)
                self._known[source_id] = known
                at = now
                if known.last_attempt is not None:
                    at = known.last_attempt + self.settings.interval_for(source_id)
                if known.backoff_until is not None:
                    at = max(at, known.backoff_until)
                self._schedule(source_id, at)
        return self._known

    def forget(self) -> None:
        """Drop the bookkeeping kept in memory: another process may have polled meanwhile
        (this one lost the lease), so the next use reads it from the store again."""
        with self._lock:
            self._known = None
            self._next.clear()
            self._heap.clear()

    def _state(self, source_id: str) -> SourceState:
        with self._lock:
            return self._load()[source_id]

    def _schedule(self, source_id: str, at: datetime) -> None:
        """Set the source's next poll (lock held; older heap entries become stale)."""
        self._next[source_id] = at
        heapq.heappush(self._heap, (at, next(self._seq), source_id))

    def reschedule(self, source_id: str, at: datetime) -> None:
        """Poll ``source_id`` next at ``at`` (its interval changed)."""
        with self._lock:
            self._load()
            self._schedule(source_id, at)

    def spread(self) -> None:
        """Spread the next polls evenly over each source's interval from now, so that the
        sources read together at start-up are not all due again at the same moment."""
        now = self.clock.now()
        with self._lock:
            self._load()
            ids = sorted(self.sources)
            for i, source_id in enumerate(ids):
                step = self.settings.interval_for(source_id) * (i + 1) / len(ids)
                self._schedule(source_id, now + step)

    def due_at(self, source_id: str) -> datetime | None:
        """When ``source_id`` is polled next; None for a source this poller does not have."""
        with self._lock:
            self._load()
            return self._next.get(source_id)

    def next_poll(self) -> datetime | None:
        """When the next source is due; None without sources."""
        with self._lock:
            self._load()
            heap = self._heap
            while heap and self._next.get(heap[0][2]) != heap[0][0]:
                heapq.heappop(heap)  # stale: the source was rescheduled since
            return heap[0][0] if heap else None

    def dispatch_due(self) -> int:
        """Start a background sync of every source due now (the production loop's step);
        each reports a change to ``on_late_change``. The number started."""
        now = self.clock.now()
        due: list[str] = []
        with self._lock:
            known = self._load()
            heap = self._heap
            while heap and heap[0][0] <= now:
                at, _seq, source_id = heapq.heappop(heap)
                if self._next.get(source_id) != at:
                    continue
                backoff = known[source_id].backoff_until
                if backoff is not None and backoff > now:
                    self._schedule(source_id, backoff)
                    continue
                # the sync sets the next poll when it starts; this one holds if it cannot
                self._schedule(source_id, at + self.settings.interval_for(source_id))
                due.append(source_id)
        started = 0
        for source_id in due:
            future = self.runner.submit(source_id, functools.partial(self._sync, source_id))
            if future is not None:
                future.add_done_callback(functools.partial(self._synced_late, source_id))
                started += 1
        return started

    # -- polling -----------------------------------------------------------------------------

    def poll_due(self, *, force: bool = False, wait: float | None = None) -> set[str]:
        """Poll every source whose interval has passed (all with ``force``); the users changed.

        Each sync runs in the background (``SourceRunner``); this waits at most
        ``wait`` seconds (default ``settings.sync_wait``) for the syncs it started
        and returns the users whose calendars changed meanwhile. A sync still
        running then finishes in the background and reports to ``on_late_change``;
        a source whose sync is already running (another caller's) is skipped.
        """
        now = self.clock.now()
        with self._lock:
            known = self._load()
            due = [
                source_id
                for source_id in self.sources
                if not _backing_off(known[source_id], now)
                and (force or self._next[source_id] <= now)
            ]
        started: dict[str, Future[bool]] = {}
        for source_id in due:
            future = self.runner.submit(source_id, functools.partial(self._sync, source_id))
            if future is not None:
                started[source_id] = future
        limit = self.settings.sync_wait.total_seconds() if wait is None else wait
        futures.wait(list(started.values()), timeout=limit)
        changed: set[str] = set()
        for source_id, future in started.items():
            user_id = self.sources[source_id][0]
            if not future.done():
                log.warning(
                    "source %s: still syncing after %.1f s; carrying on without it",
                    source_id,
                    limit,
                )
                future.add_done_callback(functools.partial(self._synced_late, source_id))
            elif _outcome(source_id, future):
                changed.add(user_id)
        self.flush()
        return changed

    def poll_now(self, source_id: str, *, wait: bool = True) -> bool:
        """Poll one source now (unless backing off); whether its events changed.

        If the source is syncing already, this asks for one more sync after that one
        (the change that prompted this call may have come after it began). Waits at
        most ``settings.sync_wait`` for the result: False when it is not in by then
        (the sync finishes and reports to ``on_late_change``). Without ``wait``: a
        source already syncing is left alone, and the sync reports to
        ``on_late_change``; False at once.
        """
        future = self.runner.submit(
            source_id, functools.partial(self._sync_unless_backing_off, source_id), again=wait
        )
        if future is None:
            return False
        if not wait:
            future.add_done_callback(functools.partial(self._synced_late, source_id))
            return False
        limit = self.settings.sync_wait.total_seconds()
        try:
            return future.result(timeout=limit)
        except futures.TimeoutError:
            future.add_done_callback(functools.partial(self._synced_late, source_id))
            return False
        except futures.CancelledError:
            return False

    def flush(self) -> int:
        """Write the times of the unchanged polls since the last flush (one transaction)."""
        with self._lock:
            touched, self._touched = self._touched, {}
        if touched:
            self.store.touch_sources(sorted(touched.items()))
        return len(touched)

    def sync_in_background(self, source_id: str) -> Future[bool] | None:
        """Start one sync of ``source_id`` (unless it backs off); its future, None when a
        sync of it is running already. Whether it changed events: ``outcome``."""
        return self.runner.submit(
            source_id, functools.partial(self._sync_unless_backing_off, source_id)
        )

    @staticmethod
    def outcome(source_id: str, future: Future[bool]) -> bool:
        """Whether a finished sync changed events; a store failure is raised, others logged."""
        return _outcome(source_id, future)

    def _sync_unless_backing_off(self, source_id: str) -> bool:
        if _backing_off(self._state(source_id), self.clock.now()):
            return False
        return self._sync(source_id)

    def _synced_late(self, source_id: str, future: Future[bool]) -> None:
        """A sync that outlasted its caller's wait ended: report its user if it changed."""
        try:
            if _outcome(source_id, future):
                self.on_late_change(self.sources[source_id][0])
        except Exception:
            log.exception("source %s: re-planning after a late sync failed", source_id)

    def _sync(self, source_id: str) -> bool:
        user_id, source = self.sources[source_id]
        now = self.clock.now()
        with self._lock:
            known = self._load()[source_id]
            self._schedule(source_id, now + self.settings.interval_for(source_id))
        window = self.settings.sync_window(now)
        try:
            try:
                result = source.sync(window, known.state)
            except SyncStateExpired:
                log.info("source %s: sync state expired, doing a full sync", source_id)
                result = source.sync(window, None)
        except Exception as err:
            self._source_failed(source_id, user_id, err, known, now)
            return False
        ok = replace(
            known,
            state=result.state,
            last_attempt=now,
            last_success=now,
            failures=0,
            backoff_until=None,
            last_error=None,
        )
        if _unchanged(result, known):
            with self._lock:
                self._load()[source_id] = ok
                self._touched[source_id] = now
            return False
        with self._lock:
            self._touched.pop(source_id, None)
        changed = self.store.apply_sync(source_id, user_id, result, now)
        with self._lock:
            self._load()[source_id] = ok
        return changed

    def _source_failed(
        self, source_id: str, user_id: str, err: Exception, known: SourceState, now: datetime
    ) -> None:
        failures = known.failures + 1
        if not isinstance(err, CalrefError):
            log.exception("source %s: unexpected error", source_id)
            message = f"{source_id}: unexpected {type(err).__name__}: {err}"
        else:
            message = str(err)
        retry_after = err.retry_after if isinstance(err, ThrottledError) else None
        delay = self.settings.source_backoff.delay(failures, retry_after, self.rng)
        until = now + timedelta(seconds=delay)
        with self._lock:
            self._touched.pop(source_id, None)
            self._load()[source_id] = replace(
                known,
                last_attempt=now,
                last_error=message,
                last_error_at=now,
                failures=failures,
                backoff_until=until,
            )
            self._schedule(source_id, max(now + self.settings.interval_for(source_id), until))
        self.store.record_sync_failure(source_id, user_id, message, now, until)
        kind = "throttled" if isinstance(err, ThrottledError) else "failed"
        log.warning(
            "source %s %s (failure %d), next try after %s: %s",
            source_id,
            kind,
            failures,
            until.isoformat(),
            message,
        )
        if not isinstance(err, CalendarError):
            self.store.audit(now, user_id, AuditKind.SOURCE, Outcome.ERROR, message)


def _unchanged(result: SyncResult, known: SourceState) -> bool:
    """Whether a sync found nothing to store but its time: no events, same state, and the
    source was not failing (a recovery is written at once, for ``calref status``)."""
    return (
        not result.full
        and not result.events
        and not result.removed
        and result.state == known.state
        and known.failures == 0
        and known.last_error is None
        and known.last_success is not None
    )


def _new_state(source_id: str, user_id: str) -> SourceState:
    return SourceState(source_id, user_id, None, None, None, None, None, 0, None)


def _outcome(source_id: str, future: Future[bool]) -> bool:
    """Whether a finished sync changed events; a store failure is raised, others logged."""
    if future.cancelled():
        return False
    err = future.exception()
    if err is None:
        return future.result()
    if isinstance(err, StoreError):
        raise err
    log.error("source %s: sync failed unexpectedly: %r", source_id, err)
    return False


def _backing_off(known: SourceState | None, now: datetime) -> bool:
    return known is not None and known.backoff_until is not None and known.backoff_until > now
