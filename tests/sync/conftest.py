"""Fixtures for the service tests: a store on SQLite and on PostgreSQL, clocks, users.

The PostgreSQL variants need the server at 127.0.0.1:5432 (trust auth). When it
is not reachable they are skipped with the reason, unless ``CALREF_REQUIRE_POSTGRES=1``
is set: then they fail (that is how CI makes them mandatory). Each PostgreSQL test
runs in its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from service_fakes import T0
from sqlalchemy import create_engine, text

from connectors.clock import VirtualClock
from sync.store import Store

PG_URL = os.environ.get(
    "CALREF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_pg_reason: list[str | None] = []


def _postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if not _pg_reason:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_reason.append(None)
        except Exception as err:
            _pg_reason.append(f"{type(err).__name__}: {str(err).splitlines()[0]}")
    return _pg_reason[0]


def _require_postgres() -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at {PG_URL} is not reachable ({problem})"
    if os.environ.get("CALREF_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " and CALREF_REQUIRE_POSTGRES=1")
    pytest.skip(message)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/calref.db"
        return
    _require_postgres()
    schema = f"calref_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens (and later closes) stores on the same database: a restart is a second call."""
    opened: list[Store] = []

    def factory() -> Store:
        store = Store.open(store_url)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def sqlite_store(tmp_path: object) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path}/calref.db")
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)
