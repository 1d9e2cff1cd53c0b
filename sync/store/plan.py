"""The store's plan (the truth): referrals and their planned actions, how they are carried out.

``apply_diff`` writes a re-plan in one transaction; the execution methods pick
due actions and record their outcomes with an audit line; the referrals outbox
tracks which referrals the switchboard still has to be told about.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from connectors.switchboard.base import PhoneState
from sync.store import records as rec
from sync.store.audit import audit_action, save_phone
from sync.store.base import StoreBase, action_record, referral_record
from sync.store.db import StoreError
from sync.store.models import ActionRow, AuditRow, ReferralRow, UserRow

if TYPE_CHECKING:
    from sync.planning import PlanDiff, ReferralUpsert


class PlanStore(StoreBase):
    """Referrals, planned actions, their execution and publication."""

    def plan_state(self, user_id: str) -> tuple[list[rec.StoredReferral], list[rec.StoredAction]]:
        """The user's active referrals and the actions of their current generations."""
        with self._tx() as s:
            refs = list(
                s.scalars(
                    select(ReferralRow).where(
                        ReferralRow.user_id == user_id, ReferralRow.active.is_(True)
                    )
                )
            )
            ids = [r.id for r in refs] or [""]
            actions = s.scalars(
                select(ActionRow).where(
                    ActionRow.user_id == user_id, ActionRow.referral_id.in_(ids)
                )
            )
            gens = {r.id: r.generation for r in refs}
            stored = [action_record(a) for a in actions]
            # include the next generation too: rows created when a running referral moved
            return [referral_record(r) for r in refs], [
                a for a in stored if a.generation >= gens.get(a.referral_id, 0)
            ]

    def apply_diff(self, diff: PlanDiff, now: datetime) -> int:
        """Write a re-plan in one transaction; returns the user's plan version."""
        with self._tx() as s:
            user = s.get(UserRow, diff.user)
            if user is None:
                raise StoreError(f"store: unknown user {diff.user!r}")
            version = user.plan_version + (0 if diff.empty and not diff.upserts else 1)
            user.plan_version, user.planned_at = version, now
            for up in diff.upserts:
                self._upsert_referral(s, diff.user, up.id, up.generation, up, version)
            for wd in diff.withdrawals:
                row = s.get(ReferralRow, wd.id)
                if row is None:
                    continue
                row.active = False
                if wd.expired:
                    row.published_hash = None  # over and out of the window: nothing to withdraw
                else:
                    row.publish_attempts, row.next_attempt_at, row.publish_error = 0, None, None
            for new in diff.new_actions:
                p = new.planned
                s.add(
                    ActionRow(
                        identity=new.identity,
                        user_id=diff.user,
                        referral_id=new.referral_id,
                        generation=new.generation,
                        moment=new.moment,
                        ordinal=new.ordinal,
                        due_at=p.at,
                        referral_start=p.referral_start,
                        referral_end=new.referral_end,
                        action=rec.action_to_text(p.action),
                        events=rec.keys_to_text(p.events),
                        rule=p.rule,
                        status=new.status,
                        revision=0,
                        idempotency_key=rec.idempotency_key(new.identity, 0),
                        plan_version=version,
                        attempts=0,
                    )
                )
            for upd in diff.updates:
                arow = s.get_one(ActionRow, upd.id)
                p = upd.planned
                arow.due_at, arow.referral_start, arow.referral_end = (
                    upd.due_at,
                    p.referral_start,
                    upd.referral_end,
                )
                arow.action, arow.events, arow.rule = (
                    rec.action_to_text(p.action),
                    rec.keys_to_text(p.events),
                    p.rule,
                )
                arow.plan_version = version
                if upd.rearm:
                    self._rearm(arow, now, "rescheduled")
                    audit_action(s, now, arow, "plan", "rescheduled", f"due {upd.due_at}")
            for action_id in diff.cancels:
                arow = s.get_one(ActionRow, action_id)
                arow.status, arow.plan_version = rec.CANCELLED, version
                audit_action(s, now, arow, "plan", "cancelled", "no longer in the plan")
            for action_id in diff.end_now:
                arow = s.get_one(ActionRow, action_id)
                arow.due_at, arow.plan_version = now, version
                if arow.status != rec.PENDING:
                    self._rearm(arow, now, "end now")
                audit_action(
                    s, now, arow, "plan", "end_now", "referral withdrawn or cut short while running"
                )
            return version

    @staticmethod
    def _rearm(row: ActionRow, now: datetime, why: str) -> None:
        row.revision += 1
        row.idempotency_key = rec.idempotency_key(row.identity, row.revision)
        row.status, row.attempts, row.next_attempt_at, row.last_error = rec.PENDING, 0, None, None
        row.done_at, row.result_version, row.result_changed_by = None, None, None

    @staticmethod
    def _upsert_referral(
        s: Session, user_id: str, rid: str, gen: int, up: ReferralUpsert, version: int
    ) -> None:
        ref = up.referral
        row = s.get(ReferralRow, rid)
        if row is None:
            row = ReferralRow(id=rid, user_id=user_id, publish_attempts=0)
            s.add(row)
        if row.content_hash != up.content_hash or not row.active:
            row.publish_attempts, row.next_attempt_at, row.publish_error = 0, None, None
        row.generation, row.start_at, row.end_at = gen, ref.start, ref.end
        row.reason, row.message = ref.reason, ref.message
        row.start_action = rec.action_to_text(ref.start_action)
        row.end_action = rec.action_to_text(ref.end_action)
        row.events = rec.keys_to_text(ref.events)
        row.active, row.content_hash, row.plan_version = True, up.content_hash, version

    # -- execution ---------------------------------------------------------------------------

    def users_with_due_work(self, now: datetime) -> list[str]:
        """Users having a live action due now (or a crash leftover in ``sending``)."""
        with self._tx() as s:
            query = (
                select(ActionRow.user_id)
                .where(
                    ActionRow.status.in_(rec.LIVE_STATUSES),
                    ActionRow.due_at <= now,
                )
                .distinct()
                .order_by(ActionRow.user_id)
            )
            return list(s.scalars(query))

    def live_actions(self, user_id: str, now: datetime) -> list[rec.StoredAction]:
        """The user's live actions due by ``now``, in the order they must be carried out."""
        order = {"end": 0, "change": 1, "start": 2}
        with self._tx() as s:
            rows = s.scalars(
                select(ActionRow).where(
                    ActionRow.user_id == user_id,
                    ActionRow.status.in_(rec.LIVE_STATUSES),
                    ActionRow.due_at <= now,
                )
            )
            found = [action_record(r) for r in rows]
        return sorted(found, key=lambda a: (a.due_at, order.get(a.moment, 1), a.id))

    def referral_actions(self, referral_id: str, generation: int) -> list[rec.StoredAction]:
        with self._tx() as s:
            rows = s.scalars(
                select(ActionRow).where(
                    ActionRow.referral_id == referral_id, ActionRow.generation == generation
                )
            )
            return [action_record(r) for r in rows]

    def get_action(self, action_id: int) -> rec.StoredAction:
        with self._tx() as s:
            return action_record(s.get_one(ActionRow, action_id))

    def mark_sending(self, action_id: int, now: datetime) -> rec.StoredAction:
        """Record that the action is about to be sent (before the switchboard call)."""
        with self._tx() as s:
            row = s.get_one(ActionRow, action_id)
            row.status, row.attempts = rec.SENDING, row.attempts + 1
            return action_record(row)

    def finish_action(
        self,
        action_id: int,
        now: datetime,
        *,
        status: str,
        outcome: str,
        detail: str = "",
        state: PhoneState | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> rec.StoredAction:
        """Record an action's outcome and its audit line in one transaction."""
        with self._tx() as s:
            row = s.get_one(ActionRow, action_id)
            row.status = status
            row.last_error = error
            row.next_attempt_at = retry_at
            if status in (rec.DONE, rec.KEPT, rec.MISSED, rec.FAILED):
                row.done_at = now
            if state is not None:
                row.result_version, row.result_changed_by = state.version, state.changed_by
                save_phone(s, row.user_id, state, now)
            audit_action(s, now, row, "action", outcome, detail)
            return action_record(row)

    def actions(self, user_id: str | None = None) -> list[rec.StoredAction]:
        with self._tx() as s:
            query = select(ActionRow).order_by(ActionRow.due_at, ActionRow.id)
            if user_id is not None:
                query = query.where(ActionRow.user_id == user_id)
            return [action_record(r) for r in s.scalars(query)]

    def next_due(self) -> datetime | None:
        """The earliest time any live action or pending publication needs the process."""
        with self._tx() as s:
            action = s.scalar(
                select(func.min(func.coalesce(ActionRow.next_attempt_at, ActionRow.due_at))).where(
                    ActionRow.status.in_(rec.LIVE_STATUSES)
                )
            )
            publish = s.scalar(
                select(func.min(ReferralRow.next_attempt_at)).where(
                    ReferralRow.publish_error.is_(None)
                )
            )
        times = [t for t in (action, publish) if t is not None]
        return min(times) if times else None

    # -- referrals outbox --------------------------------------------------------------------

    def unpublished_referrals(self, now: datetime) -> list[rec.StoredReferral]:
        """Referrals whose switchboard copy differs from the plan, ready to (re)try."""
        with self._tx() as s:
            rows = s.scalars(
                select(ReferralRow)
                .where(
                    or_(
                        (ReferralRow.active.is_(True))
                        & (
                            ReferralRow.published_hash.is_(None)
                            | (ReferralRow.published_hash != ReferralRow.content_hash)
                        ),
                        (ReferralRow.active.is_(False)) & ReferralRow.published_hash.is_not(None),
                    ),
                    ReferralRow.publish_error.is_(None),
                    or_(ReferralRow.next_attempt_at.is_(None), ReferralRow.next_attempt_at <= now),
                )
                .order_by(ReferralRow.start_at)
            )
            return [referral_record(r) for r in rows]

    def finish_publication(
        self,
        referral_id: str,
        now: datetime,
        *,
        published_hash: str | None,
        outcome: str,
        key: str,
        detail: str = "",
        error: str | None = None,
        retry_at: datetime | None = None,
        permanent: bool = False,
    ) -> None:
        with self._tx() as s:
            row = s.get_one(ReferralRow, referral_id)
            if error is None:
                row.published_hash, row.publish_attempts = published_hash, 0
                row.next_attempt_at, row.publish_error = None, None
            else:
                row.publish_attempts += 1
                row.next_attempt_at = retry_at
                row.publish_error = error if permanent else None
            s.add(
                AuditRow(
                    at=now,
                    user_id=row.user_id,
                    kind="referral",
                    outcome=outcome,
                    referral_id=referral_id,
                    idempotency_key=key,
                    detail=detail or (error or ""),
                )
            )

    def referrals(self, user_id: str) -> list[rec.StoredReferral]:
        with self._tx() as s:
            rows = s.scalars(
                select(ReferralRow)
                .where(ReferralRow.user_id == user_id)
                .order_by(ReferralRow.start_at)
            )
            return [referral_record(r) for r in rows]
