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


def event(uid: str, hour: int) -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{{day}}T{hour:02d}0000Z\r\nDTEND:{{day}}T{hour:02d}3000Z\r\nSUMMARY:M\r\n"
        "END:VEVENT\r\n"
    )


def calendar_with(*uids: str) -> str:
    from datetime import UTC, datetime, timedelta

    day = (datetime.now(UTC) + timedelta(hours=12)).strftime("%Y%m%d")
    hour = (datetime.now(UTC) + timedelta(hours=12)).hour
    body = "".join(event(uid, hour).replace("{day}", day) for uid in uids)
    return CALENDAR.split("BEGIN:VEVENT")[0] + body + "END:VCALENDAR\r\n"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CALREF), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_counts_are_pluralised(tmp_path: Path, simulator: RunningSimulator) -> None:
    config = write_config(tmp_path, simulator.url, users=("anna",))
    (tmp_path / "anna.ics").write_text(calendar_with("one"), encoding="utf-8")
    (tmp_path / "two.ics").write_text(calendar_with("a", "b"), encoding="utf-8")
    text = config.read_text().replace(
        "calendars: [{kind: ics, path: anna.ics}]",
        "calendars: [{kind: ics, path: anna.ics}, {kind: ics, path: two.ics}]",
    )
    config.write_text(text)
    done = run_check(config, "s3cret-token")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok    config: 1 user, 2 calendars, Europe/Stockholm"
    assert any(line.endswith("anna.ics: 1 event in the next 24 h") for line in lines), lines
    assert any(line.endswith("two.ics: 2 events in the next 24 h") for line in lines), lines


def test_check_reports_every_problem_of_every_block_at_once(tmp_path: Path) -> None:
    config = tmp_path / "calref.yaml"
    config.write_text(
        "store: mysql://calref@db/calref\n"
        "switchboard: {kind: http, url: 'ftp://pbx'}\n"
        "users:\n"
        "  - id: anna\n"
        "    name: Anna\n"
        "    email: anna@example.se\n"
        "    extension: '2001'\n"
        "    calendars:\n"
        "      - {kind: ics, path: anna.ics, colour: red}\n"
        "      - {kind: ics, url: 'ftp://files.example.se/anna.ics'}\n"
        "      - {kind: ics, path: 5}\n",
        encoding="utf-8",
    )
    for args in (("check", "-c", str(config)), ("check", "-c", str(config), "--connect")):
        done = run_cli(*args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        places = [line.split(": ", 1)[0] for line in done.stderr.splitlines()[1:]]
        assert places == [
            f"{config}:{place}" for place in ("1:8", "2:32", "9:37", "10:26", "11:27")
        ]
        assert "unsupported database 'mysql'" in done.stderr


def test_check_refuses_a_store_folder_that_does_not_exist_without_creating_it(
    tmp_path: Path,
) -> None:
    config = tmp_path / "calref.yaml"
    config.write_text(
        "store: sqlite:///data/calref.db\n"
        "users:\n  - {id: anna, name: Anna, email: anna@example.se, extension: '2001',"
        " calendars: [{kind: ics, path: anna.ics, colour: red}]}\n",
        encoding="utf-8",
    )
    done = run_cli("check", "-c", str(config))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[1] == f"{config}:1:8: the store's folder {tmp_path / 'data'} does not exist"
    assert lines[2].startswith(f"{config}:3:") and "unknown key 'colour'" in lines[2]
    assert not (tmp_path / "data").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calref.yaml"]


def test_check_connect_tries_every_calendar_of_every_user_and_the_switchboard(
    tmp_path: Path, simulator: RunningSimulator
) -> None:
    config = write_config(tmp_path, simulator.url, users=("anna", "bo"))
    text = config.read_text()
    for uid in ("anna", "bo"):
        text = text.replace(
            f"calendars: [{{kind: ics, path: {uid}.ics}}]",
            f"calendars: [{{kind: ics, url_env: NO_SUCH_{uid.upper()}_URL}},"
            f" {{kind: ics, path: {uid}.ics}}, {{kind: ics, path: gone-{uid}.ics}}]",
        )
    config.write_text(text)
    done = run_check(config, "wrong-token")
    assert done.returncode == 1, done.stdout + done.stderr
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split(": ", 1)[0] for line in fails] == [
        "FAIL  anna/calendars[0]",
        f"FAIL  {tmp_path / 'gone-anna.ics'}",
        "FAIL  bo/calendars[0]",
        f"FAIL  {tmp_path / 'bo.ics'}",
        f"FAIL  {tmp_path / 'gone-bo.ics'}",
        "FAIL  switchboard",
    ]
    assert "NO_SUCH_ANNA_URL is not set" in fails[0]
    assert "401" in fails[-1]
    assert "Traceback" not in done.stderr
