"""On-time behaviour: start and end actions at their due times, referrals published."""

from __future__ import annotations

from datetime import timedelta

from service_fakes import T0, FakeCalendar, build_service, make_users, meeting, phone_commands

from connectors.clock import VirtualClock
from connectors.switchboard.base import PhoneMode
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.store import Store


def test_start_and_end_actions_run_at_their_due_times(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("anna-cal", [meeting("m1", T0 + timedelta(hours=1), 30, "close|open")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)

    assert service.start() == []
    assert service.next_action_due() == T0 + timedelta(hours=1)
    assert [r.reason for r in sim.referrals("anna")] == ["meeting"]

    clock.set(T0 + timedelta(minutes=59))
    assert service.execute_due() == []
    assert sim.phone("anna").mode is PhoneMode.OPEN

    clock.set(T0 + timedelta(hours=1))
    events = service.execute_due()
    assert [(e.moment, str(e.action), e.outcome) for e in events] == [("start", "close", "sent")]
    assert sim.phone("anna").mode is PhoneMode.CLOSED
    assert service.next_action_due() == T0 + timedelta(hours=1, minutes=30)

    clock.set(T0 + timedelta(hours=1, minutes=30))
    events = service.execute_due()
    assert [(e.moment, str(e.action), e.outcome) for e in events] == [("end", "open", "sent")]
    assert sim.phone("anna").mode is PhoneMode.OPEN
    assert [c[0] for c in phone_commands(sim, "anna")] == ["close", "open"]
    assert service.next_action_due() is None


def test_run_virtual_carries_out_a_day_in_order_and_reports_each_action(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna", "bo")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal_a = FakeCalendar(
        "a",
        [
            meeting("a1", T0 + timedelta(hours=1), 60, "close|open"),
            meeting("a2", T0 + timedelta(hours=3), 30, "forward 0701234567|switch mobile"),
        ],
    )
    cal_b = FakeCalendar("b", [meeting("b1", T0 + timedelta(hours=2), 15, "none|switch mobile")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal_a], "bo": [cal_b]}, users)
    seen = []
    service.add_action_listener(seen.append)

    service.run_virtual(T0 + timedelta(hours=8), step=timedelta(minutes=5))

    summary = [(e.user, e.moment, str(e.action), e.outcome, e.at - T0) for e in seen]
    assert summary == [
        ("anna", "start", "close", "sent", timedelta(hours=1)),
        ("anna", "end", "open", "sent", timedelta(hours=2)),
        ("bo", "start", "none", "noop", timedelta(hours=2)),
        ("bo", "end", "profile_switch mobile", "sent", timedelta(hours=2, minutes=15)),
        ("anna", "start", "forward 0701234567", "sent", timedelta(hours=3)),
        ("anna", "end", "profile_switch mobile", "sent", timedelta(hours=3, minutes=30)),
    ]
    assert sim.phone("anna").active_profile == "mobile"
    assert [c[0] for c in phone_commands(sim, "bo")] == ["profile_switch mobile"]


def test_many_users_run_in_parallel_each_in_time_order(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    ids = [f"u{n}" for n in range(12)]
    users = make_users(*ids)
    sim = SimulatedSwitchboard(users, clock=clock)
    calendars = {
        uid: [
            FakeCalendar(
                f"{uid}-cal",
                [
                    meeting(f"{uid}-a", T0 + timedelta(hours=1), 30, "close|open"),
                    meeting(
                        f"{uid}-b", T0 + timedelta(hours=1, minutes=30), 30, "forward 0701|open"
                    ),
                ],
            )
        ]
        for uid in ids
    }
    service = build_service(sqlite_store, sim, clock, calendars, users, concurrency=4)
    service.start()
    clock.set(T0 + timedelta(hours=1))
    service.execute_due()
    clock.set(T0 + timedelta(hours=1, minutes=30))  # a's end and b's start due together
    service.execute_due()
    clock.set(T0 + timedelta(hours=2))
    service.execute_due()
    for uid in ids:
        assert [c[0] for c in phone_commands(sim, uid)] == ["close", "open", "forward 0701", "open"]
