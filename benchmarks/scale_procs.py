"""Real processes for the scale benchmark: ``calref run`` and ``calref simulator``, and readers.

``Children`` starts every child process in a session of its own, with stdout and
stderr in files (never a pipe that can fill), and ends them all (their process
groups, by id) when the benchmark ends, also on Ctrl-C or an exception.
``process_cpu`` and ``peak_memory`` read ``/proc``; ``Simulator`` is a small client
of the simulator's HTTP API (docs/switchboard-api.yaml plus its ``/api/log``);
``source_polls`` reads when each calendar was last polled from the store's SQLite
file (read-only), the one place a poll leaves a trace. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STOP_WAIT = 30.0  # seconds a child gets after SIGTERM before it is killed


def calref_command(*args: str) -> list[str]:
    """The installed ``calref`` script beside this interpreter, else the CLI module."""
    script = Path(sys.executable).parent / "calref"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "sync.cli.main", *args]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    """A started child: its Popen, output files, and when it started (monotonic and wall)."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    started: float
    started_wall: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stderr(self) -> str:
        try:
            return self.err.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, chars: int = 1500) -> str:
        return self.stderr()[-chars:]


@dataclass
class Children:
    """Every child process this benchmark started; ``close`` ends those still running."""

    procs: list[Proc] = field(default_factory=list)

    def start_simulator(self, folder: Path, port: int, latency: float) -> Proc:
        """``calref simulator`` on ``port`` with ``folder/simulator.yaml``."""
        args = ("--config", "simulator.yaml", "--port", str(port), "--latency", f"{latency:g}")
        return self.start(calref_command("simulator", *args), folder, "simulator")

    def start(self, args: list[str], cwd: Path, name: str) -> Proc:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        out, err = cwd / f"{name}.out", cwd / f"{name}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            started, wall = time.monotonic(), time.time()
            popen = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdout=out_file,
                stderr=err_file,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: ended with its children
            )
        proc = Proc(popen, out, err, started, wall)
        self.procs.append(proc)
        return proc

    def terminate(self, proc: Proc, timeout: float = STOP_WAIT) -> tuple[int | None, float]:
        """SIGTERM ``proc``; (exit code, seconds to exit), killed after ``timeout``."""
        sent = time.monotonic()
        if proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - sent
        self.kill(proc)
        return code, took

    def kill(self, proc: Proc) -> None:
        """SIGKILL ``proc``'s process group (it and anything it started), then reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc)
        self.procs.clear()


# -- /proc ---------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MiB, None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# -- the simulator -------------------------------------------------------------------------------


def parse_at(text: str) -> float:
    """A simulator timestamp (ISO 8601, ``Z``) as a Unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Simulator:
    """A client of ``calref simulator``'s HTTP API on ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, timeout: float = 60.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def healthy(self) -> bool:
        try:
            return bool(self.get("/api/health", timeout=2) == {"status": "ok"})
        except (OSError, ValueError):
            return False

    def log(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every command the simulator received (of ``user``)."""
        commands: list[dict[str, Any]] = self.get("/api/log" + (f"?user={user}" if user else ""))[
            "commands"
        ]
        return commands

    def referrals(self, user: str) -> list[dict[str, Any]]:
        """The referrals the switchboard shows for ``user`` now."""
        try:
            found: list[dict[str, Any]] = self.get(f"/api/users/{user}", timeout=10)["referrals"]
        except urllib.error.HTTPError:
            return []
        return found


def wait_healthy(sim: Simulator, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sim.healthy():
            return
        if not proc.alive():
            raise RuntimeError(f"the simulator exited with {proc.popen.returncode}:\n{proc.tail()}")
        time.sleep(0.2)
    raise RuntimeError(f"the simulator did not answer within {timeout:.0f} s:\n{proc.tail()}")


# -- the store -----------------------------------------------------------------------------------


def source_polls(db: Path) -> dict[str, str | None] | None:
    """Each calendar source's last poll (``sources.last_attempt``), read-only; None when the
    store cannot be read (not there yet, or its layout changed)."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT id, last_attempt FROM sources").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return {str(source): None if at is None else str(at) for source, at in rows}


def stored_time(text: str) -> float:
    """A naive UTC timestamp as the store writes it, as a Unix time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def wait_for(condition: Any, timeout: float, period: float = 0.1) -> bool:
    """Call ``condition()`` every ``period`` s until it is true or ``timeout`` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(period)


class LogTail:
    """Reads a child's stderr as it grows, counting lines that contain given needles."""

    def __init__(self, path: Path, needles: tuple[str, ...]) -> None:
        self.path = path
        self.needles = needles
        self.counts = dict.fromkeys(needles, 0)
        self.first_seen: dict[str, float] = {}  # needle -> wall time first read
        self.lines = 0
        self._offset = 0
        self._partial = b""

    def read(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return
        self._offset += len(data)
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        now = time.time()
        for raw in chunks:
            line = raw.decode("utf-8", "replace")
            self.lines += 1
            for needle in self.needles:
                if needle in line:
                    self.counts[needle] += 1
                    self.first_seen.setdefault(needle, now)
