"""What only the HTTP side has: tokens, timeouts, the wire, and the simulator's own endpoints.

``HttpSwitchboard`` runs against the real simulator over real HTTP on 127.0.0.1
(uvicorn in a thread), or against an ``httpx.MockTransport`` for answers the
simulator never gives (a proxy's HTML page, a malformed body). The behaviour
every switchboard shares runs on both sides in ``test_switchboard_behaviour``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.clock import VirtualClock
from connectors.secrets import Secret
from connectors.switchboard.errors import UnauthorizedError
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
    users = [ANNA, User("bo", "Bo", "bo@example.se", "2345")]
    board = SimulatedSwitchboard(users, clock=clock)
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


def test_the_simulator_shows_route_log_and_replays_over_http(
    sb: HttpSwitchboard, sim: RunningSimulator
) -> None:
    sb.apply_action("anna", PhoneAction.close(), "dup-key")
    sb.apply_action("anna", PhoneAction.open(), "k-open")
    sb.apply_action("anna", PhoneAction.none(), "k-none")
    with raw(sim) as http:
        route = http.get("/api/users/anna/route").json()
        replay = http.post(
            "/api/users/anna/actions",
            json={"action": {"type": "close"}, "client": "calref"},
            headers={"Idempotency-Key": "dup-key"},
        )
        commands = http.get("/api/log", params={"user": "anna"}).json()["commands"]
    assert route == {
        "user": "anna",
        "target": "1234",
        "profile": "desk",
        "mode": "open",
        "why": "phone open, active profile Desk",
    }
    assert replay.headers["Idempotent-Replayed"] == "true"
    ours = [c for c in commands if c["idempotency_key"] == "dup-key"]
    assert [(c["detail"], c["replayed"], c["client"]) for c in ours] == [
        ("close", False, "calref"),
        ("close", True, "calref"),
    ]
    assert ours[0]["at"] == "2025-03-10T08:00:00Z" and ours[0]["user"] == "anna"
    (none,) = [c for c in commands if c["idempotency_key"] == "k-none"]
    assert none["detail"] == "none" and "should not be sent" in none["warning"]


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
