"""One calendar can never stall or starve the others (issue 7, item 1, the service side).

Real-thread tests: one user's calendar blocks inside ``sync`` (a trickling feed)
or burns CPU (a runaway recurrence) until the test lets it go, at the latest
after ``HANG`` seconds. Start-up, the tick, a push-triggered poll and other
users' phone actions must carry on within ``BOUND`` seconds meanwhile; without
the background syncs each of them would wait the whole ``HANG`` and fail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from service_fakes import T0, FakeCalendar, build_service, make_users, meeting, phone_commands

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.service.service import Service
from sync.service.source_runner import SourceRunner
from sync.store import Store

HANG = 20.0  # seconds a hostile calendar holds on (real time) unless released
BOUND = 5.0  # seconds everything else may take meanwhile (generous: the goal is well under 1)
WAIT = 0.3  # the service's sync waits in these tests (real time)


class HostileCalendar(FakeCalendar):
    """A calendar whose armed sync hangs (sleeping, or burning CPU) until ``release``."""

    def __init__(self, source_id: str, *, burn: bool = False) -> None:
        super().__init__(source_id, [meeting("b1", T0 + timedelta(minutes=30), 30)])
        self.burn = burn
        self.armed = True
        self.entered = threading.Event()
        self.release = threading.Event()

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        if self.armed:
            self.entered.set()
            deadline = time.monotonic() + HANG
            if self.burn:
                while not self.release.is_set() and time.monotonic() < deadline:
                    sum(range(2000))  # pure-Python work: holds the GIL in slices
            else:
                self.release.wait(HANG)
        return super().sync(window, state)


@pytest.fixture
def bob(request: pytest.FixtureRequest) -> Iterator[HostileCalendar]:
    """Bob's hanging calendar (burning CPU when parametrized True), let go after the test."""
    calendar = HostileCalendar("bob-cal", burn=getattr(request, "param", False))
    yield calendar
    calendar.release.set()


def _service(
    store: Store, clock: VirtualClock, hostile: HostileCalendar, **settings: object
) -> tuple[Service, SimulatedSwitchboard, FakeCalendar]:
    users = make_users("anna", "bob")
    sim = SimulatedSwitchboard(users, clock=clock)
    anna = FakeCalendar("anna-cal", [meeting("a1", T0 + timedelta(minutes=10), 30)])
    options: dict[str, object] = {
        "sync_wait": timedelta(seconds=WAIT),
        "startup_sync_wait": timedelta(seconds=WAIT),
    }
    options.update(settings)
    service = build_service(store, sim, clock, {"anna": [anna], "bob": [hostile]}, users, **options)
    return service, sim, anna


def _timed(fn: object) -> float:
    began = time.monotonic()
    fn()  # type: ignore[operator]
    return time.monotonic() - began


@pytest.mark.parametrize("bob", [False, True], ids=["blocking", "cpu-burning"], indirect=True)
def test_a_hung_calendar_holds_up_neither_start_up_nor_the_others_actions(
    sqlite_store: Store, clock: VirtualClock, bob: HostileCalendar
) -> None:
    service, sim, _anna = _service(sqlite_store, clock, bob)
    took = _timed(service.start)
    assert bob.entered.is_set()
    assert took < BOUND, f"start-up waited {took:.1f}s for a hung calendar"
    # anna is planned from her calendar; her start goes out on time, bob's sync still hangs
    clock.set(T0 + timedelta(minutes=10))
    took = _timed(service.tick)
    assert took < BOUND, f"the tick waited {took:.1f}s for a hung calendar"
    assert [d for d, _k, _r in phone_commands(sim, "anna")] == ["close"]
    assert "bob-cal" in service.poller.runner.running()


def test_a_sync_that_ends_late_replans_its_user_in_the_background(
    sqlite_store: Store, clock: VirtualClock, bob: HostileCalendar
) -> None:
    service, sim, _anna = _service(sqlite_store, clock, bob)
    changes: list[int] = []
    service.add_change_listener(lambda: changes.append(1))
    service.start()
    assert sqlite_store.actions("bob") == []  # not read yet
    bob.release.set()
    deadline = time.monotonic() + BOUND
    while not sqlite_store.actions("bob") and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for a real background thread
    assert [a.moment for a in sqlite_store.actions("bob")] == ["start", "end"]
    assert changes  # the scheduler is told, so it arms the wake-up for bob's action
    clock.set(T0 + timedelta(minutes=30))
    service.execute_due()
    assert [d for d, _k, _r in phone_commands(sim, "bob")] == ["close"]


def test_a_push_poll_of_a_hung_source_returns_after_the_bounded_wait(
    sqlite_store: Store, clock: VirtualClock, bob: HostileCalendar
) -> None:
    service, _sim, _anna = _service(sqlite_store, clock, bob)
    service.start()
    assert not service.poll_source("anna-cal")  # nothing changed, answered at once
    took = _timed(lambda: service.poll_source("bob-cal"))
    assert took < BOUND


def test_hung_syncs_give_their_slot_back_so_the_others_are_still_read() -> None:
    """With one sync slot, a hung calendar would starve every other one for ever."""
    runner = SourceRunner(limit=1, stuck_after=0.2)
    entered, release = threading.Event(), threading.Event()

    def hung() -> bool:
        entered.set()
        return release.wait(HANG)

    try:
        first = runner.submit("hung", hung)
        assert first is not None and entered.wait(BOUND)  # it holds the only slot
        quick = runner.submit("quick", lambda: True)
        assert quick is not None
        assert quick.result(timeout=BOUND) is True
        assert runner.submit("hung", hung) is None  # one sync per source at a time
        assert runner.running() == ["hung"]
    finally:
        release.set()
    assert first.result(timeout=BOUND) is True


def test_a_follow_up_sync_runs_after_the_running_one() -> None:
    runner = SourceRunner(limit=2)
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first_sync() -> bool:
        entered.set()
        release.wait(HANG)
        order.append("first")
        return False

    first = runner.submit("cal", first_sync)
    assert first is not None and entered.wait(BOUND)
    follow = runner.submit("cal", lambda: order.append("again") is None, again=True)
    assert follow is not None and runner.submit("cal", first_sync, again=True) is follow
    release.set()
    assert follow.result(timeout=BOUND) is True
    assert order == ["first", "again"]


def test_stop_starts_no_new_sync_and_no_new_call(sqlite_store: Store, clock: VirtualClock) -> None:
    bob = HostileCalendar("bob-cal")
    bob.armed = False
    service, sim, anna = _service(sqlite_store, clock, bob)
    service.start()
    service.stop()
    clock.set(T0 + timedelta(minutes=10))
    calls = len(anna.calls)
    assert service.tick() == []
    assert len(anna.calls) == calls
    assert phone_commands(sim, "anna") == []
    assert service.wait_idle(0.1)
