"""Issue 9: SIGTERM during the start-up of 2,000 users stops ``calref run`` within 3 s.

A real ``calref run`` process on 2,000 users with ICS-file calendars (the embedded
switchboard simulator, a fresh SQLite store each time) gets SIGTERM at moments
spread over its start-up: while it imports, while it reads the config and opens
the store, and while it reads the calendars. Each time it must exit cleanly
(code 0, never killed by the signal's default action) within ``STOP_WITHIN``
seconds. The goal (a second) lives in ``benchmarks/scale.py``; the bound here is
three times that, so a loaded machine still passes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import calref_command, start

USERS = 2000
STOP_WITHIN = 3.0

pytestmark = pytest.mark.slow


def _calendar(n: int, day: datetime) -> str:
    """A small calendar: a weekly meeting and a meeting today."""
    stamp = day.strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calref tests//scale//EN"]
    for k, (hour, rule) in enumerate(((9, "RRULE:FREQ=WEEKLY;COUNT=20"), (13, ""))):
        start = (day + timedelta(hours=hour)).strftime("%Y%m%dT%H%M%SZ")
        end = (day + timedelta(hours=hour + 1)).strftime("%Y%m%dT%H%M%SZ")
        lines += ["BEGIN:VEVENT", f"UID:u{n}-{k}", f"DTSTAMP:{stamp}", f"DTSTART:{start}"]
        lines += [f"DTEND:{end}", f"SUMMARY:Meeting {k}", *([rule] if rule else []), "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def _write_organisation(folder: Path) -> None:
    calendars = folder / "calendars"
    calendars.mkdir()
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    lines = [
        "timezone: Europe/Stockholm",
        "organization: {domains: [example.se]}",
        "switchboard: {kind: simulator}",
        "sync: {poll_seconds: 60}",
        "users:",
    ]
    for n in range(USERS):
        (calendars / f"u{n:05d}.ics").write_text(_calendar(n, day), encoding="utf-8")
        lines += [
            f"  - id: u{n:05d}",
            f"    name: User {n}",
            f"    email: u{n:05d}@example.se",
            f'    extension: "{2000 + n}"',
            "    profiles:",
            "      - {id: ext, name: Extension, tags: [ext, desk]}",
            "    calendars:",
            f"      - {{kind: ics, path: calendars/u{n:05d}.ics}}",
        ]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    "moment",
    [0.3, 1.5, "first log line + 1 s"],
    ids=["importing", "loading", "reading-calendars"],
)
def test_sigterm_during_start_up_of_2000_users_stops_within_3_s(
    tmp_path: Path, moment: float | str
) -> None:
    _write_organisation(tmp_path)
    proc = start(calref_command("run", "--config", "config.yaml"), tmp_path, "run")
    try:
        if isinstance(moment, float):
            time.sleep(moment)
        else:
            deadline = time.monotonic() + 60
            while not proc.stderr().strip() and time.monotonic() < deadline:
                assert proc.popen.poll() is None, proc.output()
                time.sleep(0.05)
            time.sleep(1.0)
        assert proc.popen.poll() is None, f"calref run ended by itself:\n{proc.output()}"
        code, took = proc.terminate()
    finally:
        proc.kill()
    assert code == 0, f"exit code {code} (negative: killed by the signal):\n{proc.output()}"
    assert took < STOP_WITHIN, f"took {took:.1f} s to stop:\n{proc.output()}"
