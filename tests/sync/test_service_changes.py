"""Calendar edits, moves and cancellations before and during a referral."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_fakes import T0, FakeCalendar, build_service, make_users, meeting, phone_commands

from connectors.clock import VirtualClock
from connectors.switchboard.base import PhoneMode
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.service.service import Service
from sync.store import Store

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture
def world(
    sqlite_store: Store, clock: VirtualClock
) -> tuple[Service, SimulatedSwitchboard, FakeCalendar]:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("anna-cal", [meeting("m1", T0 + H, 60, "close|open")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    return service, sim, cal


def test_meeting_moved_before_it_starts_reschedules_both_actions(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    clock = service.clock
    cal.put(meeting("m1", T0 + 3 * H, 30, "close|open"))
    clock.set(T0 + 10 * M)
    service.poll_sources()
    assert service.next_action_due() == T0 + 10 * M  # the moved referral is published at once
    assert service.execute_due() == []
    assert service.next_action_due() == T0 + 3 * H
    clock.set(T0 + 2 * H)
    assert service.execute_due() == []  # nothing at the old time
    published = sim.referrals("anna")
    assert [(r.start, r.end) for r in published] == [(T0 + 3 * H, T0 + 3 * H + 30 * M)]
    clock.set(T0 + 3 * H)
    service.tick()
    clock.set(T0 + 3 * H + 30 * M)
    service.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open"]
    assert [a.outcome for a in service.store.audit_log("anna") if a.kind == "plan"] == [
        "rescheduled",
        "rescheduled",
    ]


def test_meeting_cancelled_before_start_sends_nothing_and_withdraws_referral(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    cal.remove("m1")
    service.clock.set(T0 + 5 * M)
    service.tick()
    assert sim.referrals("anna") == []
    service.clock.set(T0 + 3 * H)
    service.tick()
    assert phone_commands(sim, "anna") == []
    statuses = {a.moment: a.status for a in service.store.actions("anna")}
    assert statuses == {"start": "cancelled", "end": "cancelled"}


def test_meeting_cancelled_while_running_runs_its_end_action_now(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    service.clock.set(T0 + H)
    service.tick()
    assert sim.phone("anna").mode is PhoneMode.CLOSED
    service.clock.set(T0 + H + 10 * M)
    cal.remove("m1")
    events = service.tick()
    assert [(e.moment, str(e.action), e.outcome) for e in events] == [("end", "open", "sent")]
    assert events[0].at == T0 + H + 10 * M
    assert sim.phone("anna").mode is PhoneMode.OPEN
    assert sim.referrals("anna") == []
    service.clock.set(T0 + 3 * H)
    service.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open"]


def test_meeting_shortened_into_the_past_while_running_ends_now(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    service.clock.set(T0 + H)
    service.tick()
    service.clock.set(T0 + H + 20 * M)
    cal.put(meeting("m1", T0 + H, 15, "close|open"))  # now ended 5 minutes ago
    events = service.tick()
    assert [(e.moment, e.outcome, e.at) for e in events] == [("end", "sent", T0 + H + 20 * M)]
    assert sim.phone("anna").mode is PhoneMode.OPEN


def test_meeting_extended_while_running_moves_the_end(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    service.clock.set(T0 + H)
    service.tick()
    service.clock.set(T0 + H + 30 * M)
    cal.put(meeting("m1", T0 + H, 120, "close|open"))
    service.tick()
    service.clock.set(T0 + 2 * H + 5 * M)  # the old end
    assert service.tick() == []
    assert sim.phone("anna").mode is PhoneMode.CLOSED
    service.clock.set(T0 + 3 * H)
    service.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open"]
    assert [r.end for r in sim.referrals("anna")] == [T0 + 3 * H]


def test_end_action_edited_during_referral_uses_the_new_action(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    service.clock.set(T0 + H)
    service.tick()
    cal.put(meeting("m1", T0 + H, 60, "close|switch mobile"))
    service.clock.set(T0 + H + 5 * M)
    service.tick()
    service.clock.set(T0 + 2 * H)
    service.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "profile_switch mobile"]
    keys = [c[1] for c in phone_commands(sim, "anna")]
    assert len(set(keys)) == 2


def test_running_meeting_moved_to_later_ends_now_and_starts_again_later(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    service.clock.set(T0 + H)
    service.tick()
    service.clock.set(T0 + H + 10 * M)
    cal.put(meeting("m1", T0 + 4 * H, 60, "close|open"))
    events = service.tick()
    assert [(e.moment, str(e.action)) for e in events] == [("end", "open")]
    assert [r.start for r in sim.referrals("anna")] == [T0 + 4 * H]  # same id, replaced
    service.clock.set(T0 + 4 * H)
    service.tick()
    service.clock.set(T0 + 5 * H)
    service.tick()
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open", "close", "open"]
    assert len({c[1] for c in phone_commands(sim, "anna")}) == 4  # four distinct keys


def test_new_meeting_that_already_started_is_applied_late(world) -> None:  # type: ignore[no-untyped-def]
    service, sim, cal = world
    service.clock.set(T0 + 20 * M)
    cal.put(meeting("m2", T0, 40, "forward 0701234567|open"))
    events = service.tick()
    assert [(e.moment, str(e.action), e.outcome) for e in events] == [
        ("start", "forward 0701234567", "sent")
    ]
    assert sim.phone("anna").forward_number == "0701234567"
