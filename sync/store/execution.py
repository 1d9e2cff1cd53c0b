"""The store's side of carrying out the plan: due actions, their outcomes, the referrals outbox.

The executor (``sync.service.executor``) reads and finishes due actions here,
the outbox (``sync.service.outbox``) the referrals to publish. These are the
executor's hot paths (a few statements per phone action, while up
to ``concurrency`` threads wait on the switchboard), so they use SQLAlchemy Core
and one statement where the ORM needed a load and a flush: ``claim`` marks an
action ``sending`` with one guarded ``UPDATE ... RETURNING`` in its own
committed transaction (before the switchboard call), ``finish_action`` records
the outcome, the phone state and the audit line in one transaction after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from connectors.switchboard.base import PhoneState
from rules.errors import StoreError
from rules.model import ActionStatus, Moment
from sync.store import records as rec
from sync.store.audit import audit_values, insert_audit, upsert_phone
from sync.store.base import (
    ACTIONS,
    REFERRALS,
    StoreBase,
    action_record,
    chunked,
    referral_record,
)

_MOMENT_ORDER = {Moment.END: 0, Moment.CHANGE: 1, Moment.START: 2}
_FINAL = (ActionStatus.DONE, ActionStatus.KEPT, ActionStatus.MISSED, ActionStatus.FAILED)


def _parked(now: datetime) -> tuple[Any, ...]:
    """The conditions of an action parked on 404 ``unknown_user`` at ``now``."""
    a = ACTIONS.c
    return (
        a.status == ActionStatus.PENDING,
        a.next_attempt_at > now,
        a.last_error.like(f"%{rec.PARKED_MARK}%"),
    )


def execution_order(action: rec.StoredAction) -> tuple[datetime, int, int]:
    """The order a user's due actions are carried out in (an end before a start at one instant)."""
    return (action.due_at, _MOMENT_ORDER[action.moment], action.id)


class ExecutionStore(StoreBase):
    """Due actions and their outcomes; referrals the switchboard still has to be told about."""

    def unpark_actions(self, now: datetime, user_ids: Sequence[str] | None = None) -> int:
        """Make actions parked on 404 ``unknown_user``, and publications waiting to be retried,
        due at ``now`` (a directory or config change may have fixed them); of ``user_ids``
        only, when given. How many actions."""
        a, r = ACTIONS.c, REFERRALS.c
        parked = update(ACTIONS).where(*_parked(now)).values(next_attempt_at=now)
        waiting = (
            update(REFERRALS)
            .where(r.next_attempt_at > now, r.publish_error.is_(None))
            .values(next_attempt_at=now)
        )
        if user_ids is not None:
            parked = parked.where(a.user_id.in_(list(user_ids)))
            waiting = waiting.where(r.user_id.in_(list(user_ids)))
        with self._conn() as conn:
            count = conn.execute(parked).rowcount
            conn.execute(waiting)
        return int(count or 0)

    def parked_users(self, now: datetime) -> list[str]:
        """Users with an action parked on 404 ``unknown_user`` (waiting for a later try)."""
        query = select(ACTIONS.c.user_id).where(*_parked(now)).distinct()
        with self._read() as conn:
            return sorted(row.user_id for row in conn.execute(query))

    # -- reading the plan --------------------------------------------------------------------

    def due_actions_of(
        self, user_ids: Sequence[str], now: datetime
    ) -> Iterator[list[rec.StoredAction]]:
        """The due actions of ``user_ids`` (from ``users_with_due_work``), one list per user.

        Read a batch of users at a time as the caller goes on; each list is in execution
        order; users with nothing due any more are left out.
        """
        for chunk in chunked(user_ids, 200):
            by_user: dict[str, list[rec.StoredAction]] = {u: [] for u in chunk}
            with self._read() as conn:
                rows = conn.execute(_DUE_OF_USERS, {"b_users": list(chunk), "b_now": now})
                for row in rows:
                    by_user[row.user_id].append(action_record(row))
            for actions in by_user.values():
                if actions:
                    yield sorted(actions, key=execution_order)

    def users_with_due_work(self, now: datetime) -> list[str]:
        """Users having a live action due now (or a crash leftover in ``sending``)."""
        query = (
            select(ACTIONS.c.user_id)
            .where(ACTIONS.c.status.in_(rec.LIVE_STATUSES), ACTIONS.c.due_at <= now)
            .distinct()
            .order_by(ACTIONS.c.user_id)
        )
        with self._read() as conn:
            return list(conn.scalars(query))

    def referral_actions(self, referral_id: str, generation: int) -> list[rec.StoredAction]:
        query = select(ACTIONS).where(
            ACTIONS.c.referral_id == referral_id, ACTIONS.c.generation == generation
        )
        with self._read() as conn:
            return [action_record(r) for r in conn.execute(query)]

    def actions(self, user_id: str | None = None) -> list[rec.StoredAction]:
        query = select(ACTIONS).order_by(ACTIONS.c.due_at, ACTIONS.c.id)
        if user_id is not None:
            query = query.where(ACTIONS.c.user_id == user_id)
        with self._read() as conn:
            return [action_record(r) for r in conn.execute(query)]

    def soonest_by_user(self) -> dict[str, datetime]:
        """Each user's soonest live action (or retry), in one query: start-up reads the
        calendars of the users with the soonest work first."""
        soonest = func.min(func.coalesce(ACTIONS.c.next_attempt_at, ACTIONS.c.due_at))
        query = (
            select(ACTIONS.c.user_id, soonest)
            .where(ACTIONS.c.status.in_(rec.LIVE_STATUSES))
            .group_by(ACTIONS.c.user_id)
        )
        with self._read() as conn:
            return {user: at for user, at in conn.execute(query) if at is not None}

    def next_due(self) -> datetime | None:
        """The earliest time any live action or pending publication needs the process."""
        with self._read() as conn:
            action = conn.scalar(
                select(func.min(func.coalesce(ACTIONS.c.next_attempt_at, ACTIONS.c.due_at))).where(
                    ACTIONS.c.status.in_(rec.LIVE_STATUSES)
                )
            )
            publish = conn.scalar(
                select(func.min(REFERRALS.c.next_attempt_at)).where(
                    REFERRALS.c.publish_error.is_(None)
                )
            )
        times = [t for t in (action, publish) if t is not None]
        return min(times) if times else None

    # -- carrying out ------------------------------------------------------------------------

    def claim(self, action: rec.StoredAction, now: datetime) -> rec.StoredAction | None:
        """Mark ``action`` ``sending`` (attempts + 1) and commit, before the switchboard call.

        Only if it is still live with the same idempotency key: None when a re-plan
        changed or cancelled it since it was read (the caller then leaves it to the
        next pass). Returns the action as stored now. ``StoreLost`` when the store's
        file is not the one opened any more (nothing is claimed then).
        """
        self.verify()
        with self._conn() as conn:
            row = conn.execute(
                _mark_sending(), {"b_id": action.id, "b_key": action.idempotency_key}
            ).first()
        return None if row is None else action_record(row)

    def finish_action(
        self,
        action_id: int,
        now: datetime,
        *,
        status: ActionStatus,
        outcome: rec.Outcome,
        detail: str = "",
        state: PhoneState | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
        expect_key: str | None = None,
    ) -> rec.StoredAction | None:
        """Record an action's outcome, the phone state and its audit line in one transaction.

        With ``expect_key`` only if the action is still live with that idempotency key
        (None otherwise: a re-plan changed it since it was read).
        """
        final = status in _FINAL
        params: dict[str, Any] = {
            "b_id": action_id,
            "status": status,
            "last_error": error,
            "next_attempt_at": retry_at,
        }
        if final:
            params["done_at"] = now
        if state is not None:
            params["result_version"] = state.version
            params["result_changed_by"] = state.changed_by
        if expect_key is not None:
            params["b_key"] = expect_key
        stmt = _finish(final=final, result=state is not None, guarded=expect_key is not None)
        with self._conn() as conn:
            row = conn.execute(stmt, params).first()
            if row is None:
                if expect_key is not None:
                    return None
                raise StoreError(f"store: planned action {action_id} does not exist")
            stored = action_record(row)
            if state is not None:
                upsert_phone(conn, stored.user_id, state, now)
            insert_audit(conn, [audit_values(now, stored, rec.AuditKind.ACTION, outcome, detail)])
        return stored

    # -- referrals outbox --------------------------------------------------------------------

    def published_referrals(self, now: datetime) -> list[tuple[str, str]]:
        """(user id, referral id) of every referral the switchboard should show now or later."""
        r = REFERRALS.c
        query = select(r.user_id, r.id).where(
            r.active.is_(True), r.published_hash.is_not(None), r.end_at > now
        )
        with self._read() as conn:
            return [(row.user_id, row.id) for row in conn.execute(query)]

    def mark_unpublished(self, referral_ids: Sequence[str]) -> None:
        """Forget that these referrals were published: the next pass publishes them again."""
        for chunk in chunked(list(referral_ids)):
            stmt = (
                update(REFERRALS)
                .where(REFERRALS.c.id.in_(chunk))
                .values(published_hash=None, publish_attempts=0, next_attempt_at=None)
            )
            with self._conn() as conn:
                conn.execute(stmt)

    def unpublished_referrals(self, now: datetime) -> list[rec.StoredReferral]:
        """Referrals whose switchboard copy differs from the plan, ready to (re)try."""
        r = REFERRALS.c
        query = (
            select(REFERRALS)
            .where(
                or_(
                    r.active.is_(True)
                    & (r.published_hash.is_(None) | (r.published_hash != r.content_hash)),
                    r.active.is_(False) & r.published_hash.is_not(None),
                ),
                r.publish_error.is_(None),
                or_(r.next_attempt_at.is_(None), r.next_attempt_at <= now),
            )
            .order_by(r.start_at)
        )
        with self._read() as conn:
            return [referral_record(row) for row in conn.execute(query)]

    def finish_publication(
        self,
        referral_id: str,
        now: datetime,
        *,
        published_hash: str | None,
        outcome: rec.Outcome,
        key: str,
        detail: str = "",
        error: str | None = None,
        retry_at: datetime | None = None,
        permanent: bool = False,
    ) -> None:
        """Record a publication's outcome and its audit line in one transaction."""
        if error is None:
            params: dict[str, Any] = {"b_id": referral_id, "published_hash": published_hash}
        else:
            params = {
                "b_id": referral_id,
                "next_attempt_at": retry_at,
                "publish_error": error if permanent else None,
            }
        with self._conn() as conn:
            user_id = conn.execute(_publication(succeeded=error is None), params).scalar()
            if user_id is None:
                raise StoreError(f"store: referral {referral_id!r} does not exist")
            audit = {
                "at": now,
                "user_id": user_id,
                "kind": rec.AuditKind.REFERRAL,
                "outcome": outcome,
                "action_id": None,
                "referral_id": referral_id,
                "idempotency_key": key,
                "action": None,
                "detail": detail or (error or ""),
            }
            insert_audit(conn, [audit])

    def referrals(self, user_id: str) -> list[rec.StoredReferral]:
        query = (
            select(REFERRALS).where(REFERRALS.c.user_id == user_id).order_by(REFERRALS.c.start_at)
        )
        with self._read() as conn:
            return [referral_record(r) for r in conn.execute(query)]


# -- statements, built once (building a Core statement costs more CPU than running it) ---------

_DUE_OF_USERS = select(ACTIONS).where(
    ACTIONS.c.user_id.in_(bindparam("b_users", expanding=True)),
    ACTIONS.c.status.in_(rec.LIVE_STATUSES),
    ACTIONS.c.due_at <= bindparam("b_now"),
)


def _where_action(stmt: Any, guarded: bool) -> Any:
    stmt = stmt.where(ACTIONS.c.id == bindparam("b_id"))
    if guarded:  # still live, and not re-armed (a new key) by a re-plan since it was read
        stmt = stmt.where(
            ACTIONS.c.idempotency_key == bindparam("b_key"),
            ACTIONS.c.status.in_(rec.LIVE_STATUSES),
        )
    return stmt


@cache
def _mark_sending() -> Any:
    stmt = _where_action(update(ACTIONS), guarded=True)
    values = {"status": ActionStatus.SENDING, "attempts": ACTIONS.c.attempts + 1}
    return stmt.values(values).returning(*ACTIONS.c)


@cache
def _finish(*, final: bool, result: bool, guarded: bool) -> Any:
    columns = ["status", "last_error", "next_attempt_at"]
    if final:
        columns.append("done_at")
    if result:
        columns += ["result_version", "result_changed_by"]
    stmt = _where_action(update(ACTIONS), guarded)
    return stmt.values({c: bindparam(c) for c in columns}).returning(*ACTIONS.c)


@cache
def _publication(*, succeeded: bool) -> Any:
    """Record a publication's outcome on a referral; returns its user id."""
    r = REFERRALS.c
    if succeeded:
        values: dict[str, Any] = {
            "published_hash": bindparam("published_hash"),
            "publish_attempts": 0,
            "next_attempt_at": None,
            "publish_error": None,
        }
    else:
        values = {
            "publish_attempts": r.publish_attempts + 1,
            "next_attempt_at": bindparam("next_attempt_at"),
            "publish_error": bindparam("publish_error"),
        }
    return update(REFERRALS).where(r.id == bindparam("b_id")).values(values).returning(r.user_id)
