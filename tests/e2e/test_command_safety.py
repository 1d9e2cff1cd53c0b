"""``calref status`` never creates a store; ``calref simulator`` is closed by default
(issue 7, items 6 and 7). Real processes, real HTTP; every wait bounded."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    CONFIG,
    Proc,
    calref_command,
    free_port,
    running_simulator,
    start,
    wait_for_simulator,
)

pytestmark = pytest.mark.slow

TOKEN = "sim-token-for-tests-123"
TOKEN_CONFIG = CONFIG.replace(
    "timeout_seconds: 5}", "timeout_seconds: 5, token_env: CALREF_SWITCHBOARD_TOKEN}"
)
assert TOKEN_CONFIG != CONFIG


def _finish(proc: Proc, timeout: float = 20.0) -> int:
    try:
        return proc.popen.wait(timeout=timeout)
    except Exception:
        proc.kill()
        pytest.fail(f"the process did not end:\n{proc.output()}")


def _post_action(base_url: str, token: str | None) -> int:
    body = json.dumps({"action": {"type": "close"}, "client": "test"}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"k-{token}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{base_url}/api/users/alice/actions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def _wait_for_stdout(proc: Proc, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.out.read_text(encoding="utf-8", errors="replace")
        if needle in text:
            return text
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"{needle!r} not printed:\n{proc.output()}")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(CONFIG.format(port=free_port()), encoding="utf-8")
    return tmp_path


def test_status_without_a_store_says_so_and_creates_none(folder: Path) -> None:
    proc = start(calref_command("status", "--config", "config.yaml"), folder, "status")
    code = _finish(proc)
    assert code == 2, proc.output()
    assert "calref: store" in proc.stderr() and "does not exist" in proc.stderr()
    assert "Traceback" not in proc.output()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("calref.db")) == []


def test_the_simulator_refuses_to_listen_beyond_loopback_without_a_token(folder: Path) -> None:
    args = ["simulator", "--config", "config.yaml", "--host", "0.0.0.0", "--port", "0"]
    proc = start(calref_command(*args), folder, "simulator")
    code = _finish(proc)
    assert code == 2, proc.output()
    assert "refusing to listen on 0.0.0.0 without a bearer token" in proc.stderr()
    assert "Traceback" not in proc.output()


def test_the_simulator_without_a_token_on_loopback_says_anyone_local_may_act(
    folder: Path,
) -> None:
    port = free_port()
    args = ["simulator", "--config", "config.yaml", "--port", str(port)]
    proc = start(calref_command(*args), folder, "simulator")
    try:
        text = _wait_for_stdout(proc, "listening on")
        wait_for_simulator(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.kill()
    assert f"listening on http://127.0.0.1:{port}; no token required" in text


@pytest.fixture
def token_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Proc]]:
    """``calref simulator`` on 0.0.0.0 with the config's token_env set."""
    port = free_port()
    (tmp_path / "config.yaml").write_text(TOKEN_CONFIG.format(port=port), encoding="utf-8")
    monkeypatch.setenv("CALREF_SWITCHBOARD_TOKEN", TOKEN)
    with running_simulator(tmp_path, port, "--host", "0.0.0.0") as proc:
        yield f"http://127.0.0.1:{port}", proc


def test_the_simulator_uses_the_configs_token_over_http(token_sim: tuple[str, Proc]) -> None:
    base_url, proc = token_sim
    text = _wait_for_stdout(proc, "listening on")
    port = base_url.rsplit(":", 1)[1]
    assert f"listening on http://0.0.0.0:{port}; bearer token required" in text
    assert "CALREF_SWITCHBOARD_TOKEN" in text and TOKEN not in proc.output()
    assert _post_action(base_url, None) == 401
    assert _post_action(base_url, "wrong-token") == 401
    assert _post_action(base_url, TOKEN) == 200
