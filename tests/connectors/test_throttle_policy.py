"""The one back-off policy every calendar connector uses when throttled."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.calendars.throttle import ThrottlePolicy, parse_retry_after


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("Tue, 01 Dec 2026 08:00:30 GMT", now) == 30.0
    assert parse_retry_after("Tue, 01 Dec 2026 07:59:00 GMT", now) == 0.0  # already past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0


def test_waits_what_the_server_asks_else_doubles_then_gives_up() -> None:
    policy = ThrottlePolicy(retries=3, max_wait=60)
    assert [policy.wait(a, None) for a in range(4)] == [1.0, 2.0, 4.0, None]
    assert policy.wait(0, 30) == 30
    # Longer than we are willing to sleep in-line: give up, the service backs the source off.
    assert policy.wait(0, 61) is None
    assert ThrottlePolicy(retries=10, max_wait=5).wait(6, None) == 5.0
