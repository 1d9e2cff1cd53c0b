"""The store: everything the service remembers, behind typed methods (one transaction each).

Users and profiles, each calendar source's sync state, the accepted events, the
referrals and planned actions (the plan, which is the truth), the last known
phone state and the append-only audit log. Works the same on SQLite and
PostgreSQL. Methods return ``sync.store.records`` dataclasses, never ORM rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connectors.calendars.base import SyncResult
from connectors.switchboard.base import PhoneMode, PhoneState
from rules.model import CalendarEvent, PhoneAction, User
from sync.store import records as rec
from sync.store.db import StoreError, create_store_engine
from sync.store.migrate import upgrade_to_head
from sync.store.models import (
    ActionRow,
    AuditRow,
    EventRow,
    PhoneRow,
    ReferralRow,
    SourceRow,
    UserRow,
)

if TYPE_CHECKING:
    from sync.planning import PlanDiff, ReferralUpsert

log = logging.getLogger(__name__)


def _action(row: ActionRow) -> rec.StoredAction:
    return rec.StoredAction(
        id=row.id,
        identity=row.identity,
        user_id=row.user_id,
        referral_id=row.referral_id,
        generation=row.generation,
        moment=row.moment,
        ordinal=row.ordinal,
        due_at=row.due_at,
        referral_start=row.referral_start,
        referral_end=row.referral_end,
        action=rec.action_from_text(row.action),
        events=rec.keys_from_text(row.events),
        rule=row.rule,
        status=row.status,
        revision=row.revision,
        idempotency_key=row.idempotency_key,
        plan_version=row.plan_version,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        done_at=row.done_at,
        result_version=row.result_version,
        result_changed_by=row.result_changed_by,
    )


def _referral(row: ReferralRow) -> rec.StoredReferral:
    return rec.StoredReferral(
        id=row.id,
        user_id=row.user_id,
        generation=row.generation,
        start=row.start_at,
        end=row.end_at,
        reason=row.reason,
        message=row.message,
        start_action=rec.action_from_text(row.start_action),
        end_action=rec.action_from_text(row.end_action),
        events=rec.keys_from_text(row.events),
        active=row.active,
        content_hash=row.content_hash,
        published_hash=row.published_hash,
        publish_attempts=row.publish_attempts,
        publish_error=row.publish_error,
        next_attempt_at=row.next_attempt_at,
        plan_version=row.plan_version,
    )


def _source(row: SourceRow) -> rec.SourceState:
    return rec.SourceState(
        id=row.id,
        user_id=row.user_id,
        state=row.state,
        last_attempt=row.last_attempt,
        last_success=row.last_success,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        failures=row.failures,
        backoff_until=row.backoff_until,
    )


class Store:
    """The service's database. Thread-safe: every method runs in its own session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (not yet migrate) the store at ``url``."""
        return cls(create_store_engine(url))

    def migrate(self) -> None:
        """Bring the schema to the newest migration; safe to call on every start."""
        try:
            upgrade_to_head(self.engine)
        except OperationalError as err:
            raise StoreError(f"store: cannot migrate the database: {err.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- users -------------------------------------------------------------------------------

    def upsert_users(self, users: list[User]) -> None:
        """Store the configured users; users no longer configured become inactive."""
        ids = {u.id for u in users}
        with self._tx() as s:
            for user in users:
                row = s.get(UserRow, user.id)
                if row is None:
                    row = UserRow(id=user.id, plan_version=0)
                    s.add(row)
                row.name, row.email, row.extension = user.name, user.email, user.extension
                row.profiles = rec.profiles_to_text(user.profiles)
                row.active = True
            for row in s.scalars(select(UserRow).where(UserRow.active.is_(True))):
                if row.id not in ids:
                    row.active = False

    def users(self, *, active_only: bool = True) -> list[User]:
        with self._tx() as s:
            query = select(UserRow).order_by(UserRow.id)
            if active_only:
                query = query.where(UserRow.active.is_(True))
            return [
                User(r.id, r.name, r.email, r.extension, rec.profiles_from_text(r.profiles))
                for r in s.scalars(query)
            ]

    def planned_at(self, user_id: str) -> datetime | None:
        with self._tx() as s:
            row = s.get(UserRow, user_id)
            return None if row is None else row.planned_at

    # -- sources and events ------------------------------------------------------------------

    def ensure_source(self, source_id: str, user_id: str) -> rec.SourceState:
        with self._tx() as s:
            row = s.get(SourceRow, source_id)
            if row is None:
                row = SourceRow(id=source_id, user_id=user_id, failures=0)
                s.add(row)
                s.flush()
            return _source(row)

    def sources(self) -> list[rec.SourceState]:
        with self._tx() as s:
            return [_source(r) for r in s.scalars(select(SourceRow).order_by(SourceRow.id))]

    def apply_sync(self, source_id: str, user_id: str, result: SyncResult, now: datetime) -> bool:
        """Store a successful sync's events and state; True when the events changed."""
        changed = False
        with self._tx() as s:
            current = {
                r.key: r for r in s.scalars(select(EventRow).where(EventRow.source_id == source_id))
            }
            if result.full:
                keep = {e.key for e in result.events}
                for key, row in current.items():
                    if key not in keep:
                        s.delete(row)
                        changed = True
            for key in result.removed:
                if key in current:
                    s.delete(current.pop(key))
                    changed = True
            for event in result.events:
                text = rec.event_to_text(event)
                existing = current.get(event.key)
                if existing is None:
                    s.add(EventRow(source_id=source_id, key=event.key, user_id=user_id, data=text))
                    current[event.key] = EventRow(key=event.key, data=text)
                    changed = True
                elif existing.data != text:
                    existing.data = text
                    changed = True
            src = s.get(SourceRow, source_id)
            if src is None:
                src = SourceRow(id=source_id, user_id=user_id, failures=0)
                s.add(src)
            src.state, src.last_attempt, src.last_success = result.state, now, now
            src.failures, src.backoff_until, src.last_error = 0, None, None
        return changed

    def record_sync_failure(
        self, source_id: str, user_id: str, error: str, now: datetime, backoff_until: datetime
    ) -> int:
        """Record a failed sync (events are kept); returns the consecutive failure count."""
        with self._tx() as s:
            src = s.get(SourceRow, source_id)
            if src is None:
                src = SourceRow(id=source_id, user_id=user_id, failures=0)
                s.add(src)
            src.failures = (src.failures or 0) + 1
            src.last_attempt, src.last_error, src.last_error_at = now, error, now
            src.backoff_until = backoff_until
            return src.failures

    def events_for_user(self, user_id: str) -> list[CalendarEvent]:
        """The last known events of all the user's sources."""
        with self._tx() as s:
            rows = s.scalars(
                select(EventRow).where(EventRow.user_id == user_id).order_by(EventRow.key)
            )
            return [rec.event_from_text(r.data) for r in rows]

    # -- the plan ----------------------------------------------------------------------------

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
            stored = [_action(a) for a in actions]
            # include the next generation too: rows created when a running referral moved
            return [_referral(r) for r in refs], [
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
                    self._audit_action(s, now, arow, "plan", "rescheduled", f"due {upd.due_at}")
            for action_id in diff.cancels:
                arow = s.get_one(ActionRow, action_id)
                arow.status, arow.plan_version = rec.CANCELLED, version
                self._audit_action(s, now, arow, "plan", "cancelled", "no longer in the plan")
            for action_id in diff.end_now:
                arow = s.get_one(ActionRow, action_id)
                arow.due_at, arow.plan_version = now, version
                if arow.status != rec.PENDING:
                    self._rearm(arow, now, "end now")
                self._audit_action(
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
            found = [_action(r) for r in rows]
        return sorted(found, key=lambda a: (a.due_at, order.get(a.moment, 1), a.id))

    def referral_actions(self, referral_id: str, generation: int) -> list[rec.StoredAction]:
        with self._tx() as s:
            rows = s.scalars(
                select(ActionRow).where(
                    ActionRow.referral_id == referral_id, ActionRow.generation == generation
                )
            )
            return [_action(r) for r in rows]

    def get_action(self, action_id: int) -> rec.StoredAction:
        with self._tx() as s:
            return _action(s.get_one(ActionRow, action_id))

    def mark_sending(self, action_id: int, now: datetime) -> rec.StoredAction:
        """Record that the action is about to be sent (before the switchboard call)."""
        with self._tx() as s:
            row = s.get_one(ActionRow, action_id)
            row.status, row.attempts = rec.SENDING, row.attempts + 1
            return _action(row)

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
                self._save_phone(s, row.user_id, state, now)
            self._audit_action(s, now, row, "action", outcome, detail)
            return _action(row)

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
            return [_referral(r) for r in rows]

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
            return [_referral(r) for r in rows]

    # -- phone state, wake-ups, audit --------------------------------------------------------

    @staticmethod
    def _save_phone(s: Session, user_id: str, state: PhoneState, now: datetime) -> None:
        row = s.get(PhoneRow, user_id)
        if row is None:
            row = PhoneRow(user_id=user_id)
            s.add(row)
        row.mode, row.active_profile = state.mode.value, state.active_profile
        row.forward_number, row.version = state.forward_number, state.version
        row.changed_by, row.observed_at = state.changed_by, now

    def save_phone_state(self, user_id: str, state: PhoneState, now: datetime) -> None:
        with self._tx() as s:
            self._save_phone(s, user_id, state, now)

    def phone_state(self, user_id: str) -> tuple[PhoneState, datetime] | None:
        """The last phone state the switchboard reported, and when."""
        with self._tx() as s:
            row = s.get(PhoneRow, user_id)
            if row is None:
                return None
            state = PhoneState(
                mode=PhoneMode(row.mode),
                active_profile=row.active_profile,
                forward_number=row.forward_number,
                version=row.version,
                changed_by=row.changed_by,
            )
            return state, row.observed_at

    def actions(self, user_id: str | None = None) -> list[rec.StoredAction]:
        with self._tx() as s:
            query = select(ActionRow).order_by(ActionRow.due_at, ActionRow.id)
            if user_id is not None:
                query = query.where(ActionRow.user_id == user_id)
            return [_action(r) for r in s.scalars(query)]

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

    def audit(
        self,
        now: datetime,
        user_id: str,
        kind: str,
        outcome: str,
        detail: str = "",
        *,
        action: PhoneAction | None = None,
    ) -> None:
        with self._tx() as s:
            s.add(
                AuditRow(
                    at=now,
                    user_id=user_id,
                    kind=kind,
                    outcome=outcome,
                    action=None if action is None else str(action),
                    detail=detail,
                )
            )

    @staticmethod
    def _audit_action(
        s: Session, now: datetime, row: ActionRow, kind: str, outcome: str, detail: str
    ) -> None:
        s.add(
            AuditRow(
                at=now,
                user_id=row.user_id,
                kind=kind,
                outcome=outcome,
                action_id=row.id,
                referral_id=row.referral_id,
                idempotency_key=row.idempotency_key,
                action=f"{row.moment}: {rec.action_from_text(row.action)}",
                detail=detail,
            )
        )

    def audit_log(self, user_id: str | None = None) -> list[rec.AuditEntry]:
        with self._tx() as s:
            query = select(AuditRow).order_by(AuditRow.id)
            if user_id is not None:
                query = query.where(AuditRow.user_id == user_id)
            return [
                rec.AuditEntry(
                    r.id,
                    r.at,
                    r.user_id,
                    r.kind,
                    r.outcome,
                    r.action_id,
                    r.referral_id,
                    r.idempotency_key,
                    r.action,
                    r.detail,
                )
                for r in s.scalars(query)
            ]

    def forget_events(self, source_id: str) -> None:
        with self._tx() as s:
            s.execute(delete(EventRow).where(EventRow.source_id == source_id))
