"""How the service calls the switchboard: through one gate, and users side by side.

``CallGate`` counts the switchboard calls in flight and closes for new ones on
shutdown. The executor and the outbox (``sync.service.executor``,
``sync.service.outbox``) enter the gate around every switchboard call. ``close``
(SIGTERM) lets no new call start; ``wait_idle`` waits, with a bound, until the
calls in flight have ended, so ``calref run`` can exit within one call's timeout
and leave nothing half-recorded that the next start would not re-send.

``SwitchboardCalls`` bundles what both need to make those calls: the store
they record outcomes in, the switchboard, the clock, the gate, the retry rule
and how many users run side by side.

``per_user`` runs one pass's work, one item per user, on up to ``concurrency``
threads: each user's calls stay in order, users do not wait for each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from connectors.clock import Clock
from connectors.switchboard.base import Switchboard
from sync.service.retries import CallRetries
from sync.store import Store

_T = TypeVar("_T")
_R = TypeVar("_R")


class CallGate:
    """Thread-safe: any number of threads may be inside at once."""

    def __init__(self) -> None:
        self._closed = threading.Event()
        self._idle = threading.Condition()
        self._inside = 0

    def close(self) -> None:
        """Let no new call start (calls inside go on)."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def in_flight(self) -> int:
        with self._idle:
            return self._inside

    @contextmanager
    def call(self) -> Iterator[None]:
        """Count one call while it runs (callers check ``closed`` before they start one)."""
        with self._idle:
            self._inside += 1
        try:
            yield
        finally:
            with self._idle:
                self._inside -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no call is in flight; whether none is."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._inside:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


@dataclass(frozen=True)
class SwitchboardCalls:
    """What the executor and the outbox share to call the switchboard and record the result."""

    store: Store
    switchboard: Switchboard
    clock: Clock
    gate: CallGate
    retries: CallRetries
    #: how many users' calls run side by side
    concurrency: int = 16


def per_user(
    work: Callable[[_T], _R], items: Iterable[_T], concurrency: int, count: int | None = None
) -> list[_R]:
    """``work`` on every item, up to ``concurrency`` at once; each item is one user's work.

    ``count`` is the number of items when ``items`` is an iterator (consumed as work starts).
    """
    if count is None:
        items = list(items)
        count = len(items)
    if concurrency <= 1 or count <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(concurrency, count), thread_name_prefix="calref-exec"
    ) as pool:
        return list(pool.map(work, items))
