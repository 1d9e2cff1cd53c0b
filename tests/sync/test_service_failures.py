"""Manual changes, switchboard errors (transient and permanent) and broken calendar sources."""

from __future__ import annotations

from datetime import timedelta

from service_fakes import (
    T0,
    FakeCalendar,
    build_service,
    calendar_error,
    make_users,
    meeting,
    phone_commands,
    throttled,
)

from connectors.clock import VirtualClock
from connectors.retry import Backoff
from connectors.switchboard.base import PhoneMode
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.model import PhoneAction
from sync.cli.status import format_status, status_report
from sync.store import Store

H = timedelta(hours=1)
M = timedelta(minutes=1)


def test_manual_change_during_referral_survives_the_end_action(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("c", [meeting("m1", T0 + H, 60, "close|open")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    clock.set(T0 + H)
    service.tick()
    clock.set(T0 + H + 10 * M)
    sim.manual_change("anna", PhoneAction.forward("0709999999"), client="mobile-app")
    clock.set(T0 + 2 * H)
    events = service.tick()
    assert [(e.moment, e.outcome) for e in events] == [("end", "kept")]
    assert sim.phone("anna").forward_number == "0709999999"
    assert [c[0] for c in phone_commands(sim, "anna") if c[0] != "forward 0709999999"] == ["close"]
    kept = [a for a in service.store.audit_log("anna") if a.outcome == "kept"]
    assert len(kept) == 1 and "mobile-app" in kept[0].detail


def test_end_action_runs_when_nobody_touched_the_phone(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna", "bo")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("c", [meeting("m1", T0 + H, 60, "close|open")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    clock.set(T0 + H)
    service.tick()
    sim.manual_change("bo", PhoneAction.close())  # another user's phone does not count
    clock.set(T0 + 2 * H)
    assert [e.outcome for e in service.tick()] == ["sent"]


def test_transient_switchboard_errors_are_retried_with_backoff_then_succeed(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("c", [meeting("m1", T0 + H, 60, "close|open")])
    retry = Backoff(base=10.0, cap=300.0)
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users, retry_backoff=retry)
    service.start()
    sim.faults.configure(fail_next=3, retry_after=0)
    clock.set(T0 + H)
    outcomes = []
    for _ in range(12):
        outcomes += [(e.outcome, e.at - (T0 + H)) for e in service.execute_due()]
        due = service.next_action_due()
        assert due is not None
        clock.set(max(due, clock.now()))
        if sim.phone("anna").mode is PhoneMode.CLOSED:
            break
    assert outcomes == [
        ("retry", timedelta(0)),
        ("retry", timedelta(seconds=10)),
        ("retry", timedelta(seconds=30)),
        ("sent", timedelta(seconds=70)),
    ]
    assert sim.phone("anna").mode is PhoneMode.CLOSED


def test_permanent_error_is_recorded_and_shown_in_status(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("c", [meeting("m1", T0 + H, 60, "close|switch boat")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    clock.set(T0 + H)
    service.tick()
    clock.set(T0 + 2 * H)
    events = service.tick()
    assert [(e.moment, e.outcome) for e in events] == [("end", "failed")]
    assert "boat" in events[0].detail
    clock.set(T0 + 3 * H)
    assert service.tick() == []  # not retried
    [status] = status_report(sqlite_store, clock.now())
    assert [(a.moment, a.status) for a in status.failed_actions] == [("end", "failed")]
    assert "unknown profile 'boat'" in (status.failed_actions[0].last_error or "")
    assert "FAILED end profile_switch boat" in format_status([status], clock.now())


def test_broken_source_does_not_stop_another_users_actions(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna", "bo")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal_a = FakeCalendar("a", [meeting("a1", T0 + H, 60, "close|open")])
    cal_b = FakeCalendar("b", [meeting("b1", T0 + H, 60, "close|open")])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal_a], "bo": [cal_b]}, users)
    service.start()
    cal_a.fail_with = calendar_error("a")
    clock.set(T0 + H)
    events = service.tick()
    # anna's last known events still drive her plan; bo is unaffected
    assert sorted((e.user, e.outcome) for e in events) == [("anna", "sent"), ("bo", "sent")]
    [anna, _bo] = status_report(sqlite_store, clock.now())
    [source] = anna.sources
    assert source.failures == 1 and "HTTP 500" in (source.last_error or "")
    assert source.backoff_until is not None and source.backoff_until > clock.now()
    assert source.last_success == T0


def test_failing_source_backs_off_exponentially_and_honours_retry_after(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("a", [])
    service = build_service(
        sqlite_store,
        sim,
        clock,
        {"anna": [cal]},
        users,
        source_backoff=Backoff(base=100.0, cap=3600.0, jitter=0.25),
    )
    service.start()
    cal.fail_with = calendar_error("a")
    gaps = []
    for _ in range(3):
        clock.advance(timedelta(hours=2))
        calls = len(cal.calls)
        service.poll_sources()
        assert len(cal.calls) == calls + 1
        [state] = sqlite_store.sources()
        assert state.backoff_until is not None
        gaps.append((state.backoff_until - clock.now()).total_seconds())
    assert 75 <= gaps[0] <= 100 and 150 <= gaps[1] <= 200 and 300 <= gaps[2] <= 400
    calls = len(cal.calls)
    service.poll_sources()  # still backing off: not called
    assert len(cal.calls) == calls
    cal.fail_with = throttled("a", 5000)
    clock.advance(timedelta(hours=2))
    service.poll_sources()
    [state] = sqlite_store.sources()
    assert state.backoff_until == clock.now() + timedelta(seconds=5000)


def test_expired_sync_state_triggers_a_full_resync(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("a", [meeting("a1", T0 + H, 60)])
    service = build_service(sqlite_store, sim, clock, {"anna": [cal]}, users)
    service.start()
    cal.expire_next = True
    clock.advance(timedelta(minutes=2))
    service.poll_sources()
    assert cal.calls[-2:] == ["token-1", None]
    [state] = sqlite_store.sources()
    assert state.last_error is None and state.state == "token-3"
