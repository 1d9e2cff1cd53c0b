"""Opening the store's database: engine creation for SQLite (WAL) and PostgreSQL.

SQLite is the default (one file, WAL journal so readers never block the
writer, a busy timeout instead of "database is locked" errors); PostgreSQL uses
the same models and migrations through psycopg 3.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from rules.errors import CalrefError

log = logging.getLogger(__name__)


#: Connections kept open: the executor's worker threads (16 by default) each use one at a
#: time, and with SQLAlchemy's default of 5 the others were closed and reopened per action.
_POOL: dict[str, Any] = {"pool_size": 20, "max_overflow": 20}


class StoreError(CalrefError):
    """The store cannot be opened or used (bad URL, unreachable database)."""


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path.db`` or ``postgresql+psycopg://...``)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"store url: cannot parse {url!r} as a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args = {"timeout": 30, "check_same_thread": False}
        in_memory = parsed.database in (None, "", ":memory:")
        if not in_memory:
            kwargs = _POOL | kwargs
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, **(_POOL | kwargs))
    raise StoreError(
        f"store url: unsupported database {backend!r} (use sqlite:/// or postgresql+psycopg://)"
    )
