"""Alembic migrations of the plan store (run from code by ``sync.store.migrate``)."""
