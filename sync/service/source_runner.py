"""Calendar syncs off the caller's thread: one calendar can never stall the others.

``SourceRunner`` runs each calendar source's sync on a pool of daemon worker
threads, at most one sync per source at a time, and at most ``limit`` at once
(so that 1,000 calendars are not all downloaded at once): the syncs wait in a
queue for one of ``limit`` workers, started as needed and kept between syncs
(starting a thread costs several times an unchanged poll, which for an ICS file
is a stat). The caller gets a ``concurrent.futures.Future`` and waits for it as
long as it likes (the service waits a short, bounded time and lets a slow sync
finish in the background). A sync that has run for longer than ``stuck_after``
no longer counts against ``limit``: a watch, every second, starts another worker
in its place, so a few hung calendars (a trickling feed, a parser burning CPU)
never starve the rest; the stuck sync's worker carries on until the source
itself gives up and then ends, and being a daemon thread it never keeps the
process alive at exit.

``submit`` of a source whose sync is running returns ``None`` (the caller
skips it), or with ``again`` a future for one follow-up sync that starts when
the running one ends (a push notification that arrived during a sync must be
read by a sync that starts after it).
"""

from __future__ import annotations

import logging
import queue
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
    started: float = 0.0  # monotonic time a worker began it (0: still waiting for one)
    counted: bool = False  # running on a worker and not stuck
    followup: tuple[Job, Future[bool]] | None = None


class SourceRunner:
    """Runs source syncs on background worker threads; thread-safe."""

    def __init__(self, limit: int = 8, stuck_after: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"source runner limit must be at least 1, got {limit}")
        self.limit = limit
        self.stuck_after = stuck_after
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, _Run] | None] = queue.SimpleQueue()
        self._running: dict[str, _Run] = {}
        self._workers = 0  # worker threads alive (their number: ``limit`` + the stuck ones)
        self._stuck = 0  # syncs running for longer than ``stuck_after``
        self._watch: threading.Thread | None = None
        self._closed = False

    def submit(self, key: str, job: Job, *, again: bool = False) -> Future[bool] | None:
        """Start ``job`` (one sync of source ``key``) in the background.

        ``None`` when a sync of ``key`` is already running (and not ``again``) or the
        runner is closed; with ``again``, the future of a follow-up sync instead.
        """
        with self._lock:
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
            self._grow()
        self._queue.put((key, run))
        return run.future

    def running(self) -> list[str]:
        """The sources whose sync is in flight (or waiting for a worker) now."""
        with self._lock:
            return sorted(self._running)

    def close(self) -> None:
        """Start nothing new (running syncs are abandoned; they end with their source)."""
        with self._lock:
            self._closed = True
            workers = self._workers
        for _ in range(workers):
            self._queue.put(None)

    def _grow(self) -> None:
        """Start a worker while fewer than ``limit`` are not stuck; the watch (lock held)."""
        if self._workers - self._stuck < self.limit:
            self._workers += 1
            threading.Thread(target=self._work, name="calref-sync", daemon=True).start()
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_stuck, name="calref-sync-watch")
            self._watch.daemon = True
            self._watch.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            key, run = item
            with self._lock:
                if self._closed:
                    run.future.cancel()
                    self._running.pop(key, None)
                    continue
                run.started, run.counted = time.monotonic(), True
            if not self._run(key, run):
                return  # this worker's sync was stuck: its replacement stays instead
        with self._lock:
            self._workers -= 1

    def _run(self, key: str, run: _Run) -> bool:
        """Run ``run``'s job, then its follow-ups (lock not held). False: the worker ends
        (its sync outlasted ``stuck_after`` and another worker took its place)."""
        job, future = run.job, run.future
        while True:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as err:  # handed to whoever waits for the future
                    future.set_exception(err)
            with self._lock:
                if run.followup is None or self._closed:
                    if run.followup is not None:
                        run.followup[1].cancel()
                    del self._running[key]
                    if run.counted:
                        return True
                    self._stuck -= 1
                    self._workers -= 1
                    return False
                job, future = run.followup
                run.followup = None
                if run.counted:
                    run.started = time.monotonic()

    def _watch_stuck(self) -> None:
        """Every second (or ``stuck_after``): stop counting syncs that ran too long and
        start a worker in the place of each, so the waiting syncs go on."""
        while True:
            time.sleep(min(1.0, self.stuck_after))
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                for key, run in self._running.items():
                    if run.counted and now - run.started > self.stuck_after:
                        run.counted = False
                        self._stuck += 1
                        log.warning(
                            "source %s: its sync has run for over %.0f s; other calendars go on",
                            key,
                            self.stuck_after,
                        )
                        self._grow()
