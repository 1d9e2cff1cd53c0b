"""The clocks: aware UTC always, virtual time only moves forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.clock import SystemClock, VirtualClock


def test_system_clock_returns_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


def test_virtual_clock_converts_to_utc_and_advances() -> None:
    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert clock.advance(timedelta(minutes=5)) == datetime(2026, 3, 2, 8, 5, tzinfo=UTC)


def test_virtual_clock_refuses_naive_times_and_going_back() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2026, 3, 2, 9, 0))
    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))
