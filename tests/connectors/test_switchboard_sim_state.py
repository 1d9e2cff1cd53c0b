"""What only the simulator has: manual changes, key expiry, outcomes, routes, fault settings.

The behaviour every switchboard shares (phone semantics, idempotency, errors,
referrals, the log, injected faults) runs on both the simulator and the HTTP
adapter in ``test_switchboard_behaviour``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from switchboard_people import ANNA, BO, T0

from connectors.clock import VirtualClock
from connectors.switchboard.base import PhoneMode, PublishedReferral
from connectors.switchboard.sim_faults import Faults
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.errors import CalrefError
from rules.model import PhoneAction, Profile, User


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


def test_manual_change_records_the_other_client(board: SimulatedSwitchboard) -> None:
    state = board.manual_change("anna", PhoneAction.close(), client="user")
    assert (state.changed_by, state.version) == ("user", 1)
    assert board.log()[-1].client == "user"


def test_keys_expire_after_the_ttl(clock: VirtualClock) -> None:
    board = SimulatedSwitchboard([ANNA], clock=clock, idempotency_ttl=timedelta(hours=1))
    board.apply_action("anna", PhoneAction.close(), "k")
    clock.advance(timedelta(hours=2))
    assert not board.apply("anna", PhoneAction.close(), "k").replayed
    assert board.phone("anna").version == 2


def test_outcomes_tell_a_replay_and_whether_a_withdrawn_referral_existed(
    board: SimulatedSwitchboard,
) -> None:
    first = board.apply("anna", PhoneAction.close(), "same")
    again = board.apply("anna", PhoneAction.close(), "same")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.value == first.value
    board.publish_referral("anna", referral(), "p1")
    assert board.withdraw("anna", "r1", "w1").value is True
    assert board.withdraw("anna", "r1", "w2").value is False  # idempotent, no error


def test_route_for_closed_and_forwarded(board: SimulatedSwitchboard) -> None:
    board.apply_action("anna", PhoneAction.close(), "k1")
    assert board.route("anna").to_json()["target"] == "operator"
    board.apply_action("anna", PhoneAction.forward("00701234567"), "k2")
    route = board.route("anna")
    assert (route.target, route.mode) == ("00701234567", PhoneMode.FORWARDED)
    assert "forwarded to 00701234567" in route.why


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


def test_a_profile_without_a_number_of_its_own_rings_the_extension() -> None:
    desk = User("dan", "Dan", "dan@example.se", "1240", (Profile("desk", "Desk phone"),))
    route = SimulatedSwitchboard([desk]).route("dan")
    assert (route.target, route.profile, route.mode) == ("1240", "desk", PhoneMode.OPEN)
