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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, literal, or_, select, update
from sqlalchemy.engine import Connection

from connectors.switchboard.base import PhoneState
from rules.errors import StoreError
from rules.model import ActionStatus, Moment
from sync.store import records as rec
from sync.store.audit import audit_values, insert_audit, upsert_phones
from sync.store.base import (
    ACTIONS,
    REFERRALS,
    StoreBase,
    action_record,
    chunked,
    referral_record,
)
from sync.store.group_commit import Batch, Pending

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

    def next_due(self, now: datetime) -> datetime | None:
        """The earliest time any live action or pending publication needs the process.

        A referral whose switchboard copy differs from the plan (a re-plan just made
        or changed it: ``next_attempt_at`` is unset) is due ``now``, so what a re-plan
        produced is published at once rather than at the next tick.
        """
        r = REFERRALS.c
        with self._read() as conn:
            action = conn.scalar(
                select(func.min(func.coalesce(ACTIONS.c.next_attempt_at, ACTIONS.c.due_at))).where(
                    ACTIONS.c.status.in_(rec.LIVE_STATUSES)
                )
            )
            publish = conn.scalar(
                select(
                    func.min(func.coalesce(r.next_attempt_at, literal(now, r.next_attempt_at.type)))
                ).where(_PENDING_PUBLICATION, r.publish_error.is_(None))
            )
        times = [t for t in (action, publish) if t is not None]
        return min(times) if times else None

    # -- carrying out ------------------------------------------------------------------------

    def _write_batch(self, conn: Connection, batch: Batch) -> None:
        """A group commit's phone states and audit lines, one statement each."""
        upsert_phones(conn, batch.phones)
        insert_audit(conn, batch.audit)

    def claim(self, action: rec.StoredAction, now: datetime) -> rec.StoredAction | None:
        """Mark ``action`` ``sending`` (attempts + 1) and commit, before the switchboard call.

        Only if it is still live with the same idempotency key: None when a re-plan
        changed or cancelled it since it was read (the caller then leaves it to the
        next pass). Returns the action as stored now. ``StoreLost`` when the store's
        file is not the one opened any more (nothing is claimed then). Claims made by
        several threads at once share one transaction (``sync.store.group_commit``).
        """
        params = {"b_id": action.id, "b_key": action.idempotency_key}

        def mark(conn: Connection, _batch: Batch) -> int | None:
            return conn.execute(_mark_sending(), params).scalar()

        attempts = self.writes.run(mark, verify=True)
        if attempts is None:
            return None
        return replace(action, status=ActionStatus.SENDING, attempts=attempts)

    def finish_action(
        self,
        action: rec.StoredAction,
        now: datetime,
        *,
        status: ActionStatus,
        outcome: rec.Outcome,
        detail: str = "",
        state: PhoneState | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
        guarded: bool = True,
        on_done: Callable[[bool], None] | None = None,
    ) -> Pending[bool]:
        """Record an action's outcome, the phone state and its audit line in one transaction.

        Queued for the next group commit (``sync.store.group_commit``); the
        ``Pending`` says, once committed, whether it was recorded (``on_done`` is
        called with that then). ``guarded``: only if the action is still live with
        ``action``'s idempotency key (False otherwise: a re-plan changed it since
        it was read); unguarded (an action we claimed) it is always recorded, and
        ``StoreError`` when the action does not exist.
        """
        final = status in _FINAL
        params: dict[str, Any] = {
            "b_id": action.id,
            "status": status,
            "last_error": error,
            "next_attempt_at": retry_at,
        }
        if final:
            params["done_at"] = now
        if state is not None:
            params["result_version"] = state.version
            params["result_changed_by"] = state.changed_by
        if guarded:
            params["b_key"] = action.idempotency_key
        stmt = _finish(final=final, result=state is not None, guarded=guarded)
        audit = audit_values(now, action, rec.AuditKind.ACTION, outcome, detail)

        def record(conn: Connection, batch: Batch) -> bool:
            if conn.execute(stmt, params).rowcount != 1:
                if guarded:
                    return False
                raise StoreError(f"store: planned action {action.id} does not exist")
            if state is not None:
                batch.phones[action.user_id] = (state, now)
            batch.audit.append(audit)
            return True

        return self.writes.submit(record, on_done=on_done)

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
                _PENDING_PUBLICATION,
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

#: a referral whose switchboard copy differs from the plan (new, changed, or dropped)
_PENDING_PUBLICATION = or_(
    REFERRALS.c.active.is_(True)
    & (
        REFERRALS.c.published_hash.is_(None)
        | (REFERRALS.c.published_hash != REFERRALS.c.content_hash)
    ),
    REFERRALS.c.active.is_(False) & REFERRALS.c.published_hash.is_not(None),
)

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
    """Mark a live action ``sending``; returns its new attempt count (none: not live any more)."""
    stmt = _where_action(update(ACTIONS), guarded=True)
    values = {"status": ActionStatus.SENDING, "attempts": ACTIONS.c.attempts + 1}
    return stmt.values(values).returning(ACTIONS.c.attempts)


@cache
def _finish(*, final: bool, result: bool, guarded: bool) -> Any:
    columns = ["status", "last_error", "next_attempt_at"]
    if final:
        columns.append("done_at")
    if result:
        columns += ["result_version", "result_changed_by"]
    stmt = _where_action(update(ACTIONS), guarded)
    return stmt.values({c: bindparam(c) for c in columns})


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
