"""The catch-up verdict: what to do with one due phone action, decided in one pure place.

The plan (``rules.timeline_phone``) says which action is due when; re-planning
(``sync.service.replan``) skips or cancels actions the plan no longer wants. When a due
action finally comes up (on time, or late after downtime or a retry) the
executor asks ``decide`` what to do with it, and carries the verdict out:

- ``resend``: the action was being sent when the process stopped; send it again
  with the same idempotency key (the switchboard replays its first answer);
- ``nothing``: action ``none``, nothing to send;
- ``missed``: a start or change whose referral has already ended, or an end
  whose start was missed, cancelled or skipped: not sent;
- ``kept``: an end that would overwrite a manual change made after our last
  action for the referral: not sent, the change is left alone;
- ``late``: sent now, more than ``late_after`` after it was due (catch-up);
- ``now``: sent now, on time.

Inputs are plain values (``Step``, ``PhoneMark``) so no I/O and no clock are
needed: ``now`` is an argument. The executor reads the referral's other actions
only when ``wants_siblings`` says so, and asks the switchboard for the phone only
when ``wants_phone`` says so, so no call is made that the verdict does not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from rules.model import ActionStatus, Moment, PhoneAction

__all__ = [
    "Catchup",
    "PhoneMark",
    "Step",
    "Verdict",
    "decide",
    "last_own_step",
    "span",
    "wants_phone",
    "wants_siblings",
]


#: a start in one of these never took effect: its end must not be sent either
_START_GIVEN_UP = frozenset({ActionStatus.MISSED, ActionStatus.CANCELLED, ActionStatus.SKIPPED})


class Catchup(StrEnum):
    """The verdict's kind (see the module docstring)."""

    RESEND = "resend"
    NOTHING = "nothing"
    MISSED = "missed"
    KEPT = "kept"
    LATE = "late"
    NOW = "now"


@dataclass(frozen=True)
class PhoneMark:
    """Who last changed a phone, and its version (increases on every change, by anyone)."""

    version: int
    changed_by: str | None


@dataclass(frozen=True)
class Step:
    """A planned action as far as catch-up is concerned.

    ``result`` is the phone as the switchboard reported it after we carried the
    action out (None when nothing was sent, e.g. action none); ``order`` breaks
    ties between steps done at the same instant (the store's id).
    """

    moment: Moment
    action: PhoneAction
    status: ActionStatus
    due_at: datetime
    referral_end: datetime
    done_at: datetime | None = None
    result: PhoneMark | None = None
    order: int = 0


@dataclass(frozen=True)
class Verdict:
    """What to do with a due action: its kind, what to send (None: nothing) and why."""

    kind: Catchup
    send: PhoneAction | None
    detail: str


def wants_siblings(step: Step) -> bool:
    """Whether ``decide`` looks at the referral's other actions for ``step``."""
    return (
        step.status is not ActionStatus.SENDING
        and step.action.changes_phone
        and step.moment == Moment.END
    )


def last_own_step(siblings: Sequence[Step]) -> Step | None:
    """Our latest carried-out action for the referral that has a phone result, if any."""
    ours = [s for s in siblings if s.status is ActionStatus.DONE and s.result is not None]
    if not ours:
        return None
    return max(ours, key=lambda s: (s.done_at or s.due_at, s.order))


def wants_phone(step: Step, siblings: Sequence[Step]) -> bool:
    """Whether ``decide`` needs the phone's current state for ``step``."""
    if not wants_siblings(step) or _given_up_start(siblings) is not None:
        return False
    return last_own_step(siblings) is not None


def decide(
    step: Step,
    siblings: Sequence[Step],
    phone: PhoneMark | None,
    now: datetime,
    *,
    late_after: timedelta,
) -> Verdict:
    """The verdict for ``step``, due at or before ``now``.

    ``siblings``: the other actions of its referral (the same generation; ``step``
    itself may be among them), needed only where ``wants_siblings``; ``phone``:
    the phone now, needed only where ``wants_phone`` (a ValueError otherwise).
    """
    if step.status is ActionStatus.SENDING:
        return Verdict(
            Catchup.RESEND, step.action, "re-sent after an interruption, same idempotency key"
        )
    if not step.action.changes_phone:
        return Verdict(Catchup.NOTHING, None, "action none: nothing to send")
    if step.moment != Moment.END:
        if step.referral_end <= now:
            return Verdict(Catchup.MISSED, None, "its referral ended before it could run")
        return _send(step, now, late_after)
    start = _given_up_start(siblings)
    if start is not None:
        return Verdict(Catchup.MISSED, None, f"its start was {start.status}")
    last = last_own_step(siblings)
    if last is not None:
        if phone is None:
            raise ValueError("the end of a referral we acted on needs the phone's current state")
        assert last.result is not None
        ours = last.result
        if phone.version != ours.version and phone.changed_by != ours.changed_by:
            detail = (
                f"phone changed by {phone.changed_by or 'someone else'} after our "
                f"{last.moment} action (version {ours.version} -> {phone.version})"
            )
            return Verdict(Catchup.KEPT, None, detail)
    return _send(step, now, late_after)


def _given_up_start(siblings: Sequence[Step]) -> Step | None:
    start = next((s for s in siblings if s.moment == Moment.START), None)
    return start if start is not None and start.status in _START_GIVEN_UP else None


def _send(step: Step, now: datetime, late_after: timedelta) -> Verdict:
    late = now - step.due_at
    if late > late_after:
        return Verdict(Catchup.LATE, step.action, f"late by {span(late)} (catch-up)")
    return Verdict(Catchup.NOW, step.action, "")


def span(delta: timedelta) -> str:
    """A duration as people read it: ``45s``, ``20m00s``, ``2h05m``."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
