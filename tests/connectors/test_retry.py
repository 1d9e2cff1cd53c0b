"""The one backoff formula and the one retry loop (``connectors.retry``), and ``Retry-After``."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from connectors.retry import Backoff, Retrying, RetryLater
from connectors.retry_after import parse_retry_after


class Busy(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


class GaveUp(Exception):
    pass


def busy(err: Exception) -> RetryLater | None:
    return RetryLater(err.retry_after) if isinstance(err, Busy) else None


class Flaky:
    """Fails with the given errors in turn, then answers "ok"; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("Tue, 01 Dec 2026 08:00:30 GMT", now) == 30.0
    assert parse_retry_after("Tue, 01 Dec 2026 07:59:00 GMT", now) == 0.0  # already past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0


def test_backoff_doubles_up_to_the_cap_and_never_undercuts_retry_after() -> None:
    backoff = Backoff(base=10, cap=50)
    assert [backoff.delay(n) for n in range(1, 6)] == [10, 20, 40, 50, 50]
    assert backoff.delay(1, retry_after=30) == 30
    assert backoff.delay(3, retry_after=30) == 40  # the server's wait is a floor, not a ceiling


def test_jitter_scales_the_delay_down_by_at_most_its_fraction() -> None:
    backoff = Backoff(base=100, cap=1000, jitter=0.25)
    rng = random.Random(7)
    delays = [backoff.delay(1, None, rng) for _ in range(200)]
    assert all(75 <= d <= 100 for d in delays)
    assert len(set(delays)) > 100  # really random
    assert backoff.delay(1, 5000, rng) == 5000


def test_retries_what_is_retryable_with_the_backoff_or_the_servers_wait() -> None:
    waits: list[float] = []
    flaky = Flaky(Busy(), Busy(7), Busy())
    assert Retrying(retries=3, sleep=waits.append).call(flaky, classify=busy) == "ok"
    assert waits == [1.0, 7.0, 4.0] and flaky.calls == 4


def test_gives_up_after_the_retries_with_the_error_give_up_builds() -> None:
    waits: list[float] = []
    seen: list[tuple[int, float | None]] = []

    def give_up(err: Exception, attempts: int, retry_after: float | None) -> Exception:
        seen.append((attempts, retry_after))
        return GaveUp(f"gave up after {attempts} attempts")

    flaky = Flaky(*[Busy(5) for _ in range(5)])
    retrying = Retrying(retries=2, sleep=waits.append)
    with pytest.raises(GaveUp, match="after 3 attempts"):
        retrying.call(flaky, classify=busy, give_up=give_up)
    assert waits == [5.0, 5.0] and flaky.calls == 3 and seen == [(3, 5)]


def test_without_give_up_the_last_error_is_raised_and_others_pass_at_once() -> None:
    waits: list[float] = []
    with pytest.raises(Busy):
        Retrying(retries=1, sleep=waits.append).call(Flaky(Busy(), Busy()), classify=busy)
    assert waits == [1.0]
    flaky = Flaky(KeyError("not retryable"))
    with pytest.raises(KeyError):
        Retrying(sleep=waits.append).call(flaky, classify=busy)
    assert flaky.calls == 1 and waits == [1.0]


def test_a_wait_longer_than_max_wait_gives_up_at_once_and_backoff_stays_below_it() -> None:
    waits: list[float] = []
    flaky = Flaky(Busy(61))
    with pytest.raises(Busy):
        Retrying(max_wait=60, sleep=waits.append).call(flaky, classify=busy)
    assert waits == [] and flaky.calls == 1
    flaky = Flaky(*[Busy() for _ in range(6)])
    Retrying(retries=10, max_wait=5, sleep=waits.append).call(flaky, classify=busy)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
