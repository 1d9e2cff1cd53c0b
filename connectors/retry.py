"""The one backoff formula and the one retry loop calref has.

``Backoff`` answers "how long to wait before the next try": exponential from
``base`` up to ``cap``, scaled by a random factor in ``[1 - jitter, 1]``, and
never shorter than what the server asked for (``Retry-After``). The switchboard
executor, the source backoff of the polling service and the calendar clients
all use it.

``Retrying`` runs one call in-line with a bounded number of retries: a
``classify`` function says which errors are worth another try (returning
``RetryLater`` with the server's ``retry_after``, if any), the waits go
through an injectable ``sleep`` (virtual in tests), and after ``retries``
retries, or as soon as the server asks for a wait longer than ``max_wait``,
it gives up with the error ``give_up`` builds (by default the last error
itself). The CalDAV, EWS, Google and Graph clients use it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Backoff", "GiveUp", "RetryLater", "Retrying", "Sleep"]

T = TypeVar("T")

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and jitter that honours ``Retry-After``."""

    base: float = 1.0  # seconds before the second attempt
    cap: float = 60.0  # the exponential part never exceeds this
    jitter: float = 0.0  # the delay is scaled by a random factor in [1 - jitter, 1]

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (counting from 1)."""
        seconds = min(self.cap, self.base * 2.0 ** (attempt - 1))
        if rng is not None:
            seconds *= 1 - self.jitter * rng.random()
        if retry_after is not None:
            seconds = max(seconds, retry_after)
        return seconds


@dataclass(frozen=True)
class RetryLater:
    """A classifier's verdict: worth another try, not sooner than ``retry_after`` seconds."""

    retry_after: float | None = None


Classify = Callable[[Exception], RetryLater | None]
GiveUp = Callable[[Exception, int, float | None], Exception]
"""Builds the error raised when retrying stops: (last error, attempts made, its retry_after)."""


@dataclass(frozen=True)
class Retrying:
    """Runs a call, retrying what ``classify`` calls retryable, at most ``retries`` times."""

    retries: int = 3
    max_wait: float = 60.0  # a longer Retry-After is not waited for in-line: give up at once
    sleep: Sleep = time.sleep
    backoff: Backoff = field(default_factory=Backoff)

    def call(self, fn: Callable[[], T], *, classify: Classify, give_up: GiveUp | None = None) -> T:
        """``fn()``'s result; a non-retryable error propagates unchanged."""
        attempts = 0
        while True:
            attempts += 1
            try:
                return fn()
            except Exception as err:
                verdict = classify(err)
                if verdict is None:
                    raise
                wait = verdict.retry_after
                if attempts > self.retries or (wait is not None and wait > self.max_wait):
                    if give_up is None:
                        raise
                    raise give_up(err, attempts, wait) from None
            self.sleep(min(self.backoff.delay(attempts, wait), self.max_wait))
