"""The service's persistent store (SQLAlchemy 2 + Alembic; SQLite by default, PostgreSQL too)."""

from rules.errors import StoreError
from sync.store.db import create_store_engine
from sync.store.repository import Store

__all__ = ["Store", "StoreError", "create_store_engine"]
