"""Shared machinery of the end-to-end tests: the config, the ``calref`` processes, the calendar.

The tests start ``calref simulator`` and ``calref run`` as real processes whose
output goes to files; every wait here is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar, Event

ROOT = Path(__file__).resolve().parents[2]
USER = "alice"
ON_TIME = timedelta(seconds=1)
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
PROMPT_STOP = 5.0  # a clean shutdown must take less than this

#: (uid, subject, start offset, end offset) in seconds after an anchor
Meeting = tuple[str, str, int, int]

CONFIG = """\
timezone: Europe/Stockholm
organization: {{domains: [example.se]}}
store: sqlite:///calref.db
switchboard: {{kind: http, url: "http://127.0.0.1:{port}", timeout_seconds: 5}}
sync: {{poll_seconds: 1}}
users:
  - id: alice
    name: Alice Andersson
    email: alice@example.se
    extension: "1234"
    profiles:
      - {{id: ext, name: Extension, tags: [ext, desk]}}
      - {{id: mobile, name: Mobile, number: "0701234567", tags: [mobile, mobil]}}
    calendars:
      - {{kind: ics, path: calendars/alice.ics}}
"""


def calref_command(*args: str) -> list[str]:
    """The installed ``calref`` script beside this interpreter, else the CLI module."""
    script = Path(sys.executable).parent / "calref"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from sync.cli.main import main; main()", *args]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def write_calendar(path: Path, meetings: list[Meeting], anchor: datetime) -> None:
    """An ICS file with ``meetings`` (offsets in seconds after ``anchor``), written atomically."""
    cal = Calendar()
    cal.add("prodid", "-//calref tests//e2e//EN")
    cal.add("version", "2.0")
    for uid, subject, start_offset, end_offset in meetings:
        event = Event()
        event.add("uid", uid)
        event.add("summary", subject)
        event.add("dtstart", anchor + timedelta(seconds=start_offset))
        event.add("dtend", anchor + timedelta(seconds=end_offset))
        event.add("dtstamp", anchor)
        cal.add_component(event)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(cal.to_ical())
    tmp.replace(path)  # a poll never reads half a file


@dataclass
class Proc:
    """A started process whose stdout and stderr go to files (never a pipe that can fill)."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    started: float

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace") + self.stderr()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; return the exit code and how long the process took to exit."""
        sent = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"process did not exit within {STOP_TIMEOUT}s of SIGTERM:\n{self.output()}")
        return code, time.monotonic() - sent


def start(args: list[str], cwd: Path, name: str) -> Proc:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")
    out, err = cwd / f"{name}.out", cwd / f"{name}.err"
    with out.open("wb") as out_file, err.open("wb") as err_file:
        popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=out_file, stderr=err_file)
    return Proc(popen, out, err, time.monotonic())


def wait_for_log_line(proc: Proc, needle: str, timeout: float) -> float:
    """Seconds from the process's start until ``needle`` appeared in its stderr."""
    deadline = proc.started + timeout
    while time.monotonic() < deadline:
        if needle in proc.stderr():
            return time.monotonic() - proc.started
        if proc.popen.poll() is not None:
            pytest.fail(f"process exited ({proc.popen.returncode}) early:\n{proc.output()}")
        time.sleep(0.05)
    pytest.fail(f"{needle!r} not logged within {timeout}s:\n{proc.output()}")


def summary(commands: list[dict[str, Any]]) -> str:
    """One line per command, for failure messages."""
    return "\n".join(f"{c['at']} {c['op']} {c['detail']}" for c in commands) or "(none)"


def parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_for_simulator(base_url: str, sim: Proc) -> None:
    """Wait until the simulator at ``base_url`` answers its health check."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            if get_json(f"{base_url}/api/health") == {"status": "ok"}:
                return
        except OSError:
            pass
        if sim.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the simulator did not come up on {base_url}:\n{sim.output()}")
        time.sleep(0.1)


@contextmanager
def running_simulator(folder: Path, port: int, *args: str) -> Iterator[Proc]:
    """``calref simulator`` on ``folder``'s config.yaml and ``port`` (and ``args``), answering.

    Killed when the block ends.
    """
    command = calref_command("simulator", "--config", "config.yaml", *args, "--port", str(port))
    proc = start(command, folder, "simulator")
    try:
        wait_for_simulator(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        proc.kill()


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
