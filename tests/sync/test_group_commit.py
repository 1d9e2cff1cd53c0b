"""The store's group commit: writes of many threads share transactions, each keeps its own error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from service_fakes import T0, FakeCalendar, build_service, make_users, meeting

from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.errors import StoreLost
from rules.model import ActionStatus
from sync.store import Store
from sync.store.group_commit import Batch, GroupCommit, settle_all
from sync.store.records import Outcome, StoredAction


class FakeDatabase:
    """Counts transactions; a transaction is rolled back when its body raises."""

    def __init__(self) -> None:
        self.transactions = 0
        self.committed: list[Any] = []
        self.verified = 0
        self.lost = False
        self.release = threading.Event()
        self.release.set()

    @contextmanager
    def begin(self) -> Iterator[Any]:
        self.release.wait()
        self.transactions += 1
        written: list[Any] = []
        yield written
        self.committed.extend(written)

    def verify(self) -> None:
        self.verified += 1
        if self.lost:
            raise StoreLost("store: the file was replaced")

    def after(self, conn: Any, batch: Batch) -> None:
        conn.extend(batch.audit)


def writer(db: FakeDatabase) -> GroupCommit:
    return GroupCommit(db.begin, before=db.verify, after=db.after)  # type: ignore[arg-type]


def append(value: Any) -> Any:
    def op(conn: Any, batch: Batch) -> Any:
        conn.append(value)
        batch.audit.append({"audit": value})
        return value

    return op


def test_writes_queued_meanwhile_share_one_transaction() -> None:
    db = FakeDatabase()
    commit = writer(db)
    db.release.clear()  # the writer waits in its first transaction
    first = commit.submit(append(0))
    pendings = [commit.submit(append(i)) for i in range(1, 50)]
    db.release.set()
    assert first.result() == 0
    assert [p.result() for p in pendings] == list(range(1, 50))
    assert db.transactions <= 2
    assert sorted(v for v in db.committed if isinstance(v, int)) == list(range(50))
    assert len([v for v in db.committed if isinstance(v, dict)]) == 50  # appended once per batch
    commit.close()


def test_one_failing_write_fails_alone() -> None:
    db = FakeDatabase()
    commit = writer(db)

    def broken(conn: Any, batch: Batch) -> None:
        raise ValueError("no such action")

    db.release.clear()
    good = [commit.submit(append(i)) for i in range(3)]
    bad = commit.submit(broken)
    more = commit.submit(append(3))
    db.release.set()
    assert [p.result() for p in good] == [0, 1, 2]
    assert more.result() == 3
    with pytest.raises(ValueError, match="no such action"):
        bad.result()
    assert sorted(v for v in db.committed if isinstance(v, int)) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        settle_all([*good, bad, more])
    commit.close()


def test_verify_runs_only_for_writes_that_ask_and_fails_their_transaction() -> None:
    db = FakeDatabase()
    commit = writer(db)
    commit.run(append("outcome"))
    assert db.verified == 0
    commit.run(append("claim"), verify=True)
    assert db.verified == 1
    db.lost = True
    with pytest.raises(StoreLost):
        commit.run(append("claim after the file was replaced"), verify=True)
    assert "claim after the file was replaced" not in db.committed
    commit.close()


def test_callbacks_run_after_the_commit_and_close_commits_what_is_queued() -> None:
    db = FakeDatabase()
    commit = writer(db)
    seen: list[tuple[Any, bool]] = []
    db.release.clear()
    for i in range(5):
        commit.submit(append(i), on_done=lambda v: seen.append((v, v in db.committed)))
    closer = threading.Thread(target=commit.close)
    closer.start()
    db.release.set()
    closer.join(timeout=10)
    assert not closer.is_alive()
    assert seen == [(i, True) for i in range(5)]
    assert commit.run(append("after close")) == "after close"  # a new writer thread starts
    commit.close()


def test_threads_claim_and_finish_their_actions_together_on_a_real_store(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    store.migrate()
    clock = VirtualClock(T0)
    users = make_users(*[f"user{i:02d}" for i in range(16)])
    sim = SimulatedSwitchboard(users, clock=clock)
    calendars = {
        u.id: [FakeCalendar(f"{u.id}-cal", [meeting("m1", T0 + timedelta(hours=1), 30)])]
        for u in users
    }
    build_service(store, sim, clock, calendars, users).start()
    actions = [a for a in store.actions() if a.moment == "start"]
    assert len(actions) == 16
    audit_before = len(store.audit_log())
    start = threading.Barrier(16)
    phone = sim.get_user("user00").phone

    def carry_out(action: StoredAction) -> None:
        start.wait()
        claimed = store.claim(action, clock.now())
        assert claimed is not None
        assert (claimed.status, claimed.attempts) == (ActionStatus.SENDING, 1)
        store.finish_action(
            claimed,
            clock.now(),
            status=ActionStatus.DONE,
            outcome=Outcome.SENT,
            state=phone,
            guarded=False,
        ).result()

    threads = [threading.Thread(target=carry_out, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    stored = [a for a in store.actions() if a.moment == "start"]
    assert {(a.status, a.attempts, a.result_version) for a in stored} == {
        (ActionStatus.DONE, 1, phone.version)
    }
    assert len(store.audit_log()) == audit_before + 16
    assert all(store.phone_state(u.id) is not None for u in users)
    # a guarded outcome for an action a re-plan changed meanwhile is not recorded
    stale = actions[0]
    assert not store.finish_action(
        stale, clock.now(), status=ActionStatus.MISSED, outcome=Outcome.MISSED
    ).result()
