"""HttpSwitchboard against the real simulator over real HTTP on 127.0.0.1 (uvicorn in a thread)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.clock import VirtualClock
from connectors.secrets import Secret
from connectors.switchboard.base import PhoneMode, PublishedReferral
from connectors.switchboard.errors import RejectedActionError, UnauthorizedError, UnknownUserError
from connectors.switchboard.http import HttpSwitchboard
from connectors.switchboard.sim_state import SimulatedSwitchboard
from connectors.switchboard.simulator import RunningSimulator, create_app, run_in_thread
from rules.errors import CalrefError, SwitchboardError, SwitchboardUnavailable, is_retryable
from rules.model import PhoneAction, Profile, User

TOKEN = "s3cr3t-token-for-tests"
T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
ANNA = User(
    "anna",
    "Anna Berg",
    "anna@example.se",
    "1234",
    (
        Profile("desk", "Desk", "1234"),
        Profile("mobile", "Mobile", "0701234567"),
        Profile("home", "Home office", "086660000"),
    ),
)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def sim(clock: VirtualClock) -> Iterator[RunningSimulator]:
    board = SimulatedSwitchboard([ANNA, User("bo", "Bo", "bo@example.se", "2345")], clock=clock)
    running = run_in_thread(create_app(board, token=TOKEN))
    yield running
    running.stop()


@pytest.fixture
def sb(sim: RunningSimulator) -> Iterator[HttpSwitchboard]:
    with HttpSwitchboard(sim.url, Secret(TOKEN), timeout=5.0) as client:
        yield client


def raw(sim: RunningSimulator) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {TOKEN}"})


def set_faults(sim: RunningSimulator, **settings: object) -> None:
    with raw(sim) as http:
        http.post("/api/_faults", json=settings).raise_for_status()


def test_lists_users_with_profiles_and_open_phone(sb: HttpSwitchboard) -> None:
    users = {u.id: u for u in sb.list_users()}
    assert set(users) == {"anna", "bo"}
    anna = sb.get_user("anna")
    assert [p.id for p in anna.profiles] == ["desk", "mobile", "home"]
    assert (anna.phone.mode, anna.phone.active_profile, anna.phone.version) == (
        PhoneMode.OPEN,
        "desk",
        0,
    )


def test_each_action_sets_the_phone_and_route_follows(
    sb: HttpSwitchboard, sim: RunningSimulator, clock: VirtualClock
) -> None:
    with raw(sim) as http:

        def route() -> dict[str, str]:
            return http.get("/api/users/anna/route").json()

        state = sb.apply_action("anna", PhoneAction.close(), "k-close")
        assert (state.mode, state.version, state.changed_by) == (PhoneMode.CLOSED, 1, "calref")
        assert state.changed_at == T0
        assert route()["target"] == "operator"

        clock.set(T0 + timedelta(minutes=3))
        state = sb.apply_action("anna", PhoneAction.forward("00701234567"), "k-fwd")
        assert (state.mode, state.forward_number) == (PhoneMode.FORWARDED, "00701234567")
        assert state.changed_at == clock.now()
        assert route()["target"] == "00701234567"

        state = sb.apply_action("anna", PhoneAction.open(), "k-open")
        assert (state.mode, state.forward_number, state.active_profile) == (
            PhoneMode.OPEN,
            None,
            "desk",
        )
        assert route() == {
            "user": "anna",
            "target": "1234",
            "profile": "desk",
            "mode": "open",
            "why": "phone open, active profile Desk",
        }

        state = sb.apply_action("anna", PhoneAction.profile_switch("mobile"), "k-switch")
        assert (state.mode, state.active_profile) == (PhoneMode.OPEN, "mobile")
        assert route()["target"] == "0701234567"
        assert sb.get_user("anna").phone == state


def test_follow_profile_after_a_manual_switch_rings_the_new_profile(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    sb.apply_action("anna", PhoneAction.forward("0812345"), "start")
    sim.switchboard.manual_change("anna", PhoneAction.profile_switch("home"), client="user")
    sim.switchboard.manual_change("anna", PhoneAction.close(), client="user")
    state = sb.apply_action("anna", PhoneAction.follow_profile(), "end")
    assert (state.mode, state.active_profile, state.changed_by) == (
        PhoneMode.OPEN,
        "home",
        "calref",
    )
    with raw(sim) as http:
        assert http.get("/api/users/anna/route").json()["target"] == "086660000"


def test_same_key_twice_changes_once_and_the_log_marks_the_replay(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    first = sb.apply_action("anna", PhoneAction.close(), "dup-key")
    sim.switchboard.manual_change("anna", PhoneAction.open(), client="user")
    second = sb.apply_action("anna", PhoneAction.close(), "dup-key")
    assert second == first  # the stored answer, not a new change
    assert sb.get_user("anna").phone.mode is PhoneMode.OPEN
    assert sb.get_user("anna").phone.version == 2
    with raw(sim) as http:
        commands = http.get("/api/log", params={"user": "anna"}).json()["commands"]
        replay = http.post(
            "/api/users/anna/actions",
            json={"action": {"type": "close"}, "client": "calref"},
            headers={"Idempotency-Key": "dup-key"},
        )
    ours = [c for c in commands if c["idempotency_key"] == "dup-key"]
    assert [(c["detail"], c["replayed"], c["client"]) for c in ours] == [
        ("close", False, "calref"),
        ("close", True, "calref"),
    ]
    assert ours[0]["at"] == "2025-03-10T08:00:00Z" and ours[0]["user"] == "anna"
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_lost_answer_then_retry_with_same_key_changes_once(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    set_faults(sim, lose_next=1)
    with pytest.raises(SwitchboardUnavailable):
        sb.apply_action("anna", PhoneAction.forward("0812345"), "retry-me")
    state = sb.apply_action("anna", PhoneAction.forward("0812345"), "retry-me")
    assert (state.mode, state.version) == (PhoneMode.FORWARDED, 1)


def test_wrong_or_missing_token_is_401_and_never_echoed(sim: RunningSimulator) -> None:
    wrong = "wrong-token-value-xyz"
    with HttpSwitchboard(sim.url, Secret(wrong)) as client, pytest.raises(UnauthorizedError) as err:
        client.get_user("anna")
    assert not is_retryable(err.value)
    assert "HTTP 401" in str(err.value) and "GET /api/users/anna" in str(err.value)
    assert wrong not in str(err.value) and TOKEN not in str(err.value)
    with HttpSwitchboard(sim.url, None) as client, pytest.raises(UnauthorizedError):
        client.apply_action("anna", PhoneAction.close(), "k")
    assert sim.switchboard.phone("anna").version == 0
    assert wrong not in repr(client)


def test_injected_503_is_transient_with_retry_after(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    set_faults(sim, fail_next=2, status=503, retry_after=3)
    with pytest.raises(SwitchboardUnavailable) as err:
        sb.apply_action("anna", PhoneAction.close(), "k")
    assert is_retryable(err.value) and err.value.status == 503 and err.value.retry_after == 3
    assert "HTTP 503" in str(err.value) and "injected fault" in str(err.value)
    with pytest.raises(SwitchboardUnavailable):
        sb.get_user("anna")
    assert sb.apply_action("anna", PhoneAction.close(), "k").version == 1


def test_injected_429_is_transient(sb: HttpSwitchboard, sim: RunningSimulator) -> None:
    set_faults(sim, fail_next=1, status=429, retry_after=0.5)
    with pytest.raises(SwitchboardUnavailable) as err:
        sb.list_users()
    assert (err.value.status, err.value.code, err.value.retry_after) == (429, "throttled", 0.5)


def test_injected_latency_is_observed(sb: HttpSwitchboard, sim: RunningSimulator) -> None:
    set_faults(sim, latency=0.25)
    started = time.monotonic()
    sb.get_user("anna")
    assert time.monotonic() - started >= 0.25


def test_slow_gateway_times_out_as_transient(sim: RunningSimulator) -> None:
    set_faults(sim, latency=1.0)
    client = HttpSwitchboard(sim.url, Secret(TOKEN), timeout=0.2)
    with client, pytest.raises(SwitchboardUnavailable, match=r"timed out after 0\.2s") as err:
        client.apply_action("anna", PhoneAction.close(), "k")
    assert is_retryable(err.value) and err.value.code == "timeout"
    set_faults(sim, latency=0)
    with HttpSwitchboard(sim.url, Secret(TOKEN)) as client:
        retry = client.apply_action("anna", PhoneAction.close(), "k")
    sim.stop()  # waits for the timed-out request, whether the gateway goes on with it or not
    assert retry.version == 1 and sim.switchboard.phone("anna").version == 1
    assert [c.replayed for c in sim.switchboard.log()].count(False) == 1


def test_unreachable_gateway_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpSwitchboard(f"http://127.0.0.1:{port}", Secret(TOKEN), timeout=2)
    with client, pytest.raises(SwitchboardUnavailable, match="cannot reach") as err:
        client.list_users()
    assert is_retryable(err.value) and TOKEN not in str(err.value)


def test_switch_to_unknown_profile_is_422_permanent(sb: HttpSwitchboard) -> None:
    with pytest.raises(RejectedActionError) as err:
        sb.apply_action("anna", PhoneAction.profile_switch("car"), "k")
    assert not is_retryable(err.value) and err.value.status == 422
    assert "unknown profile 'car'" in str(err.value) and "POST /api/users/anna/actions" in str(
        err.value
    )


def test_unknown_user_is_404_permanent(sb: HttpSwitchboard) -> None:
    with pytest.raises(UnknownUserError) as err:
        sb.get_user("zed")
    assert not is_retryable(err.value) and "HTTP 404 unknown_user" in str(err.value)


def test_publish_replace_and_withdraw_referral(sb: HttpSwitchboard, sim: RunningSimulator) -> None:
    ref = PublishedReferral(
        id="evt/42@2025-03-10",
        reason="meeting",
        message="Board meeting",
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
        start_action=PhoneAction.none(),
        end_action=PhoneAction.profile_switch("mobile"),
    )
    sb.publish_referral("anna", ref, "p1")
    moved = PublishedReferral(**{**ref.__dict__, "end": T0 + timedelta(hours=3)})
    sb.publish_referral("anna", moved, "p2")
    assert sb.list_referrals("anna") == [moved]
    assert sb.get_user("anna").phone.version == 0  # information only
    sb.withdraw_referral("anna", ref.id, "w1")
    sb.withdraw_referral("anna", ref.id, "w2")  # already gone: still fine
    assert sb.list_referrals("anna") == []
    ops = [(c.op, c.detail) for c in sim.switchboard.log()]
    assert ops == [
        ("publish_referral", ref.id),
        ("publish_referral", ref.id),
        ("withdraw_referral", ref.id),
        ("withdraw_referral", ref.id),
    ]


def test_mutating_call_without_idempotency_key_is_refused(sim: RunningSimulator) -> None:
    with raw(sim) as http:
        answer = http.post("/api/users/anna/actions", json={"action": {"type": "close"}})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "missing_idempotency_key"
    assert sim.switchboard.phone("anna").version == 0


def test_invalid_bodies_get_json_errors_naming_the_field(sim: RunningSimulator) -> None:
    with raw(sim) as http:
        bad_type = http.post(
            "/api/users/anna/actions",
            json={"action": {"type": "explode"}},
            headers={"Idempotency-Key": "k1"},
        )
        no_number = http.post(
            "/api/users/anna/actions",
            json={"action": {"type": "forward"}},
            headers={"Idempotency-Key": "k2"},
        )
        naive = http.put(
            "/api/users/anna/referrals/r1",
            json={
                "reason": "meeting",
                "start": "2025-03-10T09:00:00",
                "end": "2025-03-10T10:00:00Z",
                "start_action": {"type": "none"},
                "end_action": {"type": "open"},
            },
            headers={"Idempotency-Key": "k3"},
        )
    assert bad_type.status_code == 422 and "action.type" in bad_type.json()["error"]["message"]
    assert no_number.status_code == 422 and "number" in no_number.json()["error"]["message"]
    assert naive.status_code == 422 and "start" in naive.json()["error"]["message"]
    assert sim.switchboard.log() == [] and sim.switchboard.phone("anna").version == 0


def test_client_is_usable_from_several_threads(sb: HttpSwitchboard, sim: RunningSimulator) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                sb.apply_action("anna", PhoneAction.forward(f"08{n}{i:03d}"), f"t{n}-{i}")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sb.get_user("anna").phone.version == 40


def test_malformed_answer_is_a_permanent_error_naming_the_field() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "anna", "profiles": [], "phone": {"mode": "odd"}})

    sb = HttpSwitchboard("http://gw.test", None, transport=httpx.MockTransport(handler))
    with sb, pytest.raises(SwitchboardError, match=r"phone\.mode: 'odd'") as err:
        sb.get_user("anna")
    assert not is_retryable(err.value)


def test_html_5xx_from_a_proxy_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    sb = HttpSwitchboard("http://gw.test", None, transport=httpx.MockTransport(handler))
    with sb, pytest.raises(SwitchboardUnavailable, match="HTTP 502") as err:
        sb.apply_action("anna", PhoneAction.open(), "k")
    assert is_retryable(err.value)


def test_client_sends_token_key_client_name_and_action_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"mode": "forwarded", "active_profile": "desk", "forward_number": "08123"}
        )

    transport = httpx.MockTransport(handler)
    with HttpSwitchboard(
        "http://gw.test/", Secret("tok"), client_name="calref-2", transport=transport
    ) as sb:
        state = sb.apply_action("anna", PhoneAction.forward("08123"), "key-1")
    assert state.forward_number == "08123"
    request = seen[0]
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.url.path == "/api/users/anna/actions"
    assert json.loads(request.content) == {
        "action": {"type": "forward", "number": "08123"},
        "client": "calref-2",
    }


@pytest.mark.parametrize("url", ["gateway:8700", "ftp://gw.test", "http://", ""])
def test_bad_url_is_a_clear_config_error(url: str) -> None:
    with pytest.raises(CalrefError, match="switchboard url"):
        HttpSwitchboard(url, Secret(TOKEN))


def test_none_action_changes_nothing_and_is_logged_as_a_warning(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    sb.apply_action("anna", PhoneAction.close(), "k1")
    state = sb.apply_action("anna", PhoneAction.none(), "k2")
    assert (state.mode, state.version) == (PhoneMode.CLOSED, 1)
    with raw(sim) as http:
        last = http.get("/api/log").json()["commands"][-1]
    assert (last["detail"], last["idempotency_key"]) == ("none", "k2")
    assert "should not be sent" in last["warning"]


def test_referral_ids_show_what_the_gateway_has_now(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    ref = PublishedReferral(
        id="evt/7",
        reason="meeting",
        message="",
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
        start_action=PhoneAction.none(),
        end_action=PhoneAction.open(),
    )
    sb.publish_referral("anna", ref, "p1")
    assert sb.referral_ids() == {"anna": {"evt/7"}, "bo": set()}
    sim.switchboard.withdraw("anna", "evt/7", "gone", client="operator")
    assert sb.referral_ids() == {"anna": set(), "bo": set()}
