"""The executor: carries out due phone actions, safely and in order.

Per user, due actions run one after another in time order (an end before a
start at the same instant); users run in parallel up to ``concurrency``
switchboard calls. Every action is "set the phone to X", never a toggle.
Referrals are published by the outbox (``sync.service.outbox``), which the
service runs before every execution pass.

Crash safety: an action is marked ``sending`` (with its idempotency key) in the
store before the switchboard call and ``done`` after. A ``sending`` action found
later (after a crash) is re-sent with the same key, so the switchboard replays
its first answer instead of applying it again. Both writes go through the
store's group commit (``sync.store.group_commit``): the claims and outcomes of
all threads at a moment share one transaction; a claim is committed before its
call, an outcome behind it (the pass ends, and listeners hear of an action,
only once its outcome is committed).

Catch-up is state-based (see docs/service.md) and decided in ``rules.catchup``:
a start whose referral still runs is applied late; a start or change whose
referral already ended is ``missed``; an end is applied now unless its start was
missed or cancelled; an end does not overwrite a manual change made after our
last action for the referral (``kept``). The executor reads what the verdict
needs (the referral's other actions, the phone) and carries it out.

A failed call is retried, parked or failed for good as ``sync.service.retries``
says. A switchboard that answers 404 ``unknown_user`` (the user is not in its
directory, or not yet) makes that user's due action wait (``parked``): it is
tried again every ``unknown_user_backoff``, at the next start (a config
change) and once the directory lists the user (``Service.check_referrals``),
never marked failed for that reason; later actions of the
user wait behind it (time order), and catch-up rules apply when it finally
goes through. Other users are not affected.

Stopping (the shared ``CallGate`` closed): no new switchboard call starts. A
call abandoned by the process exiting stays ``sending`` in the store and is
re-sent with its key on the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.switchboard.base import PhoneState
from rules import catchup
from rules.errors import CalrefError
from rules.model import ActionStatus, Moment, PhoneAction
from sync.service.call_gate import SwitchboardCalls, per_user
from sync.store import records as rec
from sync.store.group_commit import Pending, settle_all
from sync.store.records import Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionEvent:
    """What happened to one planned action (for the CLI, the demo and tests).

    ``outcome``: ``sent``, ``noop`` (action none, nothing to send), ``missed``,
    ``kept`` (a manual change was left alone), ``retry``, ``parked`` (the
    switchboard does not know the user; tried again later) or ``failed``
    (``sync.store.records.Outcome``).
    """

    user: str
    at: datetime
    due_at: datetime
    moment: Moment
    action: PhoneAction
    outcome: Outcome
    detail: str
    referral_id: str
    idempotency_key: str
    phone: PhoneState | None = None

    @property
    def late_by(self) -> timedelta:
        return max(self.at - self.due_at, timedelta(0))


ActionListener = Callable[[ActionEvent], None]

#: an action's outcome being committed: True once it is recorded
Recorded = Pending[bool]
#: an action's event and the commit of its outcome
Finished = tuple[ActionEvent, Recorded]


class Executor:
    """Carries out what the store says is due; call ``run_due`` whenever the process wakes."""

    def __init__(
        self, calls: SwitchboardCalls, *, late_after: timedelta = timedelta(seconds=60)
    ) -> None:
        self.store = calls.store
        self.switchboard = calls.switchboard
        self.clock = calls.clock
        #: every switchboard call passes it; closed when stopping
        self.gate = calls.gate
        self.retries = calls.retries
        self.concurrency = calls.concurrency
        self.late_after = late_after
        self.listeners: list[ActionListener] = []

    def run_due(self) -> list[ActionEvent]:
        """Carry out every due action (nothing once the gate is closed)."""
        if self.gate.closed:
            return []
        now = self.clock.now()
        users = self.store.users_with_due_work(now)
        # read a batch of users' actions at a time: the first calls start while the rest is read
        due = self.store.due_actions_of(users, now)
        results = per_user(self._run_user, due, self.concurrency, len(users))
        # outcomes are committed in groups behind the calls; the pass ends once all are
        settle_all([pending for _events, pendings in results for pending in pendings])
        return [event for events, _pendings in results for event in events]

    # -- actions -----------------------------------------------------------------------------

    def _run_user(self, due: list[rec.StoredAction]) -> tuple[list[ActionEvent], list[Recorded]]:
        """One user's due actions (read at the start of the pass), in order.

        Every write checks that the action is still live with the key read; if a
        re-plan changed it meanwhile, the user's remaining actions wait for the
        next pass, which reads the new plan. A sent action's outcome is committed
        behind the call (listeners hear of it then); the user's next action waits
        for that commit.
        """
        events: list[ActionEvent] = []
        recorded: list[Recorded] = []
        now = self.clock.now()
        for row in due:
            if recorded:
                recorded[-1].result()  # the previous outcome is in the store before the next
            if (
                row.status == ActionStatus.PENDING
                and row.next_attempt_at
                and row.next_attempt_at > now
            ):
                break  # waiting to retry: later actions of this user wait for it (time order)
            done = self._carry_out(row, now)
            if done is None:
                break
            event, pending = done
            events.append(event)
            recorded.append(pending)
            if event.outcome in (Outcome.RETRY, Outcome.PARKED):
                break
        return events, recorded

    def _carry_out(self, row: rec.StoredAction, now: datetime) -> Finished | None:
        """Ask ``rules.catchup`` what to do with a due action, reading only what it needs."""
        step = _step(row)
        siblings: list[catchup.Step] = []
        if catchup.wants_siblings(step):
            siblings = [
                _step(s) for s in self.store.referral_actions(row.referral_id, row.generation)
            ]
        phone: PhoneState | None = None
        if catchup.wants_phone(step, siblings):
            try:
                with self.gate.call():
                    phone = self.switchboard.get_user(row.user_id).phone
            except Exception as err:
                return self._failed_call(row, now, err)
            self.store.save_phone_state(row.user_id, phone, now)
        mark = None if phone is None else catchup.PhoneMark(phone.version, phone.changed_by)
        verdict = catchup.decide(step, siblings, mark, now, late_after=self.late_after)
        match verdict.kind:
            case catchup.Catchup.NOTHING:
                return self._finish(row, now, ActionStatus.DONE, Outcome.NOOP, verdict.detail)
            case catchup.Catchup.MISSED:
                return self._finish(row, now, ActionStatus.MISSED, Outcome.MISSED, verdict.detail)
            case catchup.Catchup.KEPT:
                return self._finish(
                    row, now, ActionStatus.KEPT, Outcome.KEPT, verdict.detail, phone=phone
                )
            case catchup.Catchup.RESEND | catchup.Catchup.LATE | catchup.Catchup.NOW:
                return self._send(row, now, verdict.detail)

    def _send(self, row: rec.StoredAction, now: datetime, note: str) -> Finished | None:
        if self.gate.closed:
            return None  # stopping: left for the next start
        # committed before the call: a crash from here on re-sends with the same key
        claimed = self.store.claim(row, now)
        if claimed is None:
            return None  # a re-plan changed or cancelled it since it was read
        row = claimed
        try:
            with self.gate.call():
                state = self.switchboard.apply_action(row.user_id, row.action, row.idempotency_key)
        except Exception as err:
            return self._failed_call(row, now, err, claimed=True)
        log.info("user %s: %s %s sent %s", row.user_id, row.moment, row.action, note)
        return self._finish(
            row, now, ActionStatus.DONE, Outcome.SENT, note, phone=state, claimed=True
        )

    def _failed_call(
        self, row: rec.StoredAction, now: datetime, err: Exception, *, claimed: bool = False
    ) -> Finished | None:
        if not isinstance(err, CalrefError):
            log.exception("user %s: unexpected error from the switchboard", row.user_id)
        attempts = max(row.attempts, 1)
        after = self.retries.after(err, attempts, now)
        if after.outcome is Outcome.PARKED:
            assert after.retry_at is not None
            log.warning(
                "user %s: the switchboard does not know this user; %s waits, next try at %s",
                row.user_id,
                row.action,
                after.retry_at.isoformat(),
            )
            return self._finish(
                row,
                now,
                ActionStatus.PENDING,
                Outcome.PARKED,
                f"parked: {err}",
                error=_unknown_user_text(err),
                retry_at=after.retry_at,
                claimed=claimed,
            )
        if after.outcome is Outcome.RETRY:
            assert after.retry_at is not None
            log.warning(
                "user %s: %s failed (attempt %d), retry at %s: %s",
                row.user_id,
                row.action,
                attempts,
                after.retry_at.isoformat(),
                err,
            )
            return self._finish(
                row,
                now,
                ActionStatus.PENDING,
                Outcome.RETRY,
                f"attempt {attempts}: {err}",
                error=str(err),
                retry_at=after.retry_at,
                claimed=claimed,
            )
        log.error("user %s: %s failed for good: %s", row.user_id, row.action, err)
        return self._finish(
            row,
            now,
            ActionStatus.FAILED,
            Outcome.FAILED,
            f"{after.why}: {err}",
            error=str(err),
            claimed=claimed,
        )

    def _finish(
        self,
        row: rec.StoredAction,
        now: datetime,
        status: ActionStatus,
        outcome: Outcome,
        detail: str,
        *,
        phone: PhoneState | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
        claimed: bool = False,
    ) -> Finished | None:
        """Record the outcome; None when an unclaimed action was changed by a re-plan meanwhile.

        A claimed action (marked ``sending`` by us) always gets its outcome recorded,
        in the next group commit, not waited for here (a crash before it leaves the
        action ``sending``: re-sent with its key). An unclaimed one waits for the
        commit, which says whether the action was still the one read.
        """
        event = ActionEvent(
            user=row.user_id,
            at=now,
            due_at=row.due_at,
            moment=row.moment,
            action=row.action,
            outcome=outcome,
            detail=detail,
            referral_id=row.referral_id,
            idempotency_key=row.idempotency_key,
            phone=phone,
        )

        def committed(recorded: bool) -> None:
            if recorded:
                self._notify(event)

        # a kept end records the observed phone, but not as "our result"
        pending = self.store.finish_action(
            row,
            now,
            status=status,
            outcome=outcome,
            detail=detail,
            state=phone if status == ActionStatus.DONE else None,
            error=error,
            retry_at=retry_at,
            guarded=not claimed,
            on_done=committed,
        )
        if not claimed and not pending.result():
            return None
        return event, pending

    def _notify(self, event: ActionEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("action listener failed")


def _unknown_user_text(err: Exception) -> str:
    """The error as stored: it names ``unknown_user`` (status and start-up look for it)."""
    text = str(err)
    return text if rec.PARKED_MARK in text else f"{rec.PARKED_MARK}: {text}"


def _step(row: rec.StoredAction) -> catchup.Step:
    """A stored action as ``rules.catchup`` sees it."""
    result = (
        None
        if row.result_version is None
        else catchup.PhoneMark(row.result_version, row.result_changed_by)
    )
    return catchup.Step(
        moment=row.moment,
        action=row.action,
        status=row.status,
        due_at=row.due_at,
        referral_end=row.referral_end,
        done_at=row.done_at,
        result=result,
        order=row.id,
    )
