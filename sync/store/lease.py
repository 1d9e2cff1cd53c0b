"""The store's leader lease: at most one ``calref run`` process acts on a store at a time.

The ``service_lease`` table has one row: the holder (``host:pid:random``),
when it acquired the lease, when it last renewed it and when it expires. A
process may act (poll, plan, publish, send) only while it holds an unexpired
lease; another process on the same store waits as a standby and takes the lease
once it expires or is released.

Taking the lease is one atomic statement on both databases: ``INSERT … ON
CONFLICT (name) DO UPDATE … WHERE holder = me OR expires_at <= now``. Whatever
interleaving, of two processes racing for a free or lapsed lease exactly one
changes the row (SQLite serialises writers; PostgreSQL locks the conflicting row
and re-checks the ``WHERE`` on its newest version), and the statement's
``RETURNING`` tells each caller whether it was the one. Renewing and releasing are
``UPDATE … WHERE holder = me``: they never touch another holder's lease.

Times come from the callers' clocks (``now``): processes on different hosts
need clocks in step to well within the lease's time to live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from sync.store.base import StoreBase, _table
from sync.store.models import ServiceLeaseRow

LEASE = _table(ServiceLeaseRow)
#: the name of the one lease row
LEASE_NAME = "service"


@dataclass(frozen=True)
class Lease:
    """The lease row as stored (times aware UTC)."""

    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        """Whether the lease still binds others at ``now``."""
        return self.expires_at > now


class LeaseStore(StoreBase):
    """The leader lease (Core statements; a transaction per method)."""

    def try_acquire_lease(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lease for ``holder`` until ``now + ttl`` if it is free, lapsed or ours.

        Atomic: of any number of concurrent callers (threads or processes) at most
        one gets True while the lease is live. Renews it when ``holder`` has it.
        """
        _check(holder, ttl)
        self.verify()
        values = {
            "name": LEASE_NAME,
            "holder": holder,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + ttl,
        }
        insert = _dialect_insert(self.engine.dialect.name)
        stmt = insert(LEASE).values(values)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[LEASE.c.name],
            set_={
                "holder": excluded.holder,
                "acquired_at": case(
                    (LEASE.c.holder == excluded.holder, LEASE.c.acquired_at),
                    else_=excluded.acquired_at,
                ),
                "renewed_at": excluded.renewed_at,
                "expires_at": excluded.expires_at,
            },
            where=(LEASE.c.holder == excluded.holder) | (LEASE.c.expires_at <= excluded.renewed_at),
        ).returning(LEASE.c.holder)
        with self._conn() as conn:
            # a row comes back only when this statement inserted or updated it (the row
            # count is not reliable for an upsert on every driver: psycopg reports -1)
            return conn.execute(stmt).first() is not None

    def renew_lease(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Extend ``holder``'s lease to ``now + ttl``; False when another process has it.

        A lease that lapsed but was not taken by anyone is still ``holder``'s: no
        one else acted meanwhile, so renewing it is safe.
        """
        _check(holder, ttl)
        self.verify()
        stmt = (
            update(LEASE)
            .where(LEASE.c.name == LEASE_NAME, LEASE.c.holder == holder)
            .values(renewed_at=now, expires_at=now + ttl)
        )
        with self._conn() as conn:
            return conn.execute(stmt).rowcount == 1

    def release_lease(self, holder: str) -> bool:
        """Give up ``holder``'s lease (it expires at its last renewal); False if not held."""
        stmt = (
            update(LEASE)
            .where(LEASE.c.name == LEASE_NAME, LEASE.c.holder == holder)
            .values(expires_at=LEASE.c.renewed_at)
        )
        with self._conn() as conn:
            return conn.execute(stmt).rowcount == 1

    def lease(self) -> Lease | None:
        """The lease row as stored, live or not (None: never taken)."""
        with self._read() as conn:
            row = conn.execute(select(LEASE).where(LEASE.c.name == LEASE_NAME)).first()
        if row is None:
            return None
        return Lease(row.holder, row.acquired_at, row.renewed_at, row.expires_at)

    def lease_holder(self, now: datetime) -> Lease | None:
        """The live lease at ``now`` (None when free, released or lapsed)."""
        lease = self.lease()
        return lease if lease is not None and lease.live(now) else None


def _check(holder: str, ttl: timedelta) -> None:
    if not holder:
        raise ValueError("lease holder must not be empty")
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")


def _dialect_insert(dialect: str) -> Any:
    """The insert construct with ``on_conflict_do_update`` for the store's database."""
    if dialect == "sqlite":
        return sqlite.insert
    if dialect == "postgresql":
        return postgresql.insert
    raise ValueError(f"the leader lease supports sqlite and postgresql, not {dialect}")
