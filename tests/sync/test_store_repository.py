"""The store on SQLite and PostgreSQL: migrations, round trips, UTC times, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from service_fakes import T0, make_users, meeting
from sqlalchemy import inspect

from connectors.calendars.base import SyncResult
from rules.errors import StoreError
from rules.model import CalendarEvent, OrganizerKind, ShowAs
from sync.store import Store
from sync.store.migrate import current_revision, head_revision, pending_diff


def test_migration_to_head_on_empty_database_matches_the_models(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    assert current_revision(store.engine) is None
    store.migrate()
    assert current_revision(store.engine) == head_revision() == "0004"
    tables = set(inspect(store.engine).get_table_names())
    assert {"users", "sources", "events", "referrals", "planned_actions", "audit_log"} <= tables
    assert pending_diff(store.engine) == []
    store.migrate()  # running again on start is harmless
    assert current_revision(store.engine) == head_revision()


def test_events_round_trip_with_full_and_incremental_syncs(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    store.migrate()
    store.upsert_users(make_users("anna"))
    allday = CalendarEvent(
        uid="d1",
        start=date(2026, 3, 3),
        end=date(2026, 3, 4),
        subject="Away",
        show_as=ShowAs.OOF,
        organizer_kind=OrganizerKind.EXTERNAL,
        categories=("x",),
    )
    m1 = meeting("m1", T0, 30)
    assert store.apply_sync("s", "anna", SyncResult([m1, allday], full=True, state="t1"), T0)
    assert not store.apply_sync("s", "anna", SyncResult([m1, allday], full=True, state="t2"), T0)
    assert sorted(store.events_for_user("anna"), key=lambda e: e.key) == [allday, m1]
    m2 = meeting("m2", T0, 15)
    assert store.apply_sync("s", "anna", SyncResult([m2], full=False, removed=["d1"]), T0)
    assert {e.key for e in store.events_for_user("anna")} == {"m1", "m2"}
    assert store.apply_sync("s", "anna", SyncResult([m2], full=True), T0)
    assert [e.key for e in store.events_for_user("anna")] == ["m2"]


def test_times_come_back_as_aware_utc_whatever_zone_went_in(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    store.migrate()
    stockholm = timezone(timedelta(hours=1))
    local = datetime(2026, 3, 2, 9, 30, tzinfo=stockholm)
    store.record_sync_failure("s", "anna", "boom", local, local + timedelta(minutes=5))
    [state] = store.sources()
    assert state.last_error_at == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    assert state.last_error_at.tzinfo is UTC


def test_naive_datetimes_are_refused(open_store: Callable[[], Store]) -> None:
    store = open_store()
    store.migrate()
    with pytest.raises(Exception, match="naive"):
        store.record_sync_failure("s", "anna", "x", datetime(2026, 1, 1), T0)


def test_users_are_upserted_and_unlisted_users_deactivated(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    store.migrate()
    store.upsert_users(make_users("anna", "bo"))
    store.upsert_users(make_users("anna"))
    assert [u.id for u in store.users()] == ["anna"]
    assert [u.id for u in store.users(active_only=False)] == ["anna", "bo"]
    assert store.users()[0].profiles[1].id == "mobile"


def test_unsupported_or_malformed_store_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store.open("mysql://localhost/x")
    with pytest.raises(StoreError, match="cannot parse"):
        Store.open("not a url")
