"""What every ``Switchboard`` does, run once on each side of the contract.

The ``sb`` fixture is the in-memory ``SimulatedSwitchboard`` itself
(``memory``), or ``HttpSwitchboard`` talking over real HTTP on 127.0.0.1 to
that simulator served by uvicorn in a thread (``http``). Either way ``board`` is
the simulator behind it, where a test makes a manual change, injects a fault or
reads the command log and the route. What only one side has is tested on its
own: the simulator's helpers in ``test_switchboard_sim_state``, the HTTP
adapter's timeouts, tokens and wire handling in ``test_switchboard_http``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from switchboard_people import ANNA, BO, T0

from connectors.clock import VirtualClock
from connectors.secrets import Secret
from connectors.switchboard.base import ListsReferrals, PhoneMode, PublishedReferral, Switchboard
from connectors.switchboard.errors import (
    IdempotencyConflictError,
    RejectedActionError,
    UnknownUserError,
)
from connectors.switchboard.http import HttpSwitchboard
from connectors.switchboard.sim_state import SimulatedSwitchboard
from connectors.switchboard.simulator import create_app, run_in_thread
from rules.errors import SwitchboardError, SwitchboardUnavailable, is_retryable
from rules.model import PhoneAction

TOKEN = "s3cr3t-token-for-tests"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def board(clock: VirtualClock) -> SimulatedSwitchboard:
    return SimulatedSwitchboard([ANNA, BO], clock=clock)


@pytest.fixture(params=["memory", "http"])
def sb(request: pytest.FixtureRequest, board: SimulatedSwitchboard) -> Iterator[Switchboard]:
    if request.param == "memory":
        yield board
        return
    running = run_in_thread(create_app(board, token=TOKEN))
    try:
        with HttpSwitchboard(running.url, Secret(TOKEN), timeout=5.0) as client:
            yield client
    finally:
        running.stop()


def over_http(sb: Switchboard) -> bool:
    return isinstance(sb, HttpSwitchboard)


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


def test_lists_users_with_profiles_the_first_active_and_the_phone_open(sb: Switchboard) -> None:
    assert [u.id for u in sb.list_users()] == ["anna", "bo"]
    anna = sb.get_user("anna")
    assert [p.id for p in anna.profiles] == ["desk", "mobile", "home"]
    assert (anna.phone.mode, anna.phone.active_profile, anna.phone.version) == (
        PhoneMode.OPEN,
        "desk",
        0,
    )


def test_a_user_without_profiles_gets_an_extension_profile(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    bo = sb.get_user("bo")
    assert [(p.id, p.number) for p in bo.profiles] == [("extension", "2345")]
    assert board.route("bo").target == "2345"


def test_each_action_sets_the_phone_bumps_the_version_and_the_route_follows(
    sb: Switchboard, board: SimulatedSwitchboard, clock: VirtualClock
) -> None:
    closed = sb.apply_action("anna", PhoneAction.close(), "k-close")
    assert (closed.mode, closed.version, closed.changed_by) == (PhoneMode.CLOSED, 1, "calref")
    assert closed.changed_at == T0
    assert board.route("anna").target == "operator"

    clock.advance(timedelta(minutes=5))
    fwd = sb.apply_action("anna", PhoneAction.forward("00701112233"), "k-fwd")
    assert (fwd.mode, fwd.forward_number, fwd.version) == (PhoneMode.FORWARDED, "00701112233", 2)
    assert fwd.changed_at == T0 + timedelta(minutes=5)
    assert board.route("anna").target == "00701112233"

    opened = sb.apply_action("anna", PhoneAction.open(), "k-open")
    assert (opened.mode, opened.forward_number, opened.active_profile) == (
        PhoneMode.OPEN,
        None,
        "desk",
    )
    assert board.route("anna").to_json() == {
        "target": "1234",
        "profile": "desk",
        "mode": "open",
        "why": "phone open, active profile Desk",
    }
    assert board.phone("anna").version == 3


def test_profile_switch_makes_the_profile_active_and_opens_the_phone(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    sb.apply_action("anna", PhoneAction.close(), "k1")
    state = sb.apply_action("anna", PhoneAction.profile_switch("mobile"), "k2")
    assert (state.mode, state.active_profile) == (PhoneMode.OPEN, "mobile")
    route = board.route("anna")
    assert (route.target, route.profile) == ("0701234567", "mobile")
    assert "Mobile" in route.why
    assert sb.get_user("anna").phone == state


def test_follow_profile_opens_on_the_profile_active_when_it_runs(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    sb.apply_action("anna", PhoneAction.forward("0812345"), "start")
    board.manual_change("anna", PhoneAction.profile_switch("home"), client="mobile-app")
    board.manual_change("anna", PhoneAction.close(), client="user")
    state = sb.apply_action("anna", PhoneAction.follow_profile(), "end")
    assert (state.mode, state.active_profile, state.forward_number, state.changed_by) == (
        PhoneMode.OPEN,
        "home",
        None,
        "calref",
    )
    assert board.route("anna").target == "086660000"


def test_none_changes_nothing_and_logs_a_protocol_warning(
    sb: Switchboard, board: SimulatedSwitchboard, caplog: pytest.LogCaptureFixture
) -> None:
    sb.apply_action("anna", PhoneAction.close(), "k1")
    with caplog.at_level(logging.WARNING):
        state = sb.apply_action("anna", PhoneAction.none(), "k2")
    assert (state.mode, state.version) == (PhoneMode.CLOSED, 1)
    assert "protocol warning" in caplog.text
    last = board.log()[-1]
    assert (last.detail, last.idempotency_key) == ("none", "k2")
    assert last.warning is not None and "should not be sent" in last.warning


def test_a_repeated_key_replays_the_answer_without_a_second_change(
    sb: Switchboard, board: SimulatedSwitchboard, clock: VirtualClock
) -> None:
    first = sb.apply_action("anna", PhoneAction.close(), "dup-key")
    board.manual_change("anna", PhoneAction.open(), client="user")
    clock.advance(timedelta(minutes=1))
    again = sb.apply_action("anna", PhoneAction.close(), "dup-key")
    assert again == first  # the stored answer, not a new change
    assert sb.get_user("anna").phone.mode is PhoneMode.OPEN  # the replay did not close it
    assert board.phone("anna").version == 2
    ours = [c for c in board.log() if c.idempotency_key == "dup-key"]
    assert [(c.detail, c.replayed, c.client) for c in ours] == [
        ("close", False, "calref"),
        ("close", True, "calref"),
    ]
    assert ours[0].at == T0 and ours[0].user == "anna"
    assert [c.replayed for c in board.log()] == [False, False, True]


def test_a_key_reused_for_another_request_is_a_conflict(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    sb.apply_action("anna", PhoneAction.close(), "k")
    with pytest.raises(IdempotencyConflictError, match="already used") as err:
        sb.apply_action("anna", PhoneAction.open(), "k")
    assert not is_retryable(err.value)
    assert board.log()[-1].error == "idempotency_conflict"


def test_switch_to_an_unknown_profile_is_rejected_and_changes_nothing(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    with pytest.raises(RejectedActionError, match="unknown profile 'car'") as err:
        sb.apply_action("anna", PhoneAction.profile_switch("car"), "k")
    assert not is_retryable(err.value) and err.value.status == 422
    if over_http(sb):
        assert "POST /api/users/anna/actions" in str(err.value)
    assert board.phone("anna").version == 0


@pytest.mark.parametrize("number", ["", "07-12", "abc", "1"])
def test_forward_to_a_non_number_is_rejected(
    sb: Switchboard, board: SimulatedSwitchboard, number: str
) -> None:
    with pytest.raises(RejectedActionError, match="cannot forward"):
        sb.apply_action("anna", PhoneAction.forward(number), "k")
    assert board.phone("anna").version == 0


def test_an_unknown_user_is_a_permanent_error(sb: Switchboard) -> None:
    with pytest.raises(UnknownUserError, match="'zed'") as err:
        sb.get_user("zed")
    assert not is_retryable(err.value)
    if over_http(sb):
        assert "HTTP 404 unknown_user" in str(err.value)
    with pytest.raises(UnknownUserError):
        sb.apply_action("zed", PhoneAction.open(), "k")


def test_publish_replace_and_withdraw_referrals_leave_the_phone_alone(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    first = referral("evt/42@2025-03-10")
    moved = referral("evt/42@2025-03-10", end=T0 + timedelta(hours=3), message="Moved")
    early = referral("r0", start=T0, end=T0 + timedelta(minutes=30))
    sb.publish_referral("anna", first, "p1")
    sb.publish_referral("anna", moved, "p2")
    sb.publish_referral("anna", early, "p3")
    assert board.referrals("anna") == [early, moved]
    if isinstance(sb, HttpSwitchboard):
        assert sb.list_referrals("anna") == [early, moved]
    assert sb.get_user("anna").phone.version == 0  # information only
    sb.withdraw_referral("anna", first.id, "w1")
    sb.withdraw_referral("anna", first.id, "w2")  # already gone: still fine
    assert board.referrals("anna") == [early]
    assert [(c.op, c.detail) for c in board.log()] == [
        ("publish_referral", first.id),
        ("publish_referral", first.id),
        ("publish_referral", "r0"),
        ("withdraw_referral", first.id),
        ("withdraw_referral", first.id),
    ]


def test_a_referral_with_an_unknown_end_profile_or_reversed_times_is_rejected(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    with pytest.raises(RejectedActionError, match="unknown profile"):
        sb.publish_referral("anna", referral(end_action=PhoneAction.profile_switch("x")), "a")
    with pytest.raises(RejectedActionError, match="end is not after start"):
        sb.publish_referral("anna", referral(end=T0), "b")
    assert board.referrals("anna") == []


def test_referral_ids_show_what_the_switchboard_has_now(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    assert isinstance(sb, ListsReferrals)
    sb.publish_referral("anna", referral("evt/7"), "p1")
    assert sb.referral_ids() == {"anna": {"evt/7"}, "bo": set()}
    board.withdraw("anna", "evt/7", "gone", client="operator")
    assert sb.referral_ids() == {"anna": set(), "bo": set()}


def test_the_log_lists_commands_in_order_with_time_user_key_and_client(
    sb: Switchboard, board: SimulatedSwitchboard, clock: VirtualClock
) -> None:
    sb.publish_referral("anna", referral(), "p1")
    clock.advance(timedelta(seconds=30))
    sb.apply_action("anna", PhoneAction.close(), "a1")
    records = [r.to_json() for r in board.log()]
    assert [(r["seq"], r["op"], r["detail"], r["idempotency_key"]) for r in records] == [
        (1, "publish_referral", "r1", "p1"),
        (2, "action", "close", "a1"),
    ]
    assert records[1]["at"] == "2025-03-10T08:00:30Z"
    assert records[1]["user"] == "anna" and records[1]["client"] == "calref"


@pytest.mark.parametrize(("status", "code"), [(429, "throttled"), (503, "unavailable")])
def test_an_injected_failure_is_retryable_with_retry_after_and_changes_nothing(
    sb: Switchboard, board: SimulatedSwitchboard, status: int, code: str
) -> None:
    board.faults.configure(fail_next=2, status=status, retry_after=7)
    with pytest.raises(SwitchboardUnavailable) as err:
        sb.apply_action("anna", PhoneAction.close(), "k")
    assert is_retryable(err.value)
    assert (err.value.status, err.value.code, err.value.retry_after) == (status, code, 7)
    assert "injected fault" in str(err.value)
    if over_http(sb):
        assert f"HTTP {status}" in str(err.value)
    with pytest.raises(SwitchboardUnavailable):
        sb.get_user("anna")
    assert board.phone("anna").version == 0
    assert sb.apply_action("anna", PhoneAction.close(), "k").version == 1


def test_a_lost_answer_is_carried_out_and_a_retry_with_the_same_key_replays_it(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    board.faults.configure(lose_next=1)
    with pytest.raises(SwitchboardError) as err:
        sb.apply_action("anna", PhoneAction.forward("0812345"), "retry-me")
    assert is_retryable(err.value)
    assert board.phone("anna").mode is PhoneMode.FORWARDED
    state = sb.apply_action("anna", PhoneAction.forward("0812345"), "retry-me")
    assert (state.mode, state.version) == (PhoneMode.FORWARDED, 1)
    assert [c.replayed for c in board.log()] == [False, True]


def test_concurrent_actions_each_bump_the_version_once(
    sb: Switchboard, board: SimulatedSwitchboard
) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                sb.apply_action("anna", PhoneAction.forward(f"08{n}{i:03d}"), f"t{n}-{i}")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sb.get_user("anna").phone.version == 80
    assert len(board.log()) == 80
