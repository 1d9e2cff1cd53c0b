"""The store's record of what happened: the last known phone state and the append-only audit log.

``save_phone`` and ``audit_action`` write inside a caller's transaction (the
plan and execution methods use them); the ``AuditStore`` methods open their own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.switchboard.base import PhoneMode, PhoneState
from rules.model import PhoneAction
from sync.store import records as rec
from sync.store.base import StoreBase
from sync.store.models import ActionRow, AuditRow, PhoneRow


def save_phone(s: Session, user_id: str, state: PhoneState, now: datetime) -> None:
    """Remember ``state`` as the user's phone state observed at ``now`` (in session ``s``)."""
    row = s.get(PhoneRow, user_id)
    if row is None:
        row = PhoneRow(user_id=user_id)
        s.add(row)
    row.mode, row.active_profile = state.mode.value, state.active_profile
    row.forward_number, row.version = state.forward_number, state.version
    row.changed_by, row.observed_at = state.changed_by, now


def audit_action(
    s: Session, now: datetime, row: ActionRow, kind: str, outcome: str, detail: str
) -> None:
    """Append an audit line about the action ``row`` (in session ``s``)."""
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


class AuditStore(StoreBase):
    """Phone states and the audit log."""

    def save_phone_state(self, user_id: str, state: PhoneState, now: datetime) -> None:
        with self._tx() as s:
            save_phone(s, user_id, state, now)

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
