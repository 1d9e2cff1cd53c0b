"""``calref run`` with 200 users, two of whom have hostile calendar feeds (issue 7, item 1).

Mallory's feed accepts the connection and never answers; Trudy's answers with
headers and then trickles one byte every few hundred milliseconds, for ever
(neither ends before the source's own limits). Every other user has a meeting
that starts shortly after start-up: each of their phone actions must reach the
simulator on time, the process must stay below a memory bound, and SIGTERM
must stop it promptly while both hostile syncs still hang.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import (
    STARTUP_TIMEOUT,
    calref_command,
    free_port,
    get_json,
    parse_at,
    sleep_until,
    start,
    wait_for_log_line,
    wait_for_simulator,
    write_calendar,
)

pytestmark = pytest.mark.slow

USERS = 200
START_AT = 14  # seconds after the anchor: after start-up (which waits up to 5 s for the feeds)
LENGTH = 3
SPREAD = 4  # meetings start in 4 consecutive seconds, 50 users each (a busy top of the hour)
#: an action counts as on time when it reaches the simulator within this of its due time;
#: the goal is under a second; generous here for 2 cores shared with the simulator and others
ON_TIME = timedelta(seconds=2)
MEMORY_MB = 400  # RSS bound for 200 small calendars (measured about 105 MB)
PROMPT = 3.0  # seconds to exit after SIGTERM (the goal is 1; the hung feeds would hold 30 s)

HEADER = """\
timezone: Europe/Stockholm
organization: {{domains: [example.se]}}
store: sqlite:///calref.db
switchboard: {{kind: http, url: "http://127.0.0.1:{port}", timeout_seconds: 5}}
sync: {{poll_seconds: 30}}
users:
"""
USER = """\
  - id: {uid}
    name: User {uid}
    email: {uid}@example.se
    extension: "{ext}"
    calendars:
      - {calendar}
"""


class HostileFeeds:
    """Two feeds on one local port: ``/hung`` never answers, ``/trickle`` never finishes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = conn.recv(4096).decode("latin-1")
            self.requests.append(request.split(" ", 2)[1] if " " in request else "?")
            if " /trickle" not in request:
                self._stop.wait()  # hung: never a byte
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n\r\n")
            conn.sendall(b"BEGIN:VCALENDAR\r\n")
            while not self._stop.wait(0.3):
                conn.sendall(b"X")
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def feeds() -> Iterator[HostileFeeds]:
    hostile = HostileFeeds()
    yield hostile
    hostile.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_200_users_are_served_on_time_while_two_feeds_hang(
    tmp_path: Path, feeds: HostileFeeds
) -> None:
    port = free_port()
    anchor = datetime.fromtimestamp(math.ceil(time.time()), UTC)
    parts = [HEADER.format(port=port)]
    good = []
    due: dict[str, tuple[int, int]] = {}
    for n in range(USERS):
        uid = f"u{n:03d}"
        if n == 0:
            uid, calendar = "mallory", f'{{kind: ics, url: "http://127.0.0.1:{feeds.port}/hung"}}'
        elif n == 1:
            uid = "trudy"
            calendar = f'{{kind: ics, url: "http://127.0.0.1:{feeds.port}/trickle"}}'
        else:
            calendar = f"{{kind: ics, path: calendars/{uid}.ics}}"
            begins = START_AT + n % SPREAD
            meeting = (f"{uid}-m", "Review #close", begins, begins + LENGTH)
            write_calendar(tmp_path / "calendars" / f"{uid}.ics", [meeting], anchor)
            good.append(uid)
            due[uid] = (begins, begins + LENGTH)
        parts.append(USER.format(uid=uid, ext=1000 + n, calendar=calendar))
    (tmp_path / "config.yaml").write_text("".join(parts), encoding="utf-8")

    base_url = f"http://127.0.0.1:{port}"
    sim = start(
        calref_command("simulator", "--config", "config.yaml", "--port", str(port)),
        tmp_path,
        "simulator",
    )
    proc = None
    try:
        wait_for_simulator(base_url, sim)
        proc = start(calref_command("run", "--config", "config.yaml"), tmp_path, "run")
        wait_for_log_line(proc, "calref running", STARTUP_TIMEOUT)
        assert sorted(feeds.requests) == ["/hung", "/trickle"], feeds.requests
        sleep_until(anchor + timedelta(seconds=START_AT + SPREAD + LENGTH) + ON_TIME + ON_TIME)
        rss = _rss_mb(proc.popen.pid)
        commands = [c for c in get_json(f"{base_url}/api/log")["commands"] if c["op"] == "action"]
        code, seconds = proc.terminate()
    finally:
        if proc is not None:
            proc.kill()
        sim.kill()

    by_user: dict[str, list[tuple[str, datetime]]] = {}
    for c in commands:
        by_user.setdefault(str(c["user"]), []).append((str(c["detail"]), parse_at(str(c["at"]))))
    assert sorted(by_user) == good
    late = []
    worst = timedelta(0)
    for uid, sent in by_user.items():
        assert [d for d, _ in sent] == ["close", "follow_profile"], (uid, sent)
        for (_detail, at), offset in zip(sent, due[uid], strict=True):
            lag = at - (anchor + timedelta(seconds=offset))
            worst = max(worst, lag)
            if lag >= ON_TIME:
                late.append((uid, lag))
    assert late == [], f"{len(late)} late actions, e.g. {late[:5]}"
    assert rss < MEMORY_MB, f"calref run used {rss:.0f} MB"
    assert code == 0, proc.output()
    assert seconds < PROMPT, f"took {seconds:.2f}s to stop"
    print(
        f"\n200 users: worst lag {worst.total_seconds():.2f}s, RSS {rss:.0f} MB, "
        f"stopped {seconds:.2f}s after SIGTERM"
    )
