"""Calendar polling for ``Service``: when a source is due, one sync at a time, and backoff.

``SourcePolling`` is a mixin of ``sync.service.service.Service`` (its state, such as
``sources``, ``settings`` and the source runner, lives on the service,
whose ``settings`` the scheduler may replace at run time). It polls each
calendar source whose interval has passed, each sync in the background
(``sync.service.source_runner``: never two syncs of one source at once, and a slow or
hung source never holds up the others or its caller for longer than a
bounded wait), falls back to a full sync when the source's sync
state expired, and after a failure records it and backs the source off
exponentially (with jitter, at least as long as a throttling source asked).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from connectors.calendars.base import CalendarSource, SyncWindow
from connectors.clock import Clock
from connectors.retry import Backoff
from rules.errors import CalendarError, CalrefError, StoreError, SyncStateExpired, ThrottledError
from sync.service.replan import PlanDiff
from sync.service.settings import ServiceSettings
from sync.service.source_runner import SourceRunner
from sync.store import Store
from sync.store.records import AuditKind, Outcome, SourceState

log = logging.getLogger(__name__)


class SourcePolling:
    """Polling of the service's calendar sources (mixin of ``Service``)."""

    store: Store
    clock: Clock
    settings: ServiceSettings
    rng: random.Random
    #: source id -> (user id, source)
    sources: dict[str, tuple[str, CalendarSource]]
    _runner: SourceRunner
    started: bool

    if TYPE_CHECKING:  # provided by Service and its lease mixin

        def window(self, now: datetime | None = None) -> SyncWindow: ...
        def replan(self, user_id: str) -> PlanDiff | None: ...
        def replan_users(self, user_ids: Sequence[str]) -> dict[str, PlanDiff | None]: ...
        def _changed(self) -> None: ...
        def _leading_now(self) -> bool: ...
        def store_intact(self) -> bool: ...

    def poll_sources(self, *, force: bool = False, wait: float | None = None) -> set[str]:
        """Poll every source whose interval has passed (all with ``force``); re-plan changes.

        Each sync runs in the background (``SourceRunner``); this waits at most
        ``wait`` seconds (default ``settings.sync_wait``) for the syncs it started
        and re-plans the users whose calendars changed meanwhile. A sync still
        running then finishes in the background and re-plans its user itself; a
        source whose sync is already running (another caller's) is skipped.
        """
        now = self.clock.now()
        state = {s.id: s for s in self.store.sources()}
        started: dict[str, Future[bool]] = {}
        for source_id in self.sources:
            if not self._due(source_id, state.get(source_id), now, force=force):
                continue
            future = self._runner.submit(source_id, functools.partial(self._sync, source_id))
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
        self.replan_users(sorted(changed))
        if changed:
            self._changed()
        return changed

    def poll_source(self, source_id: str, *, wait: bool = True) -> bool:
        """Poll one source now (unless backing off) and re-plan its user if events changed.

        If the source is syncing already, this asks for one more sync after that one
        (the change that prompted this call may have come after it began). Waits at
        most ``settings.sync_wait`` for the result: False when it is not in by then
        (the sync finishes and re-plans in the background). Without ``wait`` (the
        scheduler's poll job): a source already syncing is left alone, and the sync
        re-plans in the background; False at once.
        """
        user_id, _source = self.sources[source_id]
        if not self._leading_now() or not self.store_intact():
            return False
        future = self._runner.submit(
            source_id, functools.partial(self._sync_unless_backing_off, source_id), again=wait
        )
        if future is None:
            return False
        if not wait:
            future.add_done_callback(functools.partial(self._synced_late, source_id))
            return False
        limit = self.settings.sync_wait.total_seconds()
        try:
            changed = future.result(timeout=limit)
        except futures.TimeoutError:
            future.add_done_callback(functools.partial(self._synced_late, source_id))
            return False
        except futures.CancelledError:
            return False
        if not changed:
            return False
        self.replan(user_id)
        self._changed()
        return True

    def _sync_unless_backing_off(self, source_id: str) -> bool:
        if _backing_off(self._source_state(source_id), self.clock.now()):
            return False
        return self._sync(source_id)

    def _synced_late(self, source_id: str, future: Future[bool]) -> None:
        """A sync that outlasted its caller's wait ended: re-plan its user if it changed."""
        try:
            if not _outcome(source_id, future) or not self._leading_now() or not self.started:
                return
            self.replan(self.sources[source_id][0])
            self._changed()
        except Exception:
            log.exception("source %s: re-planning after a late sync failed", source_id)

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
        backoff = Backoff(
            self.settings.source_backoff_base.total_seconds(),
            self.settings.source_backoff_cap.total_seconds(),
            jitter=0.25,
        )
        retry_after = err.retry_after if isinstance(err, ThrottledError) else None
        until = now + timedelta(seconds=backoff.delay(failures, retry_after, self.rng))
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
