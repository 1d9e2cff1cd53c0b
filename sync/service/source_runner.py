"""Calendar syncs off the caller's thread: one calendar can never stall the others.

``SourceRunner`` runs each calendar source's sync in a daemon thread of its own,
at most one per source at a time, and at most ``limit`` holding a *slot* (so
that 1,000 calendars are not all downloaded at once). The caller gets a
``concurrent.futures.Future`` and waits for it as long as it likes (the
service waits a short, bounded time and lets a slow sync finish in the
background). A sync that has held its slot for longer than ``stuck_after``
gives the slot back, so a few hung calendars (a trickling feed, a parser
burning CPU) never starve the rest; its thread carries on until the source
itself gives up, and being a daemon thread it never keeps the process alive
at exit.

``submit`` of a source whose sync is running returns ``None`` (the caller
skips it), or with ``again`` a future for one follow-up sync that starts when
the running one ends (a push notification that arrived during a sync must be
read by a sync that starts after it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

log = logging.getLogger(__name__)

Job = Callable[[], bool]


@dataclass
class _Run:
    """One source's sync in flight, and the follow-up asked for meanwhile."""

    job: Job
    future: Future[bool]
    started: float = 0.0  # monotonic time it got its slot (0: still waiting for one)
    holds_slot: bool = False
    followup: tuple[Job, Future[bool]] | None = None


class SourceRunner:
    """Runs source syncs in background threads; thread-safe."""

    def __init__(self, limit: int = 8, stuck_after: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"source runner limit must be at least 1, got {limit}")
        self.limit = limit
        self.stuck_after = stuck_after
        self._slots = threading.Semaphore(limit)
        self._lock = threading.Lock()
        self._running: dict[str, _Run] = {}
        self._closed = False

    def submit(self, key: str, job: Job, *, again: bool = False) -> Future[bool] | None:
        """Start ``job`` (one sync of source ``key``) in the background.

        ``None`` when a sync of ``key`` is already running (and not ``again``) or the
        runner is closed; with ``again``, the future of a follow-up sync instead.
        """
        with self._lock:
            self._release_stuck()
            if self._closed:
                return None
            run = self._running.get(key)
            if run is not None:
                if not again:
                    return None
                if run.followup is None:
                    run.followup = (job, Future())
                return run.followup[1]
            run = _Run(job, Future())
            self._running[key] = run
        thread = threading.Thread(
            target=self._work, args=(key, run), name="calref-sync", daemon=True
        )
        thread.start()
        return run.future

    def running(self) -> list[str]:
        """The sources whose sync is in flight now."""
        with self._lock:
            return sorted(self._running)

    def close(self) -> None:
        """Start nothing new (running syncs are abandoned; they end with their source)."""
        with self._lock:
            self._closed = True

    def _work(self, key: str, run: _Run) -> None:
        job, future = run.job, run.future
        while True:
            while not self._slots.acquire(timeout=min(1.0, self.stuck_after)):
                with self._lock:
                    self._release_stuck()  # slots held by hung syncs come back meanwhile
            with self._lock:
                run.started, run.holds_slot = time.monotonic(), True
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job())
                    except BaseException as err:  # handed to whoever waits for the future
                        future.set_exception(err)
            finally:
                with self._lock:
                    if run.holds_slot:
                        run.holds_slot = False
                        self._slots.release()
            with self._lock:
                if run.followup is None or self._closed:
                    if run.followup is not None:
                        run.followup[1].cancel()
                    del self._running[key]
                    return
                job, future = run.followup
                run.followup, run.started = None, 0.0

    def _release_stuck(self) -> None:
        """Give back the slots of syncs running for longer than ``stuck_after`` (lock held)."""
        now = time.monotonic()
        for key, run in self._running.items():
            if run.holds_slot and now - run.started > self.stuck_after:
                run.holds_slot = False
                self._slots.release()
                log.warning(
                    "source %s: its sync has run for over %.0f s; other calendars go on",
                    key,
                    self.stuck_after,
                )
