"""Real-process failover: two ``calref run`` on one SQLite store against one simulator.

The first process leads (holds the store's lease); the second stands by and must
send nothing. The calendar is written once both are up, with meetings a few
seconds ahead. The leader carries out the first meeting's actions, then gets
SIGTERM: it releases the lease on its way out, the standby takes over within a
few seconds and carries out the remaining actions on time. The simulator's log
must show every action exactly once. Like ``test_realtime.py`` this test sleeps;
every wait is bounded.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    CONFIG,
    ON_TIME,
    PROMPT_STOP,
    STARTUP_TIMEOUT,
    USER,
    Meeting,
    calref_command,
    free_port,
    get_json,
    parse_at,
    sleep_until,
    start,
    summary,
    wait_for_log_line,
    wait_for_simulator,
    write_calendar,
)

pytestmark = pytest.mark.slow

# (uid, subject, start offset, end offset) in seconds after the anchor
MEETINGS: list[Meeting] = [
    ("close-1", "Design review #close", 4, 6),
    ("fwd-1", "Offsite #fwd:0701234567", 14, 16),
    ("mobile-1", "Standup #mobile", 17, 19),
]
EXPECTED_ACTIONS = [
    ("close", 4),
    ("follow_profile", 6),
    ("forward 00701234567", 14),
    ("follow_profile", 16),
    ("profile_switch mobile", 19),
]
SIGTERM_AT = 8  # the leader stops between the first and the second meeting
TAKEOVER_WITHIN = 5.0  # seconds from SIGTERM until the standby leads
MARGIN = 2.5


def test_two_processes_send_each_action_once_and_the_standby_takes_over_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    (tmp_path / "config.yaml").write_text(CONFIG.format(port=port), encoding="utf-8")
    base_url = f"http://127.0.0.1:{port}"
    procs = []
    try:
        sim = start(
            calref_command("simulator", "--config", "config.yaml", "--port", str(port)),
            tmp_path,
            "simulator",
        )
        procs.append(sim)
        wait_for_simulator(base_url, sim)
        # an empty calendar at first: both processes start with nothing to do
        write_calendar(tmp_path / "calendars" / "alice.ics", [], datetime.now(UTC))
        leader = start(calref_command("run", "--config", "config.yaml"), tmp_path, "run1")
        procs.append(leader)
        wait_for_log_line(leader, "calref running", STARTUP_TIMEOUT)
        standby = start(calref_command("run", "--config", "config.yaml"), tmp_path, "run2")
        procs.append(standby)
        wait_for_log_line(standby, "calref standby", STARTUP_TIMEOUT)
        assert "standby: the store is held by" in standby.stderr()

        anchor = datetime.fromtimestamp(math.ceil(time.time()), UTC)
        write_calendar(tmp_path / "calendars" / "alice.ics", MEETINGS, anchor)
        sleep_until(anchor + timedelta(seconds=SIGTERM_AT))
        before = actions_of(get_json(f"{base_url}/api/log?user={USER}")["commands"])
        sigterm = time.monotonic()
        code, stop_seconds = leader.terminate()
        assert code == 0, leader.output()
        assert stop_seconds < PROMPT_STOP
        took_over = wait_for_log_line(standby, "calref running", STARTUP_TIMEOUT)
        takeover_seconds = standby.started + took_over - sigterm
        print(f"standby took over {takeover_seconds:.2f}s after SIGTERM")
        assert takeover_seconds < TAKEOVER_WITHIN, standby.output()

        sleep_until(anchor + timedelta(seconds=max(o for _, o in EXPECTED_ACTIONS) + MARGIN))
        log = get_json(f"{base_url}/api/log?user={USER}")["commands"]
        code, _ = standby.terminate()
        assert code == 0, standby.output()
    finally:
        for proc in procs:
            proc.kill()

    actions = actions_of(log)
    assert [c["detail"] for c in actions] == [d for d, _ in EXPECTED_ACTIONS], summary(log)
    for command, (detail, offset) in zip(actions, EXPECTED_ACTIONS, strict=True):
        due = anchor + timedelta(seconds=offset)
        at = parse_at(command["at"])
        assert due <= at < due + ON_TIME, f"{detail}: due {due}, received {at}"
        assert command["replayed"] is False
        assert command["error"] is None
    assert len({c["idempotency_key"] for c in actions}) == len(actions)
    published = [c["detail"] for c in log if c["op"] == "publish_referral"]
    assert len(published) == len(set(published)) == len(MEETINGS), summary(log)
    # who sent what: the first meeting by the leader, the rest by the standby after taking over
    assert [c["detail"] for c in before] == ["close", "follow_profile"], summary(log)
    assert sent_lines(leader.stderr()) == ["close", "follow_profile"]
    assert sent_lines(standby.stderr()) == [
        "forward 00701234567",
        "follow_profile",
        "profile_switch mobile",
    ]
    assert "Traceback" not in leader.stderr() + standby.stderr()


def actions_of(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in log if c["op"] == "action"]


def sent_lines(stderr: str) -> list[str]:
    """The actions a ``calref run`` logged as sent, in order."""
    found = []
    for line in stderr.splitlines():
        match = re.search(rf"sync.cli.shutdown: {USER}: \w+ (.+) at \S+: sent", line)
        if match:
            found.append(match.group(1))
    return found
