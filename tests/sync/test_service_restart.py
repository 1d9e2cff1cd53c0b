"""Kill and restart: catch-up is state-based and nothing is sent twice (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from service_fakes import (
    T0,
    Crash,
    CrashAfterApply,
    FakeCalendar,
    build_service,
    make_users,
    meeting,
    phone_commands,
)

from connectors.clock import VirtualClock
from connectors.switchboard.base import PhoneMode
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.store import Store

H = timedelta(hours=1)
M = timedelta(minutes=1)


def _setup(clock: VirtualClock) -> tuple[list, SimulatedSwitchboard, FakeCalendar]:  # type: ignore[type-arg]
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("anna-cal", [meeting("m1", T0 + H, 60, "close|open")])
    return users, sim, cal


def test_restart_before_start_runs_start_on_time(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users, sim, cal = _setup(clock)
    build_service(open_store(), sim, clock, {"anna": [cal]}, users).start()
    clock.set(T0 + 30 * M)  # process dies here, comes back before the start
    again = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    assert again.start() == []
    clock.set(T0 + H)
    again.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close"]


def test_restart_during_referral_applies_missed_start_late(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users, sim, cal = _setup(clock)
    build_service(open_store(), sim, clock, {"anna": [cal]}, users).start()
    clock.set(T0 + H + 20 * M)  # down across the start; the meeting still runs
    again = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    events = again.start()
    assert [(e.moment, e.outcome, e.late_by) for e in events] == [("start", "sent", 20 * M)]
    assert "late by 20m00s" in events[0].detail
    clock.set(T0 + 2 * H)
    again.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open"]


def test_restart_after_start_and_end_skips_both_as_missed(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users, sim, cal = _setup(clock)
    first = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    first.start()
    clock.set(T0 + 3 * H)  # down across start and end
    again = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    events = again.start()
    assert [(e.moment, e.outcome) for e in events] == [("start", "missed"), ("end", "missed")]
    assert phone_commands(sim, "anna") == []
    audit = [(a.kind, a.outcome) for a in again.store.audit_log("anna") if a.kind == "action"]
    assert audit == [("action", "missed"), ("action", "missed")]


def test_restart_after_missed_end_applies_the_end_now_and_never_resends_the_start(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users, sim, cal = _setup(clock)
    first = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    first.start()
    clock.set(T0 + H)
    first.tick()
    clock.set(T0 + 2 * H + 45 * M)  # down across the end
    again = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    events = again.start()
    assert [(e.moment, str(e.action), e.outcome) for e in events] == [("end", "open", "sent")]
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open"]
    assert sim.phone("anna").mode is PhoneMode.OPEN


def test_crash_between_sending_and_sent_resends_with_same_key_and_is_replayed(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users, sim, cal = _setup(clock)
    crashing = CrashAfterApply(sim)
    first = build_service(open_store(), crashing, clock, {"anna": [cal]}, users)
    first.start()
    clock.set(T0 + H)
    with pytest.raises(Crash):
        first.tick()
    assert [a.status for a in first.store.actions("anna")] == ["sending", "pending"]
    clock.set(T0 + H + 2 * M)
    again = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    events = again.start()
    assert [(e.moment, e.outcome) for e in events] == [("start", "sent")]
    commands = phone_commands(sim, "anna")
    assert [(c[0], c[2]) for c in commands] == [("close", False), ("close", True)]
    assert commands[0][1] == commands[1][1]  # the same idempotency key
    assert sim.phone("anna").version == 1  # applied once
    clock.set(T0 + 2 * H)
    again.tick()
    assert sim.phone("anna").mode is PhoneMode.OPEN


def test_lost_answer_is_retried_with_same_key_and_replayed(
    open_store: Callable[[], Store], clock: VirtualClock
) -> None:
    users, sim, cal = _setup(clock)
    service = build_service(open_store(), sim, clock, {"anna": [cal]}, users)
    service.start()
    sim.faults.configure(lose_next=1, retry_after=0)
    clock.set(T0 + H)
    assert [e.outcome for e in service.tick()] == ["retry"]
    clock.set(T0 + H + 5 * M)
    assert [e.outcome for e in service.tick()] == ["sent"]
    commands = phone_commands(sim, "anna")
    assert [c[2] for c in commands] == [False, True]
    assert commands[0][1] == commands[1][1]
    assert sim.phone("anna").version == 1
