"""The command line as an administrator uses it: exit codes and messages, never tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rules.rulefile import default_rules, parse_rules

CALREF = Path(sys.executable).parent / "calref"


def calref(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CALREF), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_default_prints_rules_that_check_clean(tmp_path: Path) -> None:
    done = calref("rules", "default")
    assert done.returncode == 0
    printed = parse_rules(done.stdout, "printed.yaml")
    assert [r.name for r in printed.rules] == [r.name for r in default_rules().rules]
    path = tmp_path / "rules.yaml"
    path.write_text(done.stdout, encoding="utf-8")
    checked = calref("rules", "check", str(path))
    assert checked.returncode == 0
    assert f"{path}: ok" in checked.stdout


def test_rules_check_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\n"
        "rules:\n"
        "  - name: busy\n"
        "    when: {show_as: [bussy]}\n"
        "    referral: {reason: meeting, start: clsoe}\n",
        encoding="utf-8",
    )
    done = calref("rules", "check", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{path}:4:" in done.stderr and "bussy" in done.stderr
    assert f"{path}:5:" in done.stderr and "clsoe" in done.stderr


def test_a_missing_config_is_one_clear_line(tmp_path: Path) -> None:
    done = calref(
        "preview", "-c", str(tmp_path / "nope.yaml"), "--from", "2026-12-01", "--to", "2026-12-02"
    )
    assert done.returncode == 2
    assert "nope.yaml: cannot read" in done.stderr
    assert "Traceback" not in done.stderr


def test_explain_names_the_matching_rule_and_why_earlier_ones_did_not(tmp_path: Path) -> None:
    calendar = tmp_path / "anna.ics"
    calendar.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VEVENT\r\nUID:m1\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Europe/Stockholm:20261201T090000\r\n"
        "DTEND;TZID=Europe/Stockholm:20261201T100000\r\n"
        "SUMMARY:Planning #mobile\r\nX-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    config = tmp_path / "calref.yaml"
    config.write_text(
        "timezone: Europe/Stockholm\n"
        "organization: {domains: [example.se]}\n"
        "users:\n"
        "  - {id: anna, name: Anna, email: anna@example.se, extension: '2001',\n"
        "     profiles: [{id: ext, name: Extension}, {id: mobile, name: Mobile, tags: [mobile]}],\n"
        "     calendars: [{kind: ics, path: anna.ics}]}\n",
        encoding="utf-8",
    )
    done = calref(
        "explain",
        "-c",
        str(config),
        "--user",
        "anna",
        "--event",
        "m1",
        "--from",
        "2026-11-30",
        "--to",
        "2026-12-07",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "busy" in out
    assert "free" in out  # an earlier rule, and why it did not match
    assert "#mobile" in out
    unknown = calref(
        "explain",
        "-c",
        str(config),
        "--user",
        "anna",
        "--event",
        "nope",
        "--from",
        "2026-11-30",
        "--to",
        "2026-12-07",
    )
    assert unknown.returncode == 2
    assert "no event with UID 'nope'" in unknown.stderr
