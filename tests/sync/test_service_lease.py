"""Two services on one store: one leads, the other stands by and takes over, never both act.

Virtual time throughout: both services share a ``VirtualClock`` and the real
in-memory ``SimulatedSwitchboard``, whose log shows every call either sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta

import pytest
from service_fakes import T0, FakeCalendar, build_service, make_users, meeting, phone_commands

from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.errors import ConfigError
from sync.cli.status import format_status, service_status, status_report
from sync.service.executor import ActionEvent
from sync.service.lease import LeaderLease
from sync.service.scheduler import ServiceScheduler
from sync.service.service import Service
from sync.store import Store

TTL = timedelta(seconds=30)
STEP = timedelta(seconds=5)


class Node:
    """One ``calref run`` process: its own store connection, calendar reader and lease."""

    def __init__(
        self,
        name: str,
        open_store: Callable[[], Store],
        sim: SimulatedSwitchboard,
        clock: VirtualClock,
    ) -> None:
        self.name = name
        self.calendar = FakeCalendar(
            "anna-cal",
            [
                meeting("m1", T0 + timedelta(minutes=10), 30),  # close at 10, open at 40
                meeting("m2", T0 + timedelta(minutes=20, seconds=10), 5, "forward 0701|open"),
            ],
        )
        users = make_users("anna")
        self.store = open_store()
        self.service: Service = build_service(
            self.store,
            sim,
            clock,
            {"anna": [self.calendar]},
            users,
            lease=LeaderLease(self.store, clock, name, ttl=TTL),
        )
        self.sent: list[ActionEvent] = []
        self.service.add_action_listener(self.sent.append)
        self.lost = 0
        self.service.add_lease_lost_listener(self._lost)

    def _lost(self) -> None:
        self.lost += 1

    def sent_details(self) -> list[str]:
        return [f"{e.moment} {e.action}" for e in self.sent if e.outcome == "sent"]


@pytest.fixture
def world(
    open_store: Callable[[], Store], clock: VirtualClock
) -> Iterator[tuple[Node, Node, SimulatedSwitchboard, VirtualClock]]:
    sim = SimulatedSwitchboard(make_users("anna"), clock=clock)
    one = Node("one", open_store, sim, clock)
    two = Node("two", open_store, sim, clock)
    yield one, two, sim, clock


def run_until(clock: VirtualClock, until_minutes: float, *nodes: Node) -> None:
    """Advance in 5 s steps, ticking each live node (as their timers would)."""
    until = T0 + timedelta(minutes=until_minutes)
    while clock.now() < until:
        clock.advance(STEP)
        for node in nodes:
            node.service.tick()


def actions_sent(sim: SimulatedSwitchboard) -> list[str]:
    return [detail for detail, _key, _replayed in phone_commands(sim, "anna")]


def test_the_second_service_stands_by_and_does_nothing(
    world: tuple[Node, Node, SimulatedSwitchboard, VirtualClock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    one, two, sim, clock = world
    one.service.start()
    with caplog.at_level(logging.WARNING, logger="sync.service.lease"):
        assert two.service.start() == []
    assert not two.service.started
    assert (
        "standby: the store is held by one until 2026-03-02T07:00:30+00:00; "
        "taking over when it lapses" in caplog.text
    )
    run_until(clock, 45, one, two)
    assert actions_sent(sim) == ["close", "forward 0701", "open", "open"]
    assert two.calendar.calls == []  # never polled
    assert two.sent == []
    assert one.sent_details() == ["start close", "start forward 0701", "end open", "end open"]
    holder = one.store.lease_holder(clock.now())
    assert holder is not None and holder.holder == "one"
    assert caplog.text.count("standby:") == 1  # said once, not on every try


def test_a_silent_leader_is_replaced_after_the_ttl_and_nothing_is_sent_twice(
    world: tuple[Node, Node, SimulatedSwitchboard, VirtualClock],
) -> None:
    one, two, sim, clock = world
    one.service.start()
    two.service.start()
    run_until(clock, 15, one, two)  # one sends the close at 10 min
    assert actions_sent(sim) == ["close"]
    last_renewal = clock.now()
    # one stops renewing (hung or killed); m2 starts at 20:10 while two still waits for 15:30
    run_until(clock, 15.4, two)
    assert not two.service.started
    run_until(clock, 21, two)
    assert two.service.started
    taken = two.store.lease()
    assert taken is not None and taken.holder == "two"
    assert last_renewal + TTL <= taken.acquired_at < last_renewal + TTL + STEP
    run_until(clock, 45, two)
    assert actions_sent(sim) == ["close", "forward 0701", "open", "open"]
    assert len({key for _d, key, _r in phone_commands(sim, "anna")}) == 4
    assert two.sent_details() == ["start forward 0701", "end open", "end open"]
    # the close that one sent is not sent again by two's catch-up
    assert "start close" not in two.sent_details()


def test_a_leader_that_lost_its_lease_stops_at_once_and_stands_by(
    world: tuple[Node, Node, SimulatedSwitchboard, VirtualClock],
) -> None:
    one, two, sim, clock = world
    one.service.start()
    two.service.start()
    run_until(clock, 19, one, two)
    # one pauses (a long stall) past its lease; two takes over in the meantime
    run_until(clock, 20, two)
    assert two.service.started
    # one wakes up at the moment m2 is due and tries to execute: fenced off
    clock.set(T0 + timedelta(minutes=20, seconds=10))
    assert one.service.execute_due() == []
    assert one.lost == 1
    assert not one.service.lease.held  # type: ignore[union-attr]
    assert one.service.tick() == []  # a standby again: tries the lease, does nothing else
    two.service.tick()
    run_until(clock, 45, one, two)
    assert actions_sent(sim) == ["close", "forward 0701", "open", "open"]
    assert one.sent_details() == ["start close"]
    assert two.sent_details() == ["start forward 0701", "end open", "end open"]


def test_a_released_lease_is_taken_over_at_the_next_try(
    world: tuple[Node, Node, SimulatedSwitchboard, VirtualClock],
) -> None:
    one, two, sim, clock = world
    one.service.start()
    two.service.start()
    run_until(clock, 12, one, two)
    one.service.release_lease()  # clean shutdown
    assert one.store.lease_holder(clock.now()) is None
    clock.advance(STEP)
    two.service.tick()
    assert two.service.started
    run_until(clock, 45, two)
    assert actions_sent(sim) == ["close", "forward 0701", "open", "open"]
    assert two.sent_details() == ["start forward 0701", "end open", "end open"]


def test_without_a_lease_the_service_never_touches_the_lease_table(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    store = open_store()
    cal = FakeCalendar("anna-cal", [meeting("m1", T0 + timedelta(minutes=1), 5)])
    service = build_service(store, sim, clock, {"anna": [cal]}, users)
    service.run_virtual(T0 + timedelta(minutes=10))
    assert actions_sent(sim) == ["close", "open"]
    assert store.lease() is None


def test_lease_settings_are_checked(sqlite_store: Store, clock: VirtualClock) -> None:
    with pytest.raises(ConfigError, match="at most half its ttl"):
        LeaderLease(sqlite_store, clock, "x", ttl=TTL, renew_every=timedelta(seconds=20))
    with pytest.raises(ConfigError, match="must be positive"):
        LeaderLease(sqlite_store, clock, "x", ttl=timedelta(0))


def job_ids(wrapped: ServiceScheduler) -> set[str]:
    return {job.id for job in wrapped.scheduler.get_jobs()}


def test_the_scheduler_runs_only_the_standby_job_until_it_takes_over(
    world: tuple[Node, Node, SimulatedSwitchboard, VirtualClock],
) -> None:
    one, two, _sim, clock = world
    leader = ServiceScheduler(one.service)
    standby = ServiceScheduler(two.service)
    events: list[str] = []
    standby.on_lead(
        before=lambda: events.append("before"),
        after=lambda: events.append("after"),
        standby=lambda: events.append("standby"),
    )
    leader.start(paused=True)
    standby.start(paused=True)
    try:
        assert job_ids(leader) == {"poll", "tick", "wakeup", "lease-renew"}
        renew = leader.scheduler.get_job("lease-renew")
        assert renew.trigger.interval == timedelta(seconds=10)
        assert (renew.misfire_grace_time, renew.coalesce, renew.max_instances) == (None, True, 1)
        assert job_ids(standby) == {"lease-standby"}
        retry = standby.scheduler.get_job("lease-standby")
        assert retry.trigger.interval == timedelta(seconds=2)
        assert retry.misfire_grace_time is None
        retry.func()  # the lease is live: still standing by
        assert job_ids(standby) == {"lease-standby"} and events == []

        one.service.release_lease()  # leader shuts down cleanly
        leader.shutdown(wait=False)
        clock.advance(timedelta(seconds=2))
        retry.func()
        assert standby.leading
        assert job_ids(standby) == {"poll", "tick", "wakeup", "lease-renew"}
        assert events == ["before", "after"]

        # someone else takes the lease behind its back (e.g. after a long stall)
        clock.advance(TTL + timedelta(seconds=1))
        assert one.store.try_acquire_lease("intruder", clock.now(), TTL)
        standby.scheduler.get_job("lease-renew").func()
        assert not standby.leading
        assert job_ids(standby) == {"lease-standby"}
        assert events == ["before", "after", "standby"]
    finally:
        leader.shutdown(wait=False)
        standby.shutdown(wait=False)


def test_status_shows_the_leader_and_a_free_lease(
    world: tuple[Node, Node, SimulatedSwitchboard, VirtualClock],
) -> None:
    one, two, _sim, clock = world
    store = two.store
    store.migrate()
    now = clock.now()
    never = format_status(status_report(store, now), now, UTC, service_status(store))
    assert "leader: none (no calref run has held this store yet)" in never
    one.service.start()
    two.service.start()
    text = format_status(status_report(store, now), now, UTC, service_status(store))
    assert (
        "leader: one since 2026-03-02 07:00:00, lease renewed 2026-03-02 07:00:00, "
        "until 2026-03-02 07:00:30"
    ) in text.splitlines()[1]
    one.service.release_lease()
    text = format_status(status_report(store, now), now, UTC, service_status(store))
    assert "leader: none (last held by one, released or lapsed at 2026-03-02 07:00:00)" in text
