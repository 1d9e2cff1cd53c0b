"""Real-time end-to-end test: ``calref simulator`` and ``calref run`` as separate processes.

An ICS calendar holds meetings a few seconds ahead; ``calref run`` polls it every
second and must carry out each phone action on the simulator (over HTTP) within
one second after it is due, exactly once, in order. Then it is stopped with
SIGTERM (clean exit, readable logs) and started again on the same store, which
must send nothing twice. This is the one place where the tests sleep: every wait
is bounded.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
    running_simulator,
    sleep_until,
    start,
    summary,
    wait_for_log_line,
    write_calendar,
)

pytestmark = pytest.mark.slow

# (uid, subject, start offset, end offset) in seconds after a whole-second anchor.
MEETINGS: list[Meeting] = [
    ("close-1", "Design review #close", 8, 12),
    ("fwd-1", "Offsite #fwd:0701234567", 14, 17),
    ("mobile-1", "Standup #mobile", 18, 21),
]
# The phone actions the switchboard must receive, with when they are due (offset seconds).
# The forward number gains the trunk prefix "0" (an external number must start with it).
EXPECTED_ACTIONS = [
    ("close", 8),  # the #close meeting starts
    ("follow_profile", 12),  # ... and ends: back to the extension's standard settings
    ("forward 00701234567", 14),  # the #fwd meeting starts
    ("follow_profile", 17),  # ... and ends
    ("profile_switch mobile", 21),  # the soft #mobile meeting ends (its start sends nothing)
]
FIRST_DUE = min(offset for _, offset in EXPECTED_ACTIONS)
LAST_DUE = max(offset for _, offset in EXPECTED_ACTIONS)
MARGIN = 2.5  # seconds waited after the last due time before reading the log
QUIET_AFTER_RESTART = 4.0


@dataclass
class FirstRun:
    """What the first ``calref run`` left behind, for the tests to check."""

    base_url: str
    folder: Path
    anchor: datetime
    startup_seconds: float
    log: list[dict[str, Any]]
    user: dict[str, Any]
    route: dict[str, Any]
    exit_code: int
    stop_seconds: float
    stderr: str


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("realtime")
    port = free_port()
    (folder / "config.yaml").write_text(CONFIG.format(port=port), encoding="utf-8")
    with running_simulator(folder, port):
        yield f"http://127.0.0.1:{port}", folder


@pytest.fixture(scope="module")
def first_run(simulator: tuple[str, Path]) -> FirstRun:
    base_url, folder = simulator
    anchor = datetime.fromtimestamp(math.ceil(time.time()), UTC)
    write_calendar(folder / "calendars" / "alice.ics", MEETINGS, anchor)
    proc = start(calref_command("run", "--config", "config.yaml"), folder, "run1")
    try:
        startup = wait_for_log_line(proc, "calref running", STARTUP_TIMEOUT)
        ready_by = (anchor - datetime.now(UTC)).total_seconds() + FIRST_DUE
        assert ready_by > 1.0, (
            f"calref run took {startup:.2f}s to start, leaving {ready_by:.2f}s before the first "
            f"action (due {FIRST_DUE}s after the calendar was written); the machine is too slow "
            "for these offsets"
        )
        sleep_until(anchor + timedelta(seconds=LAST_DUE + MARGIN))
        log = get_json(f"{base_url}/api/log?user={USER}")["commands"]
        user = get_json(f"{base_url}/api/users/{USER}")
        route = get_json(f"{base_url}/api/users/{USER}/route")
        code, stop_seconds = proc.terminate()
        return FirstRun(
            base_url, folder, anchor, startup, log, user, route, code, stop_seconds, proc.stderr()
        )
    finally:
        proc.kill()


def test_calref_run_starts_well_before_the_first_action(first_run: FirstRun) -> None:
    print(f"calref run start-up: {first_run.startup_seconds:.2f}s")
    assert first_run.startup_seconds < FIRST_DUE - 1


def test_each_action_arrives_once_in_order_within_a_second_of_its_due_time(
    first_run: FirstRun,
) -> None:
    actions = [c for c in first_run.log if c["op"] == "action"]
    expected = [detail for detail, _ in EXPECTED_ACTIONS]
    assert [c["detail"] for c in actions] == expected, (
        f"commands received:\n{summary(first_run.log)}"
    )
    lateness = []
    for command, (detail, offset) in zip(actions, EXPECTED_ACTIONS, strict=True):
        due = first_run.anchor + timedelta(seconds=offset)
        at = parse_at(command["at"])
        lateness.append((detail, round((at - due).total_seconds(), 3)))
        assert due <= at < due + ON_TIME, f"{detail}: due {due}, received {at}"
        assert command["replayed"] is False
        assert command["error"] is None
        assert command["client"] == "calref"
    print("lateness (s):", lateness)


def test_each_referral_is_published_once_with_the_calendar_times(first_run: FirstRun) -> None:
    published = [c["detail"] for c in first_run.log if c["op"] == "publish_referral"]
    assert len(published) == len(set(published))
    referrals = sorted(first_run.user["referrals"], key=lambda r: r["start"])
    assert {r["id"] for r in referrals} == set(published)
    anchor = first_run.anchor
    got = [
        (r["message"], parse_at(r["start"]), parse_at(r["end"]), r["start_action"], r["end_action"])
        for r in referrals
    ]
    assert got == [
        (
            "Design review",
            anchor + timedelta(seconds=8),
            anchor + timedelta(seconds=12),
            {"type": "close"},
            {"type": "follow_profile"},
        ),
        (
            "Offsite",
            anchor + timedelta(seconds=14),
            anchor + timedelta(seconds=17),
            {"type": "forward", "number": "00701234567"},
            {"type": "follow_profile"},
        ),
        (
            "Standup",
            anchor + timedelta(seconds=18),
            anchor + timedelta(seconds=21),
            {"type": "none"},
            {"type": "profile_switch", "profile": "mobile"},
        ),
    ]


def test_the_phone_ends_open_on_the_mobile_profile(first_run: FirstRun) -> None:
    phone = first_run.user["phone"]
    assert phone["mode"] == "open"
    assert phone["active_profile"] == "mobile"
    assert phone["forward_number"] is None
    assert phone["changed_by"] == "calref"
    assert first_run.route["profile"] == "mobile"
    assert first_run.route["target"] == "0701234567"


def test_sigterm_stops_calref_run_cleanly_with_readable_logs(first_run: FirstRun) -> None:
    assert first_run.exit_code == 0, first_run.stderr
    assert first_run.stop_seconds < PROMPT_STOP
    lines = first_run.stderr.splitlines()
    assert "Traceback" not in first_run.stderr
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR|DEBUG)\s")
    assert all(stamp.match(line) for line in lines), first_run.stderr
    for detail, _ in EXPECTED_ACTIONS:
        assert any(
            re.search(rf"sync.cli.shutdown: {USER}: \w+ {detail} at .*: sent", ln) for ln in lines
        ), f"no log line for {detail}:\n{first_run.stderr}"
    assert lines[-1].endswith("sync.cli.shutdown: stopped")


def test_a_restart_on_the_same_store_sends_nothing_twice(first_run: FirstRun) -> None:
    before = get_json(f"{first_run.base_url}/api/log")["commands"]
    proc = start(calref_command("run", "--config", "config.yaml"), first_run.folder, "run2")
    try:
        wait_for_log_line(proc, "calref running", STARTUP_TIMEOUT)
        time.sleep(QUIET_AFTER_RESTART)  # several poll intervals and wake-ups
        after = get_json(f"{first_run.base_url}/api/log")["commands"]
        code, stop_seconds = proc.terminate()
    finally:
        proc.kill()
    new = after[len(before) :]
    assert after[: len(before)] == before
    assert [c for c in new if c["op"] == "action"] == [], summary(new)
    assert new == [], summary(new)
    assert code == 0, proc.stderr()
    assert stop_seconds < PROMPT_STOP
