"""The store's record of what happened: the last known phone state and the append-only audit log.

``upsert_phone`` and ``insert_audit`` write on a caller's SQLAlchemy Core
connection, inside its transaction (the executor records an action's outcome,
the phone state and the audit line in one); the ``AuditStore`` methods open
their own transactions.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from connectors.switchboard.base import PhoneMode, PhoneState
from rules.model import PhoneAction
from sync.store import records as rec
from sync.store.base import AUDIT, PHONES, StoreBase
from sync.store.models import AuditRow, PhoneRow


def upsert_phone(conn: Connection, user_id: str, state: PhoneState, now: datetime) -> None:
    """Remember ``state`` as the user's phone state observed at ``now`` (one upsert)."""
    upsert_phones(conn, {user_id: (state, now)})


def upsert_phones(conn: Connection, phones: dict[str, tuple[PhoneState, datetime]]) -> None:
    """Remember each user's phone state and when it was observed (one statement for all)."""
    if not phones:
        return
    rows = [
        {
            "user_id": user_id,
            "mode": state.mode.value,
            "active_profile": state.active_profile,
            "forward_number": state.forward_number,
            "version": state.version,
            "changed_by": state.changed_by,
            "observed_at": now,
        }
        for user_id, (state, now) in phones.items()
    ]
    stmt = _phone_upsert(conn.dialect.name)
    if stmt is not None:
        conn.execute(stmt, rows if len(rows) > 1 else rows[0])
        return
    for params in rows:
        values = {k: v for k, v in params.items() if k != "user_id"}
        where = PHONES.c.user_id == params["user_id"]
        done = conn.execute(update(PHONES).where(where).values(values))
        if done.rowcount == 0:
            conn.execute(insert(PHONES).values(params))


@cache
def _phone_upsert(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (user_id) DO UPDATE`` for SQLite and PostgreSQL, else None."""
    if dialect not in ("sqlite", "postgresql"):
        return None
    dialect_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    columns = [c.name for c in PHONES.c]
    stmt = dialect_insert(PHONES).values({c: bindparam(c) for c in columns})
    changed = {c: stmt.excluded[c] for c in columns if c != "user_id"}
    return stmt.on_conflict_do_update(index_elements=["user_id"], set_=changed)


_INSERT_AUDIT = insert(AUDIT)


def audit_values(
    now: datetime, action: rec.StoredAction, kind: rec.AuditKind, outcome: rec.Outcome, detail: str
) -> dict[str, Any]:
    """The ``audit_log`` row (for a Core insert) about the planned ``action``."""
    return {
        "at": now,
        "user_id": action.user_id,
        "kind": kind,
        "outcome": outcome,
        "action_id": action.id,
        "referral_id": action.referral_id,
        "idempotency_key": action.idempotency_key,
        "action": f"{action.moment}: {action.action}",
        "detail": detail,
    }


def insert_audit(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` (``audit_values`` dicts) to the audit log on connection ``conn``."""
    if rows:
        conn.execute(_INSERT_AUDIT, rows)


class AuditStore(StoreBase):
    """Phone states and the audit log."""

    def save_phone_state(self, user_id: str, state: PhoneState, now: datetime) -> None:
        with self._conn() as conn:
            upsert_phone(conn, user_id, state, now)

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

    def audit(
        self,
        now: datetime,
        user_id: str,
        kind: rec.AuditKind,
        outcome: rec.Outcome,
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
                    rec.AuditKind(r.kind),
                    rec.Outcome(r.outcome),
                    r.action_id,
                    r.referral_id,
                    r.idempotency_key,
                    r.action,
                    r.detail,
                )
                for r in s.scalars(query)
            ]
