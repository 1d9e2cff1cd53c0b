"""``calref check``: every credential, address and user problem before the service starts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.switchboard.simulator import RunningSimulator, create_app, run_in_thread
from rules.model import Profile, User

CALREF = Path(sys.executable).parent / "calref"
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:m1\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20990101T090000Z\r\nDTEND:20990101T100000Z\r\nSUMMARY:Later\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    known = [User("anna", "Anna", "anna@example.se", "2001", (Profile("ext", "Extension"),))]
    running = run_in_thread(create_app(known, token="s3cret-token"))
    yield running
    running.stop()


def write_config(tmp_path: Path, url: str, *, users: tuple[str, ...]) -> Path:
    (tmp_path / "anna.ics").write_text(CALENDAR, encoding="utf-8")
    (tmp_path / "bo.ics").write_text("this is not a calendar\n", encoding="utf-8")
    lines = [
        "timezone: Europe/Stockholm",
        f"switchboard: {{kind: http, url: '{url}', token_env: CHECK_TOKEN}}",
        "users:",
    ]
    for uid in users:
        lines.append(
            f"  - {{id: {uid}, name: {uid.title()}, email: {uid}@example.se, extension: '2001',"
            f" calendars: [{{kind: ics, path: {uid}.ics}}]}}"
        )
    path = tmp_path / "calref.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_check(config: Path, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHECK_TOKEN": token}
    return subprocess.run(
        [str(CALREF), "check", "-c", str(config), "--connect"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_a_ready_config_passes_every_check(tmp_path: Path, simulator: RunningSimulator) -> None:
    done = run_check(write_config(tmp_path, simulator.url, users=("anna",)), "s3cret-token")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok    config: 1 user, 1 calendar, Europe/Stockholm")
    assert any(line.startswith("ok") and "anna.ics: 0 events" in line for line in lines)
    assert lines[-1] == f"ok    switchboard: {simulator.url} knows the 1 user"


def test_each_problem_is_one_line_and_no_secret_is_shown(
    tmp_path: Path, simulator: RunningSimulator
) -> None:
    done = run_check(write_config(tmp_path, simulator.url, users=("anna", "bo")), "wrong-token")
    assert done.returncode == 1
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2
    assert "bo.ics" in fails[0]  # the calendar that is not a calendar
    assert fails[1].startswith("FAIL  switchboard:") and "401" in fails[1]
    assert "wrong-token" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_user_the_switchboard_does_not_know_is_named(
    tmp_path: Path, simulator: RunningSimulator
) -> None:
    done = run_check(write_config(tmp_path, simulator.url, users=("anna", "bo")), "s3cret-token")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "FAIL  switchboard: does not know user(s) bo"
