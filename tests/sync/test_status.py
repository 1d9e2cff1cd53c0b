"""``calref status``: the current referral, the phone, what comes next and calendar health."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from service_fakes import T0, FakeCalendar, build_service, calendar_error, make_users, meeting

from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.cli.status import format_status, status_report
from sync.store import Store

H = timedelta(hours=1)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_status_during_a_referral_shows_it_the_phone_and_the_end_to_come(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna", "bo")
    sim = SimulatedSwitchboard(users, clock=clock)
    anna = FakeCalendar("anna-cal", [meeting("m1", T0 + H, 60, "close|open")])
    bo = FakeCalendar("bo-cal", [meeting("m2", T0 + H, 30, "close|open")])
    service = build_service(sqlite_store, sim, clock, {"anna": [anna], "bo": [bo]}, users)
    service.start()
    bo.fail_with = calendar_error("bo-cal")
    clock.set(T0 + H + timedelta(minutes=10))
    service.tick()

    report = {u.user_id: u for u in status_report(sqlite_store, clock.now())}
    anna_status = report["anna"]
    assert anna_status.current_referral is not None
    assert anna_status.current_referral.end == T0 + 2 * H
    assert anna_status.phone is not None and anna_status.phone.mode.value == "closed"
    assert anna_status.next_action is not None
    assert (anna_status.next_action.moment, anna_status.next_action.due_at) == ("end", T0 + 2 * H)
    [bo_source] = report["bo"].sources
    assert bo_source.last_error and bo_source.failures >= 1
    assert bo_source.backoff_until is not None and bo_source.backoff_until > clock.now()

    text = format_status(list(report.values()), clock.now(), STOCKHOLM)
    # T0 is 08:00 in Stockholm: the referral ends at 10:00 local, shown in local time.
    assert "referral: " in text and "until 2026-03-02 10:00" in text
    assert "phone: closed" in text
    assert "next: end open at 2026-03-02 10:00" in text
    assert "source bo-cal: last success" in text and "last error:" in text
    assert "backing off until" in text
