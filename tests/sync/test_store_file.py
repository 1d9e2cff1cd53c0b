"""The SQLite store's file (issue 7, items 5 and 6): created private, checked, never lost silently.

The file is created 0600 (its -wal and -shm too); a read-only file or folder is
a ``StoreError`` with a message, never a database traceback; a read-only open
never creates a file; a file deleted or replaced under a running service is
``StoreLost``, and the service then stops acting for good.
"""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from service_fakes import T0, FakeCalendar, build_service, make_users, meeting, phone_commands

from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.errors import StoreError, StoreLost
from sync.service.service import Service
from sync.store import Store

needs_non_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _opened(path: Path) -> Store:
    store = Store.open(f"sqlite:///{path}")
    store.migrate()
    return store


def _annas_service(store: Store, clock: VirtualClock) -> tuple[SimulatedSwitchboard, Service]:
    """A service for anna on ``store``: one meeting, due ten minutes after T0."""
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("anna-cal", [meeting("a1", T0 + timedelta(minutes=10), 30)])
    return sim, build_service(store, sim, clock, {"anna": [cal]}, users)


def test_the_file_and_its_journal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask would give 0644
    try:
        store = _opened(tmp_path / "calref.db")
        store.upsert_users(make_users("anna"))
        files = sorted(p.name for p in tmp_path.iterdir())
        modes = {p.name: _mode(p) for p in tmp_path.iterdir()}
        store.close()
    finally:
        os.umask(old)
    assert files == ["calref.db", "calref.db-shm", "calref.db-wal"]
    assert modes == dict.fromkeys(files, 0o600)


def test_a_read_only_open_never_creates_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(f"sqlite:///{tmp_path}/calref.db", readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_open_reads_an_existing_store(tmp_path: Path) -> None:
    _opened(tmp_path / "calref.db").upsert_users(make_users("anna"))
    store = Store.open(f"sqlite:///{tmp_path}/calref.db", readonly=True)
    assert [u.id for u in store.users()] == ["anna"]
    with pytest.raises(Exception):  # noqa: B017 (any database error: it is read-only)
        store.upsert_users(make_users("bob"))
    store.close()


def test_a_read_only_open_of_an_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "calref.db").touch()
    with pytest.raises(StoreError, match="empty"):
        Store.open(f"sqlite:///{tmp_path}/calref.db", readonly=True)


@needs_non_root
def test_a_read_only_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "calref.db"
    _opened(path).close()
    path.chmod(0o400)
    with pytest.raises(StoreError, match="read-only"):
        Store.open(f"sqlite:///{path}")


@needs_non_root
def test_an_unwritable_folder_is_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot be written"):
            Store.open(f"sqlite:///{folder}/calref.db")
    finally:
        folder.chmod(0o700)


def test_a_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(f"sqlite:///{tmp_path}/nowhere/calref.db")


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_verify_notices_a_deleted_or_replaced_file(tmp_path: Path, how: str) -> None:
    path = tmp_path / "calref.db"
    store = _opened(path)
    store.verify()
    path.unlink()
    if how == "replaced":
        _opened(path).close()
    with pytest.raises(StoreLost, match=how):
        store.verify()
    store.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_service_whose_store_is_lost_stops_acting_for_good(
    tmp_path: Path, clock: VirtualClock, how: str
) -> None:
    path = tmp_path / "calref.db"
    store = _opened(path)
    sim, service = _annas_service(store, clock)
    lost: list[StoreLost] = []
    service.add_fatal_listener(lost.append)
    service.start()
    path.unlink()
    if how == "replaced":
        _opened(path).close()
    clock.set(T0 + timedelta(minutes=10))
    assert service.tick() == []
    assert service.execute_due() == []
    assert phone_commands(sim, "anna") == []  # nothing sent on a store no one else can see
    assert len(lost) == 1 and how in str(lost[0])
    assert service.fatal is lost[0]
    assert service.start() == []
    store.close()


def test_an_action_is_not_claimed_on_a_lost_store(tmp_path: Path, clock: VirtualClock) -> None:
    """Between the pass's check and the claim the file goes: the claim itself refuses."""
    path = tmp_path / "calref.db"
    store = _opened(path)
    _sim, service = _annas_service(store, clock)
    service.start()
    clock.set(T0 + timedelta(minutes=10))
    (due,) = next(iter(store.due_actions_of(["anna"], clock.now())))
    path.unlink()
    with pytest.raises(StoreLost):
        store.claim(due, clock.now())
    store.close()


def test_a_read_only_file_is_a_store_error_whoever_runs_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root (CI containers) permissions do not bite; the check is what is tested here."""
    path = tmp_path / "calref.db"
    _opened(path).close()
    real = os.access
    monkeypatch.setattr(
        "sync.store.db.os.access",
        lambda p, mode: False if Path(p) == path and mode & os.W_OK else real(p, mode),
    )
    with pytest.raises(StoreError, match="read-only"):
        Store.open(f"sqlite:///{path}")


def test_a_store_that_refuses_writes_at_start_is_a_store_error(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """The database itself refuses (a read-only mount): a StoreError, not OperationalError."""
    path = tmp_path / "calref.db"
    _opened(path).close()
    store = Store.open(f"sqlite:///{path}", readonly=True)
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    service = build_service(store, sim, clock, {"anna": []}, users)
    with pytest.raises(StoreError, match="cannot write the database: attempt to write"):
        service.start()
    store.close()
