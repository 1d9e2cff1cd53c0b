"""Unit tests of SimulatedSwitchboard: phone semantics, idempotency, log, route, faults."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from connectors.clock import VirtualClock
from connectors.switchboard.base import PhoneMode, PublishedReferral, Switchboard
from connectors.switchboard.errors import (
    IdempotencyConflictError,
    RejectedActionError,
    UnknownUserError,
)
from connectors.switchboard.sim_faults import Faults
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.errors import CalrefError, SwitchboardError, SwitchboardUnavailable, is_retryable
from rules.model import PhoneAction, Profile, User

T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


ANNA = User(
    "anna",
    "Anna Berg",
    "anna@example.se",
    "1234",
    (
        Profile("desk", "Desk", "1234"),
        Profile("mobile", "Mobile", "0701234567", ("#mobile",)),
        Profile("home", "Home office", "086660000"),
    ),
)
BO = User("bo", "Bo Ek", "bo@example.se", "2345")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def board(clock: VirtualClock) -> SimulatedSwitchboard:
    return SimulatedSwitchboard([ANNA, BO], clock=clock)


def referral(rid: str = "r1", **kw: object) -> PublishedReferral:
    fields: dict[str, object] = {
        "id": rid,
        "reason": "meeting",
        "message": "Board meeting",
        "start": T0 + timedelta(hours=1),
        "end": T0 + timedelta(hours=2),
        "start_action": PhoneAction.none(),
        "end_action": PhoneAction.profile_switch("mobile"),
    }
    fields.update(kw)
    return PublishedReferral(**fields)  # type: ignore[arg-type]


def test_is_a_switchboard_and_seeds_first_profile_active_and_phone_open(
    board: SimulatedSwitchboard,
) -> None:
    sb: Switchboard = board
    anna = sb.get_user("anna")
    assert anna.phone.mode is PhoneMode.OPEN
    assert anna.phone.active_profile == "desk"
    assert anna.phone.version == 0
    assert [p.id for p in anna.profiles] == ["desk", "mobile", "home"]
    assert [u.id for u in sb.list_users()] == ["anna", "bo"]


def test_user_without_profiles_gets_an_extension_profile(board: SimulatedSwitchboard) -> None:
    bo = board.get_user("bo")
    assert [(p.id, p.number) for p in bo.profiles] == [("extension", "2345")]
    assert board.route("bo").target == "2345"


def test_close_forward_open_change_mode_and_bump_version(
    board: SimulatedSwitchboard, clock: VirtualClock
) -> None:
    closed = board.apply_action("anna", PhoneAction.close(), "k1")
    assert (closed.mode, closed.version, closed.changed_by) == (PhoneMode.CLOSED, 1, "calref")
    assert closed.changed_at == T0
    clock.advance(timedelta(minutes=5))
    fwd = board.apply_action("anna", PhoneAction.forward("00701112233"), "k2")
    assert (fwd.mode, fwd.forward_number, fwd.version) == (PhoneMode.FORWARDED, "00701112233", 2)
    assert fwd.changed_at == T0 + timedelta(minutes=5)
    opened = board.apply_action("anna", PhoneAction.open(), "k3")
    assert (opened.mode, opened.forward_number, opened.active_profile) == (
        PhoneMode.OPEN,
        None,
        "desk",
    )
    assert board.phone("anna").version == 3


def test_profile_switch_makes_profile_active_and_opens_phone(board: SimulatedSwitchboard) -> None:
    board.apply_action("anna", PhoneAction.close(), "k1")
    state = board.apply_action("anna", PhoneAction.profile_switch("mobile"), "k2")
    assert (state.mode, state.active_profile) == (PhoneMode.OPEN, "mobile")
    route = board.route("anna")
    assert (route.target, route.profile) == ("0701234567", "mobile")
    assert "Mobile" in route.why


def test_follow_profile_opens_on_profile_active_when_it_runs(board: SimulatedSwitchboard) -> None:
    board.apply_action("anna", PhoneAction.forward("0812345"), "start")
    board.manual_change("anna", PhoneAction.profile_switch("home"), client="mobile-app")
    board.apply_action("anna", PhoneAction.forward("0812345"), "again")
    state = board.apply_action("anna", PhoneAction.follow_profile(), "end")
    assert (state.mode, state.active_profile, state.forward_number) == (
        PhoneMode.OPEN,
        "home",
        None,
    )
    assert board.route("anna").target == "086660000"


def test_none_changes_nothing_and_logs_a_protocol_warning(
    board: SimulatedSwitchboard, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        state = board.apply_action("anna", PhoneAction.none(), "k1")
    assert state.version == 0
    assert "protocol warning" in caplog.text
    assert board.log()[-1].warning is not None


def test_manual_change_records_the_other_client(board: SimulatedSwitchboard) -> None:
    state = board.manual_change("anna", PhoneAction.close(), client="user")
    assert (state.changed_by, state.version) == ("user", 1)
    assert board.log()[-1].client == "user"


def test_repeated_key_replays_without_a_second_change(
    board: SimulatedSwitchboard, clock: VirtualClock
) -> None:
    first = board.apply("anna", PhoneAction.close(), "same")
    board.manual_change("anna", PhoneAction.open())
    clock.advance(timedelta(minutes=1))
    again = board.apply("anna", PhoneAction.close(), "same")
    assert again.replayed and not first.replayed
    assert again.value == first.value
    assert board.phone("anna").mode is PhoneMode.OPEN  # the replay did not close it again
    assert board.phone("anna").version == 2
    assert [r.replayed for r in board.log()] == [False, False, True]


def test_key_reused_for_another_request_is_a_conflict(board: SimulatedSwitchboard) -> None:
    board.apply_action("anna", PhoneAction.close(), "k")
    with pytest.raises(IdempotencyConflictError, match="already used"):
        board.apply_action("anna", PhoneAction.open(), "k")
    assert board.log()[-1].error == "idempotency_conflict"


def test_keys_expire_after_the_ttl(clock: VirtualClock) -> None:
    board = SimulatedSwitchboard([ANNA], clock=clock, idempotency_ttl=timedelta(hours=1))
    board.apply_action("anna", PhoneAction.close(), "k")
    clock.advance(timedelta(hours=2))
    assert not board.apply("anna", PhoneAction.close(), "k").replayed
    assert board.phone("anna").version == 2


def test_switch_to_unknown_profile_is_rejected_and_changes_nothing(
    board: SimulatedSwitchboard,
) -> None:
    with pytest.raises(RejectedActionError, match="unknown profile 'car'") as err:
        board.apply_action("anna", PhoneAction.profile_switch("car"), "k")
    assert not is_retryable(err.value)
    assert board.phone("anna").version == 0


@pytest.mark.parametrize("number", ["", "07-12", "abc", "1"])
def test_forward_to_a_non_number_is_rejected(board: SimulatedSwitchboard, number: str) -> None:
    with pytest.raises(RejectedActionError, match="cannot forward"):
        board.apply_action("anna", PhoneAction.forward(number), "k")


def test_unknown_user_is_a_permanent_error(board: SimulatedSwitchboard) -> None:
    with pytest.raises(UnknownUserError, match="'zed'") as err:
        board.get_user("zed")
    assert not is_retryable(err.value)
    with pytest.raises(UnknownUserError):
        board.apply_action("zed", PhoneAction.open(), "k")


def test_publish_replace_and_withdraw_referrals_leave_phone_alone(
    board: SimulatedSwitchboard,
) -> None:
    board.publish_referral("anna", referral(), "p1")
    board.publish_referral("anna", referral(message="Moved"), "p2")
    board.publish_referral("anna", referral("r0", start=T0, end=T0 + timedelta(minutes=30)), "p3")
    assert [(r.id, r.message) for r in board.referrals("anna")] == [
        ("r0", "Board meeting"),
        ("r1", "Moved"),
    ]
    assert board.phone("anna").version == 0
    assert board.withdraw("anna", "r1", "w1").value is True
    assert board.withdraw("anna", "r1", "w2").value is False  # idempotent, no error
    assert [r.id for r in board.referrals("anna")] == ["r0"]


def test_referral_with_unknown_end_profile_or_reversed_times_is_rejected(
    board: SimulatedSwitchboard,
) -> None:
    with pytest.raises(RejectedActionError, match="unknown profile"):
        board.publish_referral("anna", referral(end_action=PhoneAction.profile_switch("x")), "a")
    with pytest.raises(RejectedActionError, match="end is not after start"):
        board.publish_referral("anna", referral(end=T0), "b")
    assert board.referrals("anna") == []


def test_route_for_closed_and_forwarded(board: SimulatedSwitchboard) -> None:
    board.apply_action("anna", PhoneAction.close(), "k1")
    assert board.route("anna").to_json()["target"] == "operator"
    board.apply_action("anna", PhoneAction.forward("00701234567"), "k2")
    route = board.route("anna")
    assert (route.target, route.mode) == ("00701234567", PhoneMode.FORWARDED)
    assert "forwarded to 00701234567" in route.why


def test_log_lists_commands_in_order_with_time_user_key_and_client(
    board: SimulatedSwitchboard, clock: VirtualClock
) -> None:
    board.publish_referral("anna", referral(), "p1")
    clock.advance(timedelta(seconds=30))
    board.apply_action("anna", PhoneAction.close(), "a1")
    records = [r.to_json() for r in board.log()]
    assert [(r["seq"], r["op"], r["detail"], r["idempotency_key"]) for r in records] == [
        (1, "publish_referral", "r1", "p1"),
        (2, "action", "close", "a1"),
    ]
    assert records[1]["at"] == "2025-03-10T08:00:30Z"
    assert records[1]["user"] == "anna" and records[1]["client"] == "calref"


def test_fail_next_fails_before_changing_anything(board: SimulatedSwitchboard) -> None:
    board.faults.configure(fail_next=1, status=429, retry_after=7)
    with pytest.raises(SwitchboardUnavailable) as err:
        board.apply_action("anna", PhoneAction.close(), "k")
    assert is_retryable(err.value) and err.value.retry_after == 7 and err.value.status == 429
    assert board.phone("anna").version == 0
    assert board.apply_action("anna", PhoneAction.close(), "k").version == 1


def test_lost_answer_is_carried_out_and_a_retry_replays_it(board: SimulatedSwitchboard) -> None:
    board.faults.configure(lose_next=1)
    with pytest.raises(SwitchboardError) as err:
        board.apply_action("anna", PhoneAction.close(), "k")
    assert is_retryable(err.value)
    assert board.phone("anna").mode is PhoneMode.CLOSED
    retry = board.apply("anna", PhoneAction.close(), "k")
    assert retry.replayed and retry.value.version == 1


def test_error_rate_is_seeded_and_roughly_respected() -> None:
    faults = Faults(seed=42, error_rate=0.25)
    draws = [faults.draw(mutating=False) for _ in range(400)]
    assert 60 < draws.count("fail") < 140
    again = Faults(seed=42, error_rate=0.25)
    assert [again.draw(mutating=False) for _ in range(400)] == draws


def test_bad_fault_settings_are_named() -> None:
    with pytest.raises(CalrefError, match="unknown setting 'lag'"):
        Faults(lag=1)
    with pytest.raises(CalrefError, match="error_rate"):
        Faults(error_rate=2)


def test_naive_clock_is_refused() -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2025, 1, 1)

    board = SimulatedSwitchboard([ANNA], clock=NaiveClock())
    with pytest.raises(CalrefError, match="naive"):
        board.apply_action("anna", PhoneAction.close(), "k")


def test_concurrent_actions_each_bump_version_once(board: SimulatedSwitchboard) -> None:
    def work(n: int) -> None:
        for i in range(50):
            board.apply_action("anna", PhoneAction.forward(f"08{n}{i:03d}"), f"t{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert board.phone("anna").version == 200
    assert len(board.log()) == 200


def test_a_profile_without_a_number_of_its_own_rings_the_extension() -> None:
    desk = User("dan", "Dan", "dan@example.se", "1240", (Profile("desk", "Desk phone"),))
    route = SimulatedSwitchboard([desk]).route("dan")
    assert (route.target, route.profile, route.mode) == ("1240", "desk", PhoneMode.OPEN)
