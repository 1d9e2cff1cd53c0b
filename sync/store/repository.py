"""The store: everything the service remembers, behind typed methods (one transaction each).

Users and profiles, each calendar source's sync state, the accepted events, the
referrals and planned actions (the plan, which is the truth), the last known
phone state and the append-only audit log. Works the same on SQLite and
PostgreSQL. Methods return ``sync.store.records`` dataclasses, never ORM rows.
``Store`` is assembled from its parts: ``sync.store.sources`` (sources and
events), ``sync.store.plan`` (referrals and actions) and ``sync.store.audit``
(phone states and the audit log); users and the schema live here.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from rules.model import User
from sync.store import records as rec
from sync.store.audit import AuditStore
from sync.store.db import StoreError, create_store_engine
from sync.store.migrate import upgrade_to_head
from sync.store.models import UserRow
from sync.store.plan import PlanStore
from sync.store.sources import SourceStore

log = logging.getLogger(__name__)


class Store(SourceStore, PlanStore, AuditStore):
    """The service's database. Thread-safe: every method runs in its own session."""

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
