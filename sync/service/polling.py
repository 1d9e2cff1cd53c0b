"""Calendar polling: when each source is due, one sync of it at a time, and backoff.

``Poller`` is held by ``sync.service.service.Service``. It polls each
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

import functools
import logging
import random
from collections.abc import Callable, Mapping
from concurrent import futures
from concurrent.futures import Future
from datetime import datetime, timedelta

from connectors.calendars.base import CalendarSource
from connectors.clock import Clock
from rules.errors import CalendarError, CalrefError, StoreError, SyncStateExpired, ThrottledError
from sync.service.settings import ServiceSettings
from sync.service.source_runner import SourceRunner
from sync.store import Store
from sync.store.records import AuditKind, Outcome, SourceState

log = logging.getLogger(__name__)


class Poller:
    """Polls the service's calendar sources; ``settings`` may be replaced at run time."""

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

    def close(self) -> None:
        """Start no new sync (syncs running go on)."""
        self.runner.close()

    def poll_due(self, *, force: bool = False, wait: float | None = None) -> set[str]:
        """Poll every source whose interval has passed (all with ``force``); the users changed.

        Each sync runs in the background (``SourceRunner``); this waits at most
        ``wait`` seconds (default ``settings.sync_wait``) for the syncs it started
        and returns the users whose calendars changed meanwhile. A sync still
        running then finishes in the background and reports to ``on_late_change``;
        a source whose sync is already running (another caller's) is skipped.
        """
        now = self.clock.now()
        state = {s.id: s for s in self.store.sources()}
        started: dict[str, Future[bool]] = {}
        for source_id in self.sources:
            if not self._due(source_id, state.get(source_id), now, force=force):
                continue
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
        return changed

    def poll_now(self, source_id: str, *, wait: bool = True) -> bool:
        """Poll one source now (unless backing off); whether its events changed.

        If the source is syncing already, this asks for one more sync after that one
        (the change that prompted this call may have come after it began). Waits at
        most ``settings.sync_wait`` for the result: False when it is not in by then
        (the sync finishes and reports to ``on_late_change``). Without ``wait`` (the
        scheduler's poll job): a source already syncing is left alone, and the sync
        reports to ``on_late_change``; False at once.
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

    def next_poll(self) -> datetime | None:
        """When the next source is due (now for one never polled); None without sources."""
        state = {s.id: s for s in self.store.sources()}
        times = []
        for source_id in self.sources:
            known = state.get(source_id)
            if known is None or known.last_attempt is None:
                return self.clock.now()
            nxt = known.last_attempt + self.settings.interval_for(source_id)
            if known.backoff_until is not None:
                nxt = max(nxt, known.backoff_until)
            times.append(nxt)
        return min(times, default=None)

    def _sync_unless_backing_off(self, source_id: str) -> bool:
        if _backing_off(self.store.source(source_id), self.clock.now()):
            return False
        return self._sync(source_id)

    def _synced_late(self, source_id: str, future: Future[bool]) -> None:
        """A sync that outlasted its caller's wait ended: report its user if it changed."""
        try:
            if _outcome(source_id, future):
                self.on_late_change(self.sources[source_id][0])
        except Exception:
            log.exception("source %s: re-planning after a late sync failed", source_id)

    def _due(
        self, source_id: str, known: SourceState | None, now: datetime, *, force: bool
    ) -> bool:
        """Whether a poll of the source is due at ``now`` (never while it backs off)."""
        if _backing_off(known, now):
            return False
        return (
            force
            or known is None
            or known.last_attempt is None
            or known.last_attempt + self.settings.interval_for(source_id) <= now
        )

    def _sync(self, source_id: str) -> bool:
        user_id, source = self.sources[source_id]
        now = self.clock.now()
        window = self.settings.window(now)
        known = self.store.ensure_source(source_id, user_id)
        try:
            try:
                result = source.sync(window, known.state)
            except SyncStateExpired:
                log.info("source %s: sync state expired, doing a full sync", source_id)
                result = source.sync(window, None)
        except Exception as err:
            self._source_failed(source_id, user_id, err, known.failures + 1, now)
            return False
        return self.store.apply_sync(source_id, user_id, result, now)

    def _source_failed(
        self, source_id: str, user_id: str, err: Exception, failures: int, now: datetime
    ) -> None:
        if not isinstance(err, CalrefError):
            log.exception("source %s: unexpected error", source_id)
            message = f"{source_id}: unexpected {type(err).__name__}: {err}"
        else:
            message = str(err)
        retry_after = err.retry_after if isinstance(err, ThrottledError) else None
        delay = self.settings.source_backoff.delay(failures, retry_after, self.rng)
        until = now + timedelta(seconds=delay)
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
