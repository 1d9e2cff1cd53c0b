"""The base of the store's parts: its sessions (a transaction per method), row-to-record mapping.

``StoreBase`` holds the engine and opens the transactions: ORM sessions
(``_tx``) for the rarely used methods, plain SQLAlchemy Core connections
(``_conn`` to write, ``_read`` to only read) for the hot paths (the executor
runs several statements per action, and the ORM's unit of work costs more CPU
than the database does). On SQLite, writing transactions of one process take
turns on a lock: SQLite has one writer at a time, and its busy handler sleeps
(up to 100 ms a try) where a waiting thread could have been handed the turn. The
``*_record`` functions turn rows, ORM or Core (same attribute names), into the
``sync.store.records`` dataclasses the store's methods return (never rows).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from rules.model import ActionStatus, Moment
from sync.store import records as rec
from sync.store.db import FileIdentity
from sync.store.group_commit import Batch, GroupCommit
from sync.store.models import (
    ActionRow,
    AuditRow,
    EventRow,
    PhoneRow,
    ReferralRow,
    SourceRow,
    UserRow,
)

_T = TypeVar("_T")


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# The tables, for SQLAlchemy Core statements on the hot paths.
USERS = _table(UserRow)
SOURCES = _table(SourceRow)
EVENTS = _table(EventRow)
REFERRALS = _table(ReferralRow)
ACTIONS = _table(ActionRow)
PHONES = _table(PhoneRow)
AUDIT = _table(AuditRow)

#: at most this many bound values in one ``IN (...)`` (well under SQLite's and PostgreSQL's limits)
CHUNK = 500


def chunked(items: Sequence[_T], size: int = CHUNK) -> Iterable[Sequence[_T]]:
    """``items`` in slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


class StoreBase:
    """The engine and its sessions, shared by the store's parts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: the SQLite file opened (None: PostgreSQL or in memory), checked by ``verify``
        self.identity: FileIdentity | None = None
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
        #: the executor's writes, many per transaction (``sync.store.group_commit``)
        self.writes = GroupCommit(self._conn, before=self.verify, after=self._write_batch)

    def verify(self) -> None:
        """Raise ``StoreLost`` when the SQLite file was deleted or replaced since it was opened."""
        if self.identity is not None:
            self.identity.verify()

    def _write_batch(self, conn: Connection, batch: Batch) -> None:
        """Write what a group commit's writes appended (``ExecutionStore`` does)."""

    def _writer_turn(self) -> AbstractContextManager[object]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """An ORM session in a transaction (which may write)."""
        with self._writer_turn(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        """A Core connection in a transaction that may write: committed on success."""
        with self._writer_turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A Core connection in a read-only transaction (readers never wait for writers)."""
        with self.engine.begin() as conn:
            yield conn


def action_record(row: Any) -> rec.StoredAction:
    """An ``ActionRow`` or a Core row of ``planned_actions`` as a record."""
    return rec.StoredAction(
        id=row.id,
        identity=row.identity,
        user_id=row.user_id,
        referral_id=row.referral_id,
        generation=row.generation,
        moment=Moment(row.moment),
        ordinal=row.ordinal,
        due_at=row.due_at,
        referral_start=row.referral_start,
        referral_end=row.referral_end,
        action=rec.action_from_text(row.action),
        events=rec.keys_from_text(row.events),
        rule=row.rule,
        status=ActionStatus(row.status),
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


def referral_record(row: Any) -> rec.StoredReferral:
    """A ``ReferralRow`` or a Core row of ``referrals`` as a record."""
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


def source_record(row: Any) -> rec.SourceState:
    """A ``SourceRow`` or a Core row of ``sources`` as a record."""
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
