"""The store's plan (the truth): referrals and their planned actions as re-planning writes them.

``apply_diffs`` writes the re-plans of many users in one transaction (one
re-plan is all or nothing); ``plan_states`` reads what the planner compares
against for many users at once. Both use SQLAlchemy Core and multi-row
statements: start-up re-plans every user, and per-user ORM round trips used to
cost more than planning itself. What a re-plan changes is a
``sync.store.changes.PlanDiff``; carrying the plan out is in ``sync.store.execution``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from rules.errors import StoreError
from rules.model import ActionStatus
from sync.store import records as rec
from sync.store.audit import insert_audit
from sync.store.base import (
    ACTIONS,
    REFERRALS,
    USERS,
    StoreBase,
    action_record,
    chunked,
    referral_record,
)
from sync.store.changes import PlanDiff

PlanState = tuple[list[rec.StoredReferral], list[rec.StoredAction]]

# columns a re-plan may change on a stored action (written back by ``_write_actions``)
_ACTION_MUTABLE = (
    "due_at",
    "referral_start",
    "referral_end",
    "action",
    "events",
    "rule",
    "status",
    "revision",
    "idempotency_key",
    "plan_version",
    "attempts",
    "next_attempt_at",
    "last_error",
    "done_at",
    "result_version",
    "result_changed_by",
)
_REFERRAL_CONTENT = (
    "generation",
    "start_at",
    "end_at",
    "reason",
    "message",
    "start_action",
    "end_action",
    "events",
    "active",
    "content_hash",
    "plan_version",
)
_PUBLISH_RESET = {"publish_attempts": 0, "next_attempt_at": None, "publish_error": None}


def _update_by_id(table: Any, columns: Sequence[str]) -> Any:
    """``UPDATE table SET col = :col ... WHERE id = :b_id`` for executemany."""
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({c: bindparam(c) for c in columns})
    )


class PlanStore(StoreBase):
    """Referrals and planned actions as re-planning reads and writes them."""

    def plan_state(self, user_id: str) -> PlanState:
        """The user's active referrals and the actions of their current generations."""
        return self.plan_states([user_id])[user_id]

    def plan_states(self, user_ids: Sequence[str]) -> dict[str, PlanState]:
        """``plan_state`` of many users, in a few queries."""
        out: dict[str, PlanState] = {u: ([], []) for u in user_ids}
        with self._read() as conn:
            for chunk in chunked(list(out)):
                refs = conn.execute(
                    select(REFERRALS).where(
                        REFERRALS.c.user_id.in_(chunk), REFERRALS.c.active.is_(True)
                    )
                )
                gens: dict[str, int] = {}
                for row in refs:
                    ref = referral_record(row)
                    out[ref.user_id][0].append(ref)
                    gens[ref.id] = ref.generation
                for ids in chunked(list(gens)):
                    rows = conn.execute(
                        select(ACTIONS)
                        .where(ACTIONS.c.referral_id.in_(ids), ACTIONS.c.user_id.in_(chunk))
                        .order_by(ACTIONS.c.id)
                    )
                    # include the next generation too: rows created when a running referral moved
                    for row in rows:
                        if row.generation >= gens[row.referral_id]:
                            out[row.user_id][1].append(action_record(row))
        return out

    def apply_diff(self, diff: PlanDiff, now: datetime) -> int:
        """Write a re-plan in one transaction; returns the user's plan version."""
        return self.apply_diffs([diff], now)[0]

    def apply_diffs(self, diffs: Sequence[PlanDiff], now: datetime) -> list[int]:
        """Write several users' re-plans in one transaction; returns their plan versions."""
        if len({d.user for d in diffs}) != len(diffs):  # one user twice: one after the other
            with self._conn() as conn:
                return [_write_diffs(conn, [d], now)[0] for d in diffs]
        with self._conn() as conn:
            return _write_diffs(conn, diffs, now)


def _write_diffs(conn: Connection, diffs: Sequence[PlanDiff], now: datetime) -> list[int]:
    """The writes of ``apply_diffs`` (each user at most once in ``diffs``)."""
    users = [d.user for d in diffs]
    known: dict[str, int] = {}
    for chunk in chunked(users):
        query = select(USERS.c.id, USERS.c.plan_version).where(USERS.c.id.in_(chunk))
        known.update({r.id: r.plan_version for r in conn.execute(query)})
    missing = [u for u in users if u not in known]
    if missing:
        raise StoreError(f"store: unknown user {missing[0]!r}")
    versions = [known[d.user] + (0 if d.empty and not d.upserts else 1) for d in diffs]
    conn.execute(
        update(USERS)
        .where(USERS.c.id == bindparam("b_id"))
        .values(plan_version=bindparam("v"), planned_at=bindparam("at")),
        [{"b_id": d.user, "v": v, "at": now} for d, v in zip(diffs, versions, strict=True)],
    )
    _write_referrals(conn, diffs, versions)
    new_actions = [
        {
            "identity": new.identity,
            "user_id": diff.user,
            "referral_id": new.referral_id,
            "generation": new.generation,
            "moment": new.moment,
            "ordinal": new.ordinal,
            "due_at": new.planned.at,
            "referral_start": new.planned.referral_start,
            "referral_end": new.referral_end,
            "action": rec.action_to_text(new.planned.action),
            "events": rec.keys_to_text(new.planned.events),
            "rule": new.planned.rule,
            "status": new.status,
            "revision": 0,
            "idempotency_key": rec.idempotency_key(new.identity, 0),
            "plan_version": version,
            "attempts": 0,
            "next_attempt_at": None,
            "last_error": None,
            "done_at": None,
            "result_version": None,
            "result_changed_by": None,
        }
        for diff, version in zip(diffs, versions, strict=True)
        for new in diff.new_actions
    ]
    if new_actions:
        conn.execute(insert(ACTIONS), new_actions)
    for diff, version in zip(diffs, versions, strict=True):
        if diff.updates or diff.cancels or diff.end_now:
            _write_action_changes(conn, diff, version, now)
    return versions


def _write_referrals(conn: Connection, diffs: Sequence[PlanDiff], versions: list[int]) -> None:
    """Upsert the referrals the plans want and deactivate the ones they withdrew."""
    upserts = [
        (diff.user, up, version)
        for diff, version in zip(diffs, versions, strict=True)
        for up in diff.upserts
    ]
    existing: dict[str, Any] = {}
    for chunk in chunked([up.id for _u, up, _v in upserts]):
        query = select(REFERRALS.c.id, REFERRALS.c.content_hash, REFERRALS.c.active).where(
            REFERRALS.c.id.in_(chunk)
        )
        existing.update({r.id: r for r in conn.execute(query)})
    inserts: list[dict[str, Any]] = []
    keep: list[dict[str, Any]] = []
    reset: list[dict[str, Any]] = []
    for user_id, up, version in upserts:
        ref = up.referral
        values = {
            "generation": up.generation,
            "start_at": ref.start,
            "end_at": ref.end,
            "reason": ref.reason,
            "message": ref.message,
            "start_action": rec.action_to_text(ref.start_action),
            "end_action": rec.action_to_text(ref.end_action),
            "events": rec.keys_to_text(ref.events),
            "active": True,
            "content_hash": up.content_hash,
            "plan_version": version,
        }
        old = existing.get(up.id)
        if old is None:
            inserts.append(
                {"id": up.id, "user_id": user_id, "published_hash": None} | values | _PUBLISH_RESET
            )
        elif old.content_hash != up.content_hash or not old.active:
            reset.append({"b_id": up.id} | values | _PUBLISH_RESET)
        else:
            keep.append({"b_id": up.id} | values)
    if inserts:
        conn.execute(insert(REFERRALS), inserts)
    if keep:
        conn.execute(_update_by_id(REFERRALS, _REFERRAL_CONTENT), keep)
    if reset:
        conn.execute(_update_by_id(REFERRALS, _REFERRAL_CONTENT + tuple(_PUBLISH_RESET)), reset)
    expired = [{"b_id": wd.id} for d in diffs for wd in d.withdrawals if wd.expired]
    withdrawn = [{"b_id": wd.id} for d in diffs for wd in d.withdrawals if not wd.expired]
    if expired:  # over and out of the window: nothing to withdraw
        stmt = update(REFERRALS).where(REFERRALS.c.id == bindparam("b_id"))
        conn.execute(stmt.values(active=False, published_hash=None), expired)
    if withdrawn:
        stmt = update(REFERRALS).where(REFERRALS.c.id == bindparam("b_id"))
        conn.execute(stmt.values(active=False, **_PUBLISH_RESET), withdrawn)


def _write_action_changes(conn: Connection, diff: PlanDiff, version: int, now: datetime) -> None:
    """Rescheduled, cancelled and end-now actions of one re-plan, with their audit lines."""
    ids = sorted({u.id for u in diff.updates} | set(diff.cancels) | set(diff.end_now))
    rows: dict[int, dict[str, Any]] = {}
    for chunk in chunked(ids):
        query = select(ACTIONS).where(ACTIONS.c.id.in_(chunk))
        rows.update({r.id: dict(r._mapping) for r in conn.execute(query)})

    def row_of(action_id: int) -> dict[str, Any]:
        row = rows.get(action_id)
        if row is None:
            raise StoreError(f"store: planned action {action_id} does not exist")
        return row

    audits: list[dict[str, Any]] = []

    def audit(row: dict[str, Any], outcome: rec.Outcome, detail: str) -> None:
        audits.append(
            {
                "at": now,
                "user_id": row["user_id"],
                "kind": rec.AuditKind.PLAN,
                "outcome": outcome,
                "action_id": row["id"],
                "referral_id": row["referral_id"],
                "idempotency_key": row["idempotency_key"],
                "action": f"{row['moment']}: {rec.action_from_text(row['action'])}",
                "detail": detail,
            }
        )

    for upd in diff.updates:
        row, p = row_of(upd.id), upd.planned
        row.update(
            due_at=upd.due_at,
            referral_start=p.referral_start,
            referral_end=upd.referral_end,
            action=rec.action_to_text(p.action),
            events=rec.keys_to_text(p.events),
            rule=p.rule,
            plan_version=version,
        )
        if upd.rearm:
            _rearm(row)
            audit(row, rec.Outcome.RESCHEDULED, f"due {upd.due_at}")
    for action_id in diff.cancels:
        row = row_of(action_id)
        row.update(status=ActionStatus.CANCELLED, plan_version=version)
        audit(row, rec.Outcome.CANCELLED, "no longer in the plan")
    for action_id in diff.end_now:
        row = row_of(action_id)
        row.update(due_at=now, plan_version=version)
        if row["status"] != ActionStatus.PENDING:
            _rearm(row)
        audit(row, rec.Outcome.END_NOW, "referral withdrawn or cut short while running")
    conn.execute(
        _update_by_id(ACTIONS, _ACTION_MUTABLE),
        [{"b_id": r["id"]} | {c: r[c] for c in _ACTION_MUTABLE} for r in rows.values()],
    )
    insert_audit(conn, audits)


def _rearm(row: dict[str, Any]) -> None:
    """Set a stored action pending again with a new revision (so a new idempotency key)."""
    row["revision"] += 1
    row["idempotency_key"] = rec.idempotency_key(row["identity"], row["revision"])
    row.update(status=ActionStatus.PENDING, attempts=0, next_attempt_at=None, last_error=None)
    row.update(done_at=None, result_version=None, result_changed_by=None)
