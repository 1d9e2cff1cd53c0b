"""Polling at size: the day-stable sync window, the due-queue, and unchanged polls.

An unchanged poll (same state, no events) reads and writes nothing but its time,
batched by ``Poller.flush``; the due-queue starts each source when it is due, spreads
the polls after start-up, and holds a failing source until its backoff ends; the
planner sees only the planning window's events although calendars are read wider.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from service_fakes import T0, FakeCalendar, build_service, calendar_error, make_users, meeting

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.model import CalendarEvent
from sync.service.polling import Poller
from sync.service.settings import ServiceSettings
from sync.store import Store


class StableCalendar:
    """Answers a full read once, then "nothing changed" with the same state until edited."""

    def __init__(self, source_id: str, events: list[CalendarEvent]) -> None:
        self._id = source_id
        self.events = events
        self.version = 1
        self.windows: list[SyncWindow] = []

    @property
    def id(self) -> str:
        return self._id

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        self.windows.append(window)
        mine = f"v{self.version}"
        if state == mine:
            return SyncResult(events=[], full=False, state=state)
        return SyncResult(events=list(self.events), full=True, state=mine)


def _wait_for_syncs(poller: Poller, timeout: float = 5.0) -> None:
    """The background syncs started have ended (bounded: real threads)."""
    deadline = time.monotonic() + timeout
    while poller.runner.running():
        assert time.monotonic() < deadline, f"still syncing: {poller.runner.running()}"
        time.sleep(0.01)


def test_the_sync_window_holds_the_planning_window_and_moves_once_a_day() -> None:
    settings = ServiceSettings()
    morning = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    first = settings.sync_window(morning)
    for later in (timedelta(seconds=1), timedelta(hours=5), timedelta(hours=16, minutes=59)):
        assert settings.sync_window(morning + later) == first
        plan = settings.window(morning + later)
        assert first.start <= plan.start and plan.end <= first.end
    assert first.start == datetime(2026, 3, 1, tzinfo=UTC)
    assert first.end == datetime(2026, 3, 18, tzinfo=UTC)  # 2 days past the horizon's day
    assert settings.sync_window(datetime(2026, 3, 3, 0, 0, tzinfo=UTC)) != first


def test_an_unchanged_poll_writes_only_its_time_and_re_plans_nothing(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = StableCalendar("anna-cal", [meeting("m1", T0 + timedelta(hours=1), 30)])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    applied: list[str] = []
    real_apply = sqlite_store.apply_sync

    def counting_apply(source_id: str, *args: object) -> bool:
        applied.append(source_id)
        return real_apply(source_id, *args)  # type: ignore[arg-type]

    sqlite_store.apply_sync = counting_apply  # type: ignore[method-assign]
    replanned: list[str] = []
    real_replan = service.replan_users

    def counting_replan(ids: list[str]) -> object:
        replanned.extend(ids)
        return real_replan(ids)

    service.replan_users = counting_replan  # type: ignore[method-assign,assignment]

    clock.advance(timedelta(seconds=60))
    assert service.poll_sources() == set()
    assert applied == [] and replanned == []
    stored = sqlite_store.source("anna-cal")
    assert stored is not None and stored.last_attempt == clock.now()  # flushed by the poll
    assert stored.state == "v1"
    assert len(set(cal.windows)) == 1  # the same sync window both times

    cal.version, cal.events = 2, [meeting("m2", T0 + timedelta(hours=2), 30)]
    clock.advance(timedelta(seconds=60))
    assert service.poll_sources() == {"anna"}
    assert applied == ["anna-cal"] and replanned == ["anna"]
    service.execute_due()
    assert [r.start for r in sim.referrals("anna")] == [T0 + timedelta(hours=2)]


def test_events_read_past_the_horizon_are_planned_only_once_inside_it(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    beyond = T0 + timedelta(days=14, hours=2)  # in the sync window, past the planning horizon
    cal = FakeCalendar("anna-cal", [meeting("far", beyond, 30)])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    assert sim.referrals("anna") == []
    clock.advance(timedelta(hours=3))
    assert service.replan_stale() == ["anna"]
    service.execute_due()
    assert [r.start for r in sim.referrals("anna")] == [beyond]


def test_the_due_queue_spreads_the_polls_and_starts_only_what_is_due(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    names = [f"u{i}" for i in range(10)]
    users = make_users(*names)
    sim = SimulatedSwitchboard(users, clock=clock)
    cals = {n: StableCalendar(f"{n}-cal", []) for n in names}
    service = build_service(sqlite_store, sim, clock, {n: [c] for n, c in cals.items()}, users)
    service.start()
    poller = service.poller
    poller.spread()
    dues = sorted(poller.due_at(f"{n}-cal") for n in names)  # type: ignore[type-var]
    assert len(set(dues)) == 10
    assert clock.now() < dues[0] and dues[-1] == clock.now() + timedelta(seconds=60)
    assert poller.next_poll() == dues[0]

    clock.advance(timedelta(seconds=30))
    assert service.dispatch_polls() == 5
    _wait_for_syncs(service.poller)
    assert service.dispatch_polls() == 0  # nothing else due yet
    assert poller.flush() == 5  # five unchanged polls' times in one write
    polled = [s for s in sqlite_store.sources() if s.last_attempt == clock.now()]
    assert len(polled) == 5


def test_a_failing_source_waits_in_the_queue_until_its_backoff_ends(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("anna-cal", [])
    service = build_service(
        sqlite_store, sim, clock, {"anna": [cal]}, users, poll_interval=timedelta(seconds=10)
    )
    service.start()
    cal.fail_with = calendar_error("anna-cal")
    clock.advance(timedelta(seconds=10))
    service.poll_sources()
    stored = sqlite_store.source("anna-cal")
    assert stored is not None and stored.backoff_until is not None
    assert service.poller.due_at("anna-cal") == stored.backoff_until
    assert stored.backoff_until > clock.now() + timedelta(seconds=10)


def test_a_poller_that_forgets_reads_what_another_process_wrote_meanwhile(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = StableCalendar("anna-cal", [meeting("m1", T0 + timedelta(hours=1), 30)])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    interval = service.settings.interval_for("anna-cal")
    elsewhere = clock.now() + timedelta(minutes=10)
    sqlite_store.touch_sources([("anna-cal", elsewhere)])  # another leader polled it later
    assert service.poller.due_at("anna-cal") != elsewhere + interval  # still its own memory
    service.poller.forget()
    assert service.poller.due_at("anna-cal") == elsewhere + interval
