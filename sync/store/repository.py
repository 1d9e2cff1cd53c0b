"""The store: everything the service remembers, behind typed methods (one transaction each).

Users and profiles, each calendar source's sync state, the accepted events, the
referrals and planned actions (the plan, which is the truth), the last known
phone state and the append-only audit log. Works the same on SQLite and
PostgreSQL. Methods return ``sync.store.records`` dataclasses, never ORM rows.
``Store`` is assembled from its parts: ``sync.store.sources`` (sources and
events), ``sync.store.plan`` (writing a re-plan, a ``sync.store.changes.PlanDiff``),
``sync.store.execution`` (carrying out the plan, the referrals outbox),
``sync.store.audit`` (phone states and the audit log), ``sync.store.push``
(push subscriptions kept across restarts) and ``sync.store.lease`` (the leader
lease: one acting process per store); users and the schema live here.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import OperationalError

from rules.errors import StoreError
from rules.model import User
from sync.store import records as rec
from sync.store.audit import AuditStore
from sync.store.base import USERS
from sync.store.db import FileIdentity, create_store_engine, sqlite_path
from sync.store.execution import ExecutionStore
from sync.store.lease import LeaseStore
from sync.store.migrate import current_revision, head_revision, upgrade_to_head
from sync.store.plan import PlanStore
from sync.store.push import PushStore
from sync.store.sources import SourceStore

log = logging.getLogger(__name__)


class Store(SourceStore, PlanStore, ExecutionStore, AuditStore, PushStore, LeaseStore):
    """The service's database. Thread-safe: every method runs in its own session."""

    @classmethod
    def open(cls, url: str, *, readonly: bool = False) -> Store:
        """Open (not yet migrate) the store at ``url``.

        A SQLite file is created (mode 0600) when missing, unless ``readonly``: then
        it must exist, is opened read-only, and must be at the newest schema.
        """
        store = cls(create_store_engine(url, readonly=readonly))
        path = sqlite_path(url)
        if path is not None:
            store.identity = FileIdentity.of(path)
        if readonly:
            store._check_schema()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest migration; safe to call on every start."""
        try:
            upgrade_to_head(self.engine)
        except OperationalError as err:
            raise StoreError(f"store: cannot migrate the database: {err.orig}") from None

    def _check_schema(self) -> None:
        try:
            current = current_revision(self.engine)
        except OperationalError as err:
            raise StoreError(f"store: cannot read the database: {err.orig}") from None
        if current is None:
            raise StoreError("store: the database is empty (no `calref run` has used it yet)")
        if current != head_revision():
            raise StoreError(
                f"store: the database is at schema {current}, this calref needs "
                f"{head_revision()} (`calref run` upgrades it)"
            )

    def close(self) -> None:
        """Commit the writes still queued, then close the database connections."""
        self.writes.close()
        self.engine.dispose()

    # -- users -------------------------------------------------------------------------------

    def upsert_users(self, users: list[User]) -> None:
        """Store the configured users; users no longer configured become inactive."""
        configured = {u.id: u for u in users}
        with self._conn() as conn:
            known = {r.id: r.active for r in conn.execute(select(USERS.c.id, USERS.c.active))}
            rows = [
                {
                    "name": u.name,
                    "email": u.email,
                    "extension": u.extension,
                    "profiles": rec.profiles_to_text(u.profiles),
                    "active": True,
                }
                for u in configured.values()
            ]
            new = [
                {"id": u.id, "plan_version": 0, "planned_at": None} | row
                for u, row in zip(configured.values(), rows, strict=True)
                if u.id not in known
            ]
            old = [
                {"b_id": u.id} | row
                for u, row in zip(configured.values(), rows, strict=True)
                if u.id in known
            ]
            if new:
                conn.execute(insert(USERS), new)
            if old:
                stmt = update(USERS).where(USERS.c.id == bindparam("b_id"))
                conn.execute(stmt.values({k: bindparam(k) for k in rows[0]}), old)
            gone = [{"b_id": u} for u, active in known.items() if active and u not in configured]
            if gone:
                stmt = update(USERS).where(USERS.c.id == bindparam("b_id"))
                conn.execute(stmt.values(active=False), gone)

    def users(self, *, active_only: bool = True) -> list[User]:
        query = select(USERS).order_by(USERS.c.id)
        if active_only:
            query = query.where(USERS.c.active.is_(True))
        with self._read() as conn:
            return [
                User(r.id, r.name, r.email, r.extension, rec.profiles_from_text(r.profiles))
                for r in conn.execute(query)
            ]

    def planned_times(self) -> dict[str, datetime | None]:
        """Every stored user's ``planned_at`` (None: never planned), in one query."""
        with self._read() as conn:
            rows = conn.execute(select(USERS.c.id, USERS.c.planned_at))
            return {r.id: r.planned_at for r in rows}
