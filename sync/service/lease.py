"""The leader lease of one ``calref run`` process: leader or standby on a shared store.

Two ``calref run`` processes on one store must never both act (both would
send every action). ``LeaderLease`` wraps the store's lease row
(``sync.store.lease``) for one process: ``acquire`` takes it when free,
lapsed or already ours (and logs the standby message when another process has
it), ``renew`` extends it and notices when it was lost, ``release`` frees it on
a clean shutdown so a standby takes over at once. ``Service`` consults it before
every poll and every execution pass (fencing); ``ServiceScheduler`` renews it
periodically and switches between the leader's jobs and the standby's retry job.

``LeaseKeeper`` is the service's side of this (``Service.leases``): claim, keep
and release the lease, and tell listeners when it was lost. Before claiming or
renewing it, it checks that the store's file is still the one opened
(``Store.verify``): a deleted or replaced SQLite file is fatal (``StoreLost``):
the keeper tells its fatal listeners, the service first, which stops acting for
good (``calref run`` then exits non-zero with the message).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from connectors.clock import Clock
from rules.errors import ConfigError, Problem, StoreLost
from sync.store import Store
from sync.store.lease import Lease

log = logging.getLogger(__name__)

#: how long a lease binds other processes after its last renewal
DEFAULT_TTL = timedelta(seconds=30)
#: how often the leader renews it (besides every tick and execution pass)
DEFAULT_RENEW_EVERY = timedelta(seconds=10)
#: how often a standby tries to take it
DEFAULT_RETRY_EVERY = timedelta(seconds=2)


def new_holder_id() -> str:
    """This process's holder id: ``host:pid:random`` (unique even across pid reuse)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaderLease:
    """One process's view of the store's lease; thread-safe."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        holder: str | None = None,
        *,
        ttl: timedelta = DEFAULT_TTL,
        renew_every: timedelta = DEFAULT_RENEW_EVERY,
        retry_every: timedelta = DEFAULT_RETRY_EVERY,
    ) -> None:
        problems = []
        if ttl <= timedelta(0) or renew_every <= timedelta(0) or retry_every <= timedelta(0):
            problems.append("lease ttl, renewal and retry intervals must be positive")
        elif renew_every * 2 > ttl:
            problems.append(
                f"lease renewal every {renew_every} must be at most half its ttl ({ttl})"
            )
        if problems:
            raise ConfigError([Problem("lease", None, None, p) for p in problems])
        self.store = store
        self.clock = clock
        self.holder = holder or new_holder_id()
        self.ttl = ttl
        self.renew_every = renew_every
        self.retry_every = retry_every
        self._lock = threading.Lock()
        self._held = False
        self._expires: datetime | None = None
        self._waiting_for: str | None = None  # the other holder last logged in standby

    @property
    def held(self) -> bool:
        """Whether this process believes it holds the lease (last acquire/renew succeeded)."""
        return self._held

    def valid(self, now: datetime) -> bool:
        """Held, and not past the expiry of our last successful renewal (no database read)."""
        with self._lock:
            return self._held and self._expires is not None and now < self._expires

    def acquire(self) -> bool:
        """Take (or keep) the lease; False, logging the standby message, when another has it."""
        with self._lock:
            now = self.clock.now()
            previous = self.store.lease()
            if self.store.try_acquire_lease(self.holder, now, self.ttl):
                if not self._held:
                    self._log_takeover(previous)
                self._held, self._expires, self._waiting_for = True, now + self.ttl, None
                return True
            was_held, self._held, self._expires = self._held, False, None
            current = self.store.lease_holder(now)
            if was_held:
                log.error(
                    "lease lost: the store is now held by %s; stopping work",
                    current.holder if current else "another process",
                )
            if current is not None and current.holder != self._waiting_for:
                self._waiting_for = current.holder
                log.warning(
                    "standby: the store is held by %s until %s; taking over when it lapses",
                    current.holder,
                    current.expires_at.isoformat(timespec="seconds"),
                )
            return False

    def renew(self) -> bool:
        """Extend the lease; False (and no longer held) when it is not ours any more."""
        with self._lock:
            if not self._held:
                return False
            now = self.clock.now()
            if self.store.renew_lease(self.holder, now, self.ttl):
                self._expires = now + self.ttl
                return True
            self._held, self._expires = False, None
            current = self.store.lease_holder(now)
            log.error(
                "lease lost: the store is now held by %s; stopping work and standing by",
                current.holder if current else "nobody",
            )
            return False

    def release(self) -> None:
        """Give the lease up (clean shutdown): a standby can take over at its next try."""
        with self._lock:
            if self._held:
                self.store.release_lease(self.holder)
                log.info("lease released by %s", self.holder)
            self._held, self._expires = False, None

    def _log_takeover(self, previous: Lease | None) -> None:
        if previous is not None and previous.holder != self.holder:
            lapsed = previous.expires_at.isoformat(timespec="seconds")
            log.warning(
                "leader: took over the store from %s (its lease ended %s); this process is %s",
                previous.holder,
                lapsed,
                self.holder,
            )
        else:
            log.info("leader: this process (%s) holds the store's lease", self.holder)


class LeaseKeeper:
    """The service's use of an optional ``LeaderLease``, and its watch on the store's file.

    Without a lease (``lease`` is None) the service assumes it is the only one
    on its store and every lease check passes; the store's file is checked all the same.
    """

    def __init__(self, store: Store, clock: Clock, lease: LeaderLease | None = None) -> None:
        self.store = store
        self.clock = clock
        #: the leader lease; None: the service assumes it is the only one on its store
        self.lease = lease
        #: why the service stopped acting for good (the store was lost); None while fine
        self.fatal: StoreLost | None = None
        self._lost_listeners: list[Callable[[], None]] = []
        self._fatal_listeners: list[Callable[[StoreLost], None]] = []
        self._migrated = False

    def add_fatal_listener(self, listener: Callable[[StoreLost], None]) -> None:
        """Call ``listener`` once when the store is lost (the service stops for good)."""
        self._fatal_listeners.append(listener)

    def add_lost_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when the lease is lost (the service then stands by)."""
        self._lost_listeners.append(listener)

    def store_intact(self) -> bool:
        """Whether the store is still the one opened; the first time not, stop for good."""
        if self.fatal is not None:
            return False
        try:
            self.store.verify()
        except StoreLost as err:
            self.store_lost(err)
            return False
        return True

    def store_lost(self, err: StoreLost) -> None:
        """The store's file was deleted or replaced: tell the fatal listeners, once."""
        if self.fatal is not None:
            return
        self.fatal = err
        log.critical("%s", err)
        for listener in list(self._fatal_listeners):
            listener(err)

    def claim(self) -> bool:
        """Take (or keep) the store's lease; True without a lease. Migrates the store first.

        False means standby: another live process holds the store (logged).
        """
        if not self.store_intact():
            return False
        if not self._migrated:
            self.store.migrate()
            self._migrated = True
        try:
            return self.lease is None or self.lease.acquire()
        except StoreLost as err:
            self.store_lost(err)
            return False

    def keep(self) -> bool:
        """Renew the lease before acting (fencing); False, and standby, when it was lost."""
        if not self.store_intact():
            return False
        if self.lease is None:
            return True
        if not self.lease.held:
            return False
        try:
            renewed = self.lease.renew()
        except StoreLost as err:
            self.store_lost(err)
            return False
        if renewed:
            return True
        for listener in list(self._lost_listeners):
            listener()
        return False

    def release(self) -> bool:
        """Give up the lease (clean shutdown) so that a standby takes over at once.

        False when there is no lease to give up.
        """
        if self.lease is None:
            return False
        self.lease.release()
        return True

    def leading_now(self) -> bool:
        """Held and unexpired by our own last renewal (no database round trip)."""
        if self.fatal is not None:
            return False
        return self.lease is None or self.lease.valid(self.clock.now())
