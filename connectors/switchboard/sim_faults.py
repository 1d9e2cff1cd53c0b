"""Fault injection for the switchboard simulator: latency, failures and lost answers.

One ``Faults`` object is shared by ``SimulatedSwitchboard`` (which fails or
"loses" commands) and the HTTP app (which adds the latency), so tests can set
faults in-process or through ``POST /api/_faults``.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from rules.errors import CalrefError, SwitchboardUnavailable


class InjectedFault(SwitchboardUnavailable):
    """A failure injected by the test's fault settings (503 or 429 over HTTP)."""


class Faults:
    """Fault injection settings, shared by the state and the HTTP app (thread-safe).

    ``latency`` (seconds) is added by the HTTP app to every API call.
    ``fail_next`` calls fail before doing anything; ``lose_next`` mutating
    calls are carried out but answered with a failure (a lost response, to
    exercise idempotent retries); ``error_rate`` makes that share of calls fail
    at random (seeded). Failures use HTTP ``status`` (503 or 429) and
    ``retry_after`` seconds.
    """

    FIELDS = ("latency", "error_rate", "fail_next", "lose_next", "status", "retry_after")

    def __init__(self, *, seed: int = 0, **settings: Any) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.latency = 0.0
        self.error_rate = 0.0
        self.fail_next = 0
        self.lose_next = 0
        self.status = 503
        self.retry_after = 1.0
        self.configure(**settings)

    def configure(self, **settings: Any) -> None:
        """Change some settings; unknown names or bad values raise ``CalrefError``."""
        with self._lock:
            for name, value in settings.items():
                if name not in self.FIELDS:
                    raise CalrefError(f"faults: unknown setting {name!r}; known: {self.FIELDS}")
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise CalrefError(f"faults: {name} must be a non-negative number")
                if name == "error_rate" and value > 1:
                    raise CalrefError("faults: error_rate must be between 0 and 1")
                if name == "status" and value not in (429, 500, 502, 503, 504):
                    raise CalrefError("faults: status must be 429, 500, 502, 503 or 504")
                if name in ("fail_next", "lose_next", "status"):
                    value = int(value)
                setattr(self, name, value)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {name: getattr(self, name) for name in self.FIELDS}

    def draw(self, *, mutating: bool) -> str | None:
        """``"fail"``, ``"lose"`` or ``None`` for the call about to run."""
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "fail"
            if mutating and self.lose_next > 0:
                self.lose_next -= 1
                return "lose"
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                return "fail"
            return None

    def error(self, call: str, *, lost: bool = False) -> InjectedFault:
        what = "carried out, but the answer was lost" if lost else "failed"
        return InjectedFault(
            f"{call}: injected fault ({what})",
            status=self.status,
            code="throttled" if self.status == 429 else "unavailable",
            retry_after=self.retry_after,
        )
