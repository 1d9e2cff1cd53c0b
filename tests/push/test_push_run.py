"""The ``push:`` config block, and push inside ``calref run`` (start, notify, SIGTERM)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from push_support import ALICE, GRAPH_CONFIG, graph_change, post_graph
from typer.testing import CliRunner

from connectors.clock import SystemClock
from rules.errors import ConfigError
from sync.cli.main import app
from sync.cli.runtime import build_service
from sync.config import load_config
from sync.push.setup import start_push
from sync.service.scheduler import ServiceScheduler
from tests.connectors.graph_doubles import FakeGraph

WAIT = 20.0  # seconds; a bound on real-time waits, never a sleep


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calref.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_push_block_defaults_and_public_urls(tmp_path: Path) -> None:
    text = GRAPH_CONFIG.replace("  listen_port: 0\n", "").replace(
        "  maintenance_seconds: 600\n", ""
    )
    push = load_config(write(tmp_path, text)).file.push
    assert push is not None
    assert (push.listen_host, push.listen_port) == ("127.0.0.1", 8800)
    assert (push.safety_poll_seconds, push.maintenance_seconds) == (3600, 600)
    assert push.url("/hooks/graph") == "https://calref.example.se/hooks/graph"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "public_url: https://calref.example.se",
            "public_url: http://calref.example.se",
            "calref.yaml:13:15: push.public_url: must be an https:// URL",
        ),
        (
            "listen_port: 0",
            "listen_port: 70000",
            "calref.yaml:12:16: push.listen_port: Input should be less than or equal to 65535",
        ),
        (
            "safety_poll_seconds: 3600",
            "safety_poll_secs: 3600",
            "calref.yaml:15:3: push.safety_poll_secs: unknown key",
        ),
        (
            "  client_state_env: CALREF_TEST_PUSH_CLIENT_STATE\n",
            "",
            "calref.yaml:10:1: push with graph calendars needs client_state_env",
        ),
        (
            "  client_state_env: CALREF_TEST_PUSH_CLIENT_STATE\n",
            "  client_state_env: A\n  client_state_file: b.txt\n",
            "calref.yaml:11:3: push: give at most one of client_state_env or client_state_file",
        ),
    ],
)
def test_bad_push_blocks_are_reported_with_line_and_column(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GRAPH_CONFIG
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GRAPH_CONFIG.replace(old, new)))
    assert expected in str(err.value)


def test_a_listener_port_in_use_disables_push_and_leaves_polling(
    tmp_path: Path, fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = load_config(
            write(tmp_path, GRAPH_CONFIG.replace("listen_port: 0", f"listen_port: {port}"))
        )
        service = build_service(cfg, SystemClock())
        scheduler = ServiceScheduler(service)
        with caplog.at_level(logging.ERROR, logger="sync.push.setup"):
            assert start_push(cfg, service, scheduler) is None
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
    assert fake.subscriptions == {}
    assert service.settings.interval_for(f"graph:{ALICE}").total_seconds() == 60
    service.store.close()


class _Lines(logging.Handler):
    """Collects messages and signals when one starts with ``prefix``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self.seen: dict[str, threading.Event] = {}

    def watch(self, prefix: str) -> threading.Event:
        return self.seen.setdefault(prefix, threading.Event())

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        for prefix, event in self.seen.items():
            if message.startswith(prefix):
                event.set()


@pytest.fixture
def restored_process_state() -> Iterator[None]:
    """``calref run`` installs signal handlers and log handlers: put them back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_calref_run_serves_push_and_stops_the_listener_on_sigterm(
    tmp_path: Path, fake: FakeGraph, restored_process_state: None
) -> None:
    config = write(tmp_path, GRAPH_CONFIG)
    lines = _Lines()
    listening, running = lines.watch("push listener on "), lines.watch("calref running")
    watched = [logging.getLogger(name) for name in ("sync.cli.shutdown", "sync.push.setup")]
    for logger in watched:
        logger.addHandler(lines)
    notified_sync = threading.Event()

    def on_request(request: httpx.Request) -> None:
        if request.url.path.endswith(f"/users/{ALICE}/calendarView/delta") and (
            "deltatoken" in str(request.url)
        ):
            notified_sync.set()

    fake.on_request = on_request
    seen: dict[str, object] = {}

    def operator() -> None:
        try:
            if listening.wait(WAIT) and running.wait(WAIT):
                url = next(m for m in lines.messages if m.startswith("push listener on "))
                seen["url"] = url.split()[3].rstrip(",")
                sub = next(s["id"] for s in fake.subscriptions.values() if ALICE in s["resource"])
                seen["status"] = post_graph(str(seen["url"]), graph_change(sub)).status_code
                seen["synced"] = notified_sync.wait(WAIT)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=operator, name="test-operator")
    thread.start()
    try:
        result = CliRunner().invoke(app, ["run", "--config", str(config)])
    finally:
        thread.join(WAIT)
        for logger in watched:
            logger.removeHandler(lines)
    assert result.exit_code == 0, result.output
    assert seen["status"] == 202
    assert seen["synced"] is True
    assert "push active for 2 of 2 calendars" in lines.messages
    assert lines.messages[-1] == "stopped"
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{seen['url']}/hooks/graph", timeout=2)
