"""How calendar connectors back off when a server throttles them.

One policy for every connector: wait what the server asks (``Retry-After``)
or else 1, 2, 4 … seconds, at most ``retries`` times, and give up with a
``ThrottledError`` (carrying the wait) rather than sleep longer than
``max_wait`` — the service then backs the whole source off instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.retry_after import parse_retry_after

__all__ = ["ThrottlePolicy", "parse_retry_after"]


@dataclass(frozen=True)
class ThrottlePolicy:
    """Bounded retries for throttled requests."""

    retries: int = 3
    max_wait: float = 60.0

    def wait(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to sleep before retry number ``attempt + 1``, or None to give up now."""
        wait = retry_after if retry_after is not None else float(min(2**attempt, self.max_wait))
        if attempt >= self.retries or wait > self.max_wait:
            return None
        return wait
