"""Start-up's calendar reading: most urgent users first, acting after every batch.

After a restart the stored plan is the truth, so a start must not wait for
10,000 calendars before it acts. ``StartupReader`` (``Service.start``) reads every
calendar once, in the order of urgency: first the users whose stored plan has
the soonest action (or retry), then everybody else in config order. At most
``settings.sync_workers`` x 2 syncs are in flight at once (so 10,000 sources are
not 10,000 waiting threads), and whenever a batch of users has been read, or a
fraction of a second has passed, it re-plans those users in one transaction
(``Service.replan_users``) and wakes its executing thread, which carries out
what is due (``Service.execute_due``) while the reading goes on, so due actions
go out from the first batch on and publishing never holds up the reading.
Every user is re-planned once (also one without calendars or whose sync
failed: the window moved on).

It runs in a thread of its own, which ``Service.start`` waits for at most
``settings.startup_sync_wait``; the rest is read behind the running service.
A sync that takes longer than ``settings.sync_wait`` stops counting against
the in-flight limit (a hung feed holds up nobody) and, if it ends after the
reader finished, re-plans its user the usual way (``Service._changed_late``).
``stop`` (SIGTERM: the service's gate closes) makes it submit nothing more.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from rules.errors import StoreError, StoreLost
from sync.service.executor import ActionEvent

log = logging.getLogger(__name__)

#: the longest a read calendar waits before its user is re-planned and due actions sent
FLUSH_SECONDS = 0.05


class StartupReader:
    """Reads every calendar once at start-up, most urgent users first (a background thread)."""

    def __init__(self, service: Any, on_done: Callable[[], None] | None = None) -> None:
        """``service``: the ``sync.service.service.Service`` that owns this (which imports
        this module, so it is not named here)."""
        self.service = service
        self.on_done = on_done
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="calref-startup", daemon=True)
        self.read_users = 0
        self._events: list[ActionEvent] = []
        self._events_lock = threading.Lock()
        #: set after each batch: the executing thread sends what is due, reading goes on
        self._kick = threading.Event()
        self._executing = threading.Thread(
            target=self._execute, name="calref-startup-execute", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        self._executing.start()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every calendar to be read and what that made
        due to be sent; whether it was."""
        deadline = time.monotonic() + timeout
        if not self.done.wait(timeout):
            return False
        self._executing.join(max(0.0, deadline - time.monotonic()))
        return not self._executing.is_alive()

    def take_events(self) -> list[ActionEvent]:
        """The actions carried out by the batches so far (and forget them)."""
        with self._events_lock:
            events, self._events = self._events, []
        return events

    def order(self) -> list[str]:
        """Every user id, the soonest stored work first, then in config order."""
        soonest = self.service.store.soonest_by_user()
        users = list(self.service.users)
        position = {u: i for i, u in enumerate(users)}
        urgent = sorted((u for u in users if u in soonest), key=lambda u: (soonest[u], position[u]))
        return urgent + [u for u in users if u not in soonest]

    def _run(self) -> None:
        try:
            self._read(self.order())
        except StoreLost as err:
            self.service.leases.store_lost(err)
        except Exception:
            log.exception("start-up: reading calendars failed; polling goes on")
        finally:
            self.done.set()
            if self.on_done is not None:
                self.on_done()

    def _read(self, users: Sequence[str]) -> None:
        service = self.service
        by_user: dict[str, list[str]] = {u: [] for u in users}
        for source_id, (user_id, _source) in service.sources.items():
            by_user.setdefault(user_id, []).append(source_id)
        limit = max(1, service.settings.sync_workers * 2)
        slow_after = service.settings.sync_wait.total_seconds()
        finished: queue.SimpleQueue[tuple[str, Future[bool]]] = queue.SimpleQueue()
        in_flight: dict[str, float] = {}  # source id -> monotonic time it was submitted
        slow: dict[str, Future[bool]] = {}
        left: dict[str, int] = {}  # user id -> sources not yet read
        ready: list[str] = []  # users all of whose sources were read (or failed)
        pending = deque(users)
        last_flush = time.monotonic()
        futures: dict[str, Future[bool]] = {}
        while (pending or in_flight or ready) and not service.gate.closed:
            while pending and len(in_flight) < limit and not service.gate.closed:
                user_id = pending.popleft()
                sources = by_user.get(user_id, [])
                left[user_id] = 0
                for source_id in sources:
                    future = service.poller.sync_in_background(source_id)
                    if future is None:  # syncing already (a push, a poll): read by that one
                        continue
                    left[user_id] += 1
                    in_flight[source_id] = time.monotonic()
                    futures[source_id] = future
                    future.add_done_callback(lambda f, sid=source_id: finished.put((sid, f)))
                if left[user_id] == 0:
                    ready.append(user_id)
            try:
                source_id, future = finished.get(timeout=FLUSH_SECONDS)
                self._finished(source_id, future, in_flight, slow, left, ready)
                while True:  # take everything that finished meanwhile
                    source_id, future = finished.get_nowait()
                    self._finished(source_id, future, in_flight, slow, left, ready)
            except queue.Empty:
                pass
            now = time.monotonic()
            for source_id, since in list(in_flight.items()):
                if now - since > slow_after:  # a slow calendar holds up nobody
                    del in_flight[source_id]
                    slow[source_id] = futures[source_id]
                    user_id = service.sources[source_id][0]
                    left[user_id] -= 1
                    if left[user_id] == 0:
                        ready.append(user_id)
            batch_full = len(ready) >= limit
            if ready and (batch_full or now - last_flush >= FLUSH_SECONDS or not in_flight):
                self._flush(ready)
                ready = []
                last_flush = time.monotonic()
        for source_id, future in slow.items():
            if not future.done():  # it re-plans its user when it ends
                future.add_done_callback(
                    lambda f, sid=source_id: self._late(sid, f)  # type: ignore[misc]
                )

    def _finished(
        self,
        source_id: str,
        future: Future[bool],
        in_flight: dict[str, float],
        slow: dict[str, Future[bool]],
        left: dict[str, int],
        ready: list[str],
    ) -> None:
        user_id = self.service.sources[source_id][0]
        try:
            self.service.poller.outcome(source_id, future)
        except StoreError as err:
            log.error("source %s: the sync could not be stored: %s", source_id, err)
        if slow.pop(source_id, None) is not None:
            ready.append(user_id)  # its user was re-planned without it: once more
            return
        if in_flight.pop(source_id, None) is None:
            return
        left[user_id] -= 1
        if left[user_id] == 0:
            ready.append(user_id)

    def _flush(self, users: list[str]) -> None:
        """Re-plan ``users`` (one transaction per batch), then send what is due."""
        service = self.service
        if service.gate.closed or not service.started:
            return
        service.replan_users(sorted(set(users)))
        self.read_users += len(users)
        self._kick.set()

    def _execute(self) -> None:
        """Send what is due after each batch (switchboard calls never hold up the reading)."""
        while True:
            kicked = self._kick.wait(FLUSH_SECONDS)
            if not kicked:
                if self.done.is_set() and not self._kick.is_set():
                    return
                continue
            self._kick.clear()
            if self.service.gate.closed or not self.service.started:
                continue
            try:
                events = self.service.execute_due()
            except Exception:
                log.exception("start-up: carrying out due actions failed; the tick retries")
                continue
            with self._events_lock:
                self._events.extend(events)

    def _late(self, source_id: str, future: Future[bool]) -> None:
        try:
            if self.service.poller.outcome(source_id, future):
                self.service._changed_late(self.service.sources[source_id][0])
        except Exception:
            log.exception("source %s: re-planning after a late sync failed", source_id)
