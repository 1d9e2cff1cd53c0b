"""Calendar polling for ``Service``: when a source is due, one sync at a time, and backoff.

``SourcePolling`` is a mixin of ``sync.service.Service`` (its state, such as
``sources``, ``settings`` and the per-source locks, lives on the service,
whose ``settings`` the scheduler may replace at run time). It polls each
calendar source whose interval has passed, never two syncs of one source at
once (``_source_turn``), falls back to a full sync when the source's sync
state expired, and after a failure records it and backs the source off
exponentially (with jitter, at least as long as a throttling source asked).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from connectors.calendars.base import CalendarSource, SyncWindow
from rules.errors import CalendarError, CalrefError, SyncStateExpired, ThrottledError
from sync.clock import Clock
from sync.planning import PlanDiff
from sync.settings import ServiceSettings
from sync.store import Store
from sync.store.records import SourceState

# The service's logger: these lines said "sync.service" before polling had its own module.
log = logging.getLogger("sync.service")


class SourcePolling:
    """Polling of the service's calendar sources (mixin of ``Service``)."""

    store: Store
    clock: Clock
    settings: ServiceSettings
    rng: random.Random
    #: source id -> (user id, source)
    sources: dict[str, tuple[str, CalendarSource]]
    _source_locks: dict[str, threading.Lock]

    if TYPE_CHECKING:  # provided by Service and its lease mixin

        def window(self, now: datetime | None = None) -> SyncWindow: ...
        def replan(self, user_id: str) -> PlanDiff | None: ...
        def replan_users(self, user_ids: Sequence[str]) -> dict[str, PlanDiff | None]: ...
        def _changed(self) -> None: ...
        def _leading_now(self) -> bool: ...

    def poll_sources(self, *, force: bool = False) -> set[str]:
        """Poll every source whose interval has passed (all with ``force``); re-plan changes.

        A source another thread is syncing is waited for, then polled only if it
        is still due (the other sync usually just made it not due).
        """
        now = self.clock.now()
        state = {s.id: s for s in self.store.sources()}
        changed: set[str] = set()
        for source_id, (user_id, _source) in self.sources.items():
            if not self._due(source_id, state.get(source_id), now, force=force):
                continue
            with self._source_turn(source_id) as waited:
                if waited and not self._due(
                    source_id, self._source_state(source_id), self.clock.now(), force=force
                ):
                    continue
                if self._sync(source_id):
                    changed.add(user_id)
        self.replan_users(sorted(changed))
        if changed:
            self._changed()
        return changed

    def poll_source(self, source_id: str) -> bool:
        """Poll one source now (unless backing off) and re-plan its user if events changed.

        If another thread is syncing the source, this waits for it and then syncs
        again: the change that prompted this call may have come after that sync began.
        """
        user_id, _source = self.sources[source_id]
        if not self._leading_now():
            return False
        with self._source_turn(source_id):
            known = self._source_state(source_id)
            if _backing_off(known, self.clock.now()):
                return False
            if not self._sync(source_id):
                return False
        self.replan(user_id)
        self._changed()
        return True

    @contextmanager
    def _source_turn(self, source_id: str) -> Iterator[bool]:
        """Hold the source's sync lock (syncs of one source never overlap).

        Yields True when the lock was busy, i.e. another sync of the source ran
        while this caller waited.
        """
        lock = self._source_locks[source_id]
        waited = not lock.acquire(blocking=False)
        if waited:
            lock.acquire()
        try:
            yield waited
        finally:
            lock.release()

    def _source_state(self, source_id: str) -> SourceState | None:
        return self.store.source(source_id)

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
        window = self.window(now)
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
        base = self.settings.source_backoff_base.total_seconds()
        seconds = min(self.settings.source_backoff_cap.total_seconds(), base * 2 ** (failures - 1))
        seconds *= 1 - 0.25 * self.rng.random()
        if isinstance(err, ThrottledError) and err.retry_after is not None:
            seconds = max(seconds, err.retry_after)
        until = now + timedelta(seconds=seconds)
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
            self.store.audit(now, user_id, "source", "error", message)


def _backing_off(known: SourceState | None, now: datetime) -> bool:
    return known is not None and known.backoff_until is not None and known.backoff_until > now
