"""``CallRetries.after``: the one answer for a failed switchboard call (actions and referrals)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from connectors.retry import Backoff
from connectors.switchboard.errors import RejectedActionError, UnknownUserError
from rules.errors import ConfigError, SwitchboardUnavailable, WireError
from sync.service.retries import CallRetries
from sync.service.settings import ServiceSettings
from sync.store.records import Outcome

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
RETRIES = CallRetries(
    Backoff(base=10.0, cap=60.0),
    max_attempts=3,
    unknown_user_backoff=timedelta(minutes=30),
    rng=random.Random(1),
)


@pytest.mark.parametrize(
    ("err", "attempts", "outcome", "wait", "why"),
    [
        (SwitchboardUnavailable("down"), 1, Outcome.RETRY, 10, ""),
        (SwitchboardUnavailable("down"), 2, Outcome.RETRY, 20, ""),
        (SwitchboardUnavailable("busy", retry_after=45), 1, Outcome.RETRY, 45, ""),
        (RuntimeError("a bug"), 1, Outcome.RETRY, 10, ""),
        (SwitchboardUnavailable("down"), 3, Outcome.FAILED, None, "attempts exhausted"),
        (RejectedActionError("no such profile"), 1, Outcome.FAILED, None, "permanent error"),
        (WireError("bad answer"), 1, Outcome.FAILED, None, "permanent error"),
        (UnknownUserError("who?"), 1, Outcome.PARKED, 1800, ""),
        (UnknownUserError("who?"), 9, Outcome.PARKED, 1800, ""),
    ],
)
def test_after_a_failed_call(
    err: Exception, attempts: int, outcome: Outcome, wait: float | None, why: str
) -> None:
    after = RETRIES.after(err, attempts, NOW)
    assert after.outcome is outcome
    if wait is None:
        assert after.retry_at is None
    else:
        assert after.retry_at == NOW + timedelta(seconds=wait)
    assert why in after.why


def test_the_backoffs_are_checked() -> None:
    with pytest.raises(ConfigError) as err:
        ServiceSettings(
            retry_backoff=Backoff(base=0.0, cap=10.0),
            source_backoff=Backoff(base=1.0, cap=10.0, jitter=1.5),
            retry_attempts=0,
        )
    text = str(err.value)
    assert "retry_backoff base and cap must be positive" in text
    assert "source_backoff jitter must be at least 0 and less than 1" in text
    assert "retry_attempts must be at least 1" in text
