"""What the service does about the switchboard's own state (issue 7, item 8).

A 404 ``unknown_user`` is the user's condition, not the action's: the user's
actions are parked (tried again after a long backoff and at the next start),
never failed for good, and other users are served as usual. Referrals a
gateway lost (a restart without persistence) are noticed by comparing its
referrals with ours, and published again.
"""

from __future__ import annotations

from datetime import timedelta

from service_fakes import T0, FakeCalendar, build_service, make_users, meeting, phone_commands

from connectors.clock import VirtualClock
from connectors.switchboard.base import PhoneState, PublishedReferral, SwitchboardUser
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.model import ActionStatus, PhoneAction
from sync.cli.status import format_status, status_report
from sync.store import Store

BACKOFF = timedelta(minutes=30)


class Gateway:
    """The switchboard the service talks to, whose simulator can be replaced
    (``restart_as``): a gateway that restarted, or whose directory changed."""

    def __init__(self, board: SimulatedSwitchboard) -> None:
        self.board = board

    def restart_as(self, board: SimulatedSwitchboard) -> None:
        self.board = board

    def list_users(self) -> list[SwitchboardUser]:
        return self.board.list_users()

    def get_user(self, user_id: str) -> SwitchboardUser:
        return self.board.get_user(user_id)

    def publish_referral(
        self, user_id: str, referral: PublishedReferral, idempotency_key: str
    ) -> None:
        self.board.publish_referral(user_id, referral, idempotency_key)

    def withdraw_referral(self, user_id: str, referral_id: str, idempotency_key: str) -> None:
        self.board.withdraw_referral(user_id, referral_id, idempotency_key)

    def apply_action(self, user_id: str, action: PhoneAction, idempotency_key: str) -> PhoneState:
        return self.board.apply_action(user_id, action, idempotency_key)

    def referral_ids(self) -> dict[str, set[str]]:
        return self.board.referral_ids()


def _calendars() -> dict[str, list[FakeCalendar]]:
    return {
        "anna": [FakeCalendar("anna-cal", [meeting("a1", T0 + timedelta(minutes=10), 60)])],
        "carl": [FakeCalendar("carl-cal", [meeting("c1", T0 + timedelta(minutes=10), 60)])],
    }


def test_a_user_the_switchboard_does_not_know_is_parked_not_failed(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna", "carl")
    sim = SimulatedSwitchboard(users[:1], clock=clock)  # the directory lacks carl
    calendars = _calendars()
    service = build_service(sqlite_store, sim, clock, calendars, users)
    service.start()
    clock.set(T0 + timedelta(minutes=10))
    events = service.execute_due()

    assert {(e.user, e.outcome) for e in events} == {("anna", "sent"), ("carl", "parked")}
    (start, end) = sqlite_store.actions("carl")
    assert start.status == ActionStatus.PENDING and end.status == ActionStatus.PENDING
    assert start.next_attempt_at == clock.now() + BACKOFF
    assert "unknown_user" in (start.last_error or "")
    text = format_status(status_report(sqlite_store, clock.now()), clock.now())
    assert "PARKED: the switchboard does not know this user" in text

    # tried again after the backoff, still unknown: parked again, still not failed
    clock.advance(BACKOFF)
    events = service.execute_due()
    assert [(e.user, e.outcome) for e in events] == [("carl", "parked")]
    assert all(a.status != ActionStatus.FAILED for a in sqlite_store.actions("carl"))
    assert sqlite_store.referrals("carl")[0].publish_error is None  # not failed for good

    # the directory learns carl; the next start (config or directory change) retries at once
    fixed = SimulatedSwitchboard(users, clock=clock)
    clock.advance(timedelta(minutes=1))
    again = build_service(sqlite_store, fixed, clock, calendars, users)
    events = again.start()
    assert [(e.user, e.moment, e.outcome) for e in events] == [("carl", "start", "sent")]
    assert [r.id for r in fixed.referrals("carl")] == [sqlite_store.referrals("carl")[0].id]
    assert [d for d, _k, _r in phone_commands(fixed, "carl")] == ["close"]


def test_referrals_a_restarted_gateway_lost_are_published_again(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    gateway = Gateway(sim)
    calendars = {"anna": _calendars()["anna"]}
    service = build_service(sqlite_store, gateway, clock, calendars, users)
    service.start()
    published = [r.id for r in sim.referrals("anna")]
    assert len(published) == 1

    assert service.check_referrals(force=True) == []  # nothing lost: nothing republished
    restarted = SimulatedSwitchboard(users, clock=clock)  # the gateway came back empty
    gateway.restart_as(restarted)
    clock.advance(service.settings.referral_check_interval)
    service.tick()
    assert service.check_referrals() == []  # checked at the tick; the next only after 5 min
    assert [r.id for r in restarted.referrals("anna")] == published

    again = SimulatedSwitchboard(users, clock=clock)
    gateway.restart_as(again)
    clock.advance(service.settings.referral_check_interval)
    service.tick()
    assert [r.id for r in again.referrals("anna")] == published


def test_a_parked_user_is_tried_again_once_the_directory_lists_them(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna", "carl")
    gateway = Gateway(SimulatedSwitchboard(users[:1], clock=clock))
    service = build_service(sqlite_store, gateway, clock, _calendars(), users)
    service.start()
    clock.set(T0 + timedelta(minutes=10))
    service.execute_due()
    assert sqlite_store.parked_users(clock.now()) == ["carl"]

    updated = SimulatedSwitchboard(users, clock=clock)  # the directory now has carl
    gateway.restart_as(updated)
    clock.advance(service.settings.referral_check_interval)  # well before the 30 min backoff
    events = service.tick()
    assert [(e.user, e.moment, e.outcome) for e in events] == [("carl", "start", "sent")]
    assert sqlite_store.parked_users(clock.now()) == []
    assert [d for d, _k, _r in phone_commands(updated, "carl")] == ["close"]
