"""What a failed switchboard call means for the action or referral it carried.

The executor (phone actions) and the outbox (referrals) ask ``CallRetries.after``
the same question after a failed call, and get one of three answers:

- ``parked``: a 404 ``unknown_user`` is a condition of the user's, not of the
  call: try again after ``unknown_user_backoff``, never fail for good for it;
- ``retry``: a ``Retryable`` error (``rules.errors.is_retryable``), or one that
  is not a ``CalrefError`` at all (a bug, which may pass), with attempts left:
  try again after the one backoff formula (``connectors.retry.Backoff``, never
  sooner than the switchboard's ``retry_after``);
- ``failed``: anything else, or the last attempt: failed for good.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.retry import Backoff
from connectors.switchboard.errors import UnknownUserError
from rules.errors import CalrefError, Retryable, is_retryable
from sync.store.records import Outcome

__all__ = ["AfterFailure", "CallRetries", "unknown_user", "worth_retrying"]


@dataclass(frozen=True)
class AfterFailure:
    """The answer: ``outcome`` is ``retry``, ``parked`` or ``failed``; ``retry_at`` is None
    only when failed; ``why`` says why a failure is final (empty otherwise)."""

    outcome: Outcome
    retry_at: datetime | None
    why: str = ""


@dataclass(frozen=True)
class CallRetries:
    """How failed switchboard calls are tried again (shared by the executor and the outbox)."""

    backoff: Backoff
    #: tries of one action or publication before it fails for good
    max_attempts: int
    #: how long a user the switchboard does not know waits between tries
    unknown_user_backoff: timedelta
    rng: random.Random

    def after(self, err: Exception, attempts: int, now: datetime) -> AfterFailure:
        """What to do after attempt number ``attempts`` (from 1) failed with ``err`` at ``now``."""
        if unknown_user(err):
            return AfterFailure(Outcome.PARKED, now + self.unknown_user_backoff)
        retryable = worth_retrying(err)
        if retryable and attempts < self.max_attempts:
            retry_after = err.retry_after if isinstance(err, Retryable) else None
            delay = self.backoff.delay(attempts, retry_after, self.rng)
            return AfterFailure(Outcome.RETRY, now + timedelta(seconds=delay))
        why = "transient error, attempts exhausted" if retryable else "permanent error"
        return AfterFailure(Outcome.FAILED, None, why)


def worth_retrying(err: Exception) -> bool:
    """Retry what the error family marks ``Retryable``, and anything unexpected (a bug)."""
    return not isinstance(err, CalrefError) or is_retryable(err)


def unknown_user(err: Exception) -> bool:
    """A 404 ``unknown_user``: a condition of the user's, not of the action."""
    return isinstance(err, UnknownUserError) and err.code == "unknown_user"
