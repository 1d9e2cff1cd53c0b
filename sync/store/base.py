"""The base of the store's parts: its sessions (a transaction per method), row-to-record mapping.

``StoreBase`` holds the engine and opens the transactions; the ``*_record``
functions turn ORM rows into the ``sync.store.records`` dataclasses the store's
methods return (never ORM rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from sync.store import records as rec
from sync.store.models import ActionRow, ReferralRow, SourceRow


class StoreBase:
    """The engine and its sessions, shared by the store's parts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session


def action_record(row: ActionRow) -> rec.StoredAction:
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


def referral_record(row: ReferralRow) -> rec.StoredReferral:
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


def source_record(row: SourceRow) -> rec.SourceState:
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
