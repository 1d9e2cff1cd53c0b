"""The realistic calendar corpus through the real ``calref preview --json`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CALREF = Path(sys.executable).parent / "calref"

CONFIG = """\
timezone: Europe/Stockholm
organization: {{domains: [example.se]}}
users:
  - id: outlook
    name: Anna Berg
    email: anna.berg@example.se
    extension: "2001"
    profiles:
      - {{id: ext, name: Extension, tags: [ext]}}
      - {{id: mobile, name: Mobile, number: "0701234567", tags: [mobile, mobil]}}
    calendars: [{{kind: ics, path: {corpus}/outlook_exchange.ics}}]
  - id: google
    name: Anna Berg
    email: anna.berg@example.se
    extension: "2002"
    calendars: [{{kind: ics, path: {corpus}/google_export.ics}}]
  - id: icloud
    name: Anna Berg
    email: anna.berg@example.se
    extension: "2003"
    calendars: [{{kind: ics, path: {corpus}/icloud.ics}}]
  - id: broken
    name: Bo Brusten
    email: bo@example.se
    extension: "2004"
    calendars:
      - {{kind: ics, path: {corpus}/malformed_truncated.ics}}
      - {{kind: ics, path: {corpus}/outlook_exchange.ics}}
  - id: halfbroken
    name: Hilda Halv
    email: anna.berg@example.se
    extension: "2005"
    calendars: [{{kind: ics, path: {corpus}/broken_event.ics}}]
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "calref.yaml"
    path.write_text(CONFIG.format(corpus=CORPUS), encoding="utf-8")
    return path


def calref(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CALREF), *args], capture_output=True, text=True, timeout=120, check=False
    )


def preview(config: Path, user: str, start: str, end: str) -> dict[str, Any]:
    done = calref(
        "preview", "-c", str(config), "--user", user, "--from", start, "--to", end, "--json"
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def referral_times(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["start"], r["end"], r["reason"]) for r in doc["referrals"]]


def test_outlook_week_out_of_office_closes_the_phone_for_whole_local_days(config: Path) -> None:
    doc = preview(config, "outlook", "2026-11-23", "2026-11-30")
    assert doc["timezone"] == "Europe/Stockholm"
    assert doc["from"] == "2026-11-23T00:00:00+01:00"
    assert referral_times(doc) == [
        ("2026-11-23T00:00:00+01:00", "2026-11-28T00:00:00+01:00", "out_of_office")
    ]
    referral = doc["referrals"][0]
    assert referral["message"] == "Semester"
    assert referral["start_action"] == {"type": "close"}
    assert referral["end_action"] == {"type": "follow_profile"}
    # The private appointment and the external meeting inside the absence are part of it.
    assert len(referral["events"]) == 3
    assert [(a["at"], a["action"]) for a in doc["actions"]] == [
        ("2026-11-23T00:00:00+01:00", {"type": "close"}),
        ("2026-11-28T00:00:00+01:00", {"type": "follow_profile"}),
    ]


def test_an_external_organizer_cannot_switch_the_profile(config: Path) -> None:
    doc = preview(config, "outlook", "2026-11-23", "2026-11-30")
    assert [(r["tag"], r["why"]) for r in doc["refused"]] == [("#mobil", "external organizer")]


def test_a_private_subject_never_reaches_the_output(config: Path) -> None:
    done = calref(
        "preview",
        "-c",
        str(config),
        "--user",
        "outlook",
        "--from",
        "2026-11-24",
        "--to",
        "2026-11-25",
        "--json",
    )
    assert done.returncode == 0
    assert "Läkarbesök" not in done.stdout


def test_a_meeting_across_the_spring_dst_switch_keeps_its_wall_clock_times(config: Path) -> None:
    doc = preview(config, "outlook", "2026-03-29", "2026-03-30")
    assert referral_times(doc) == [
        ("2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00", "meeting")
    ]


def test_google_export_series_exception_and_declined_invitation(config: Path) -> None:
    doc = preview(config, "google", "2026-03-30", "2026-04-06")
    assert referral_times(doc) == [
        ("2026-03-30T09:00:00+02:00", "2026-03-30T10:00:00+02:00", "meeting"),
        ("2026-04-02T10:00:00+02:00", "2026-04-02T10:30:00+02:00", "meeting"),  # open-ended 1:1
    ]
    assert [(i["event"], i["why"]) for i in doc["ignored"]] == [
        ("kickoff-q2-0a1b2c3d@google.com", "declined")
    ]
    # Soft referrals: nothing is sent to the switchboard.
    assert doc["actions"] == []


def test_google_moved_occurrence_and_exdate(config: Path) -> None:
    doc = preview(config, "google", "2026-04-06", "2026-04-20")
    starts = [r["start"] for r in doc["referrals"] if "Veckomöte" in r["message"]]
    # 6 April is excluded (Easter Monday); 13 April moved to 14 April 10:00.
    assert starts == ["2026-04-14T10:00:00+02:00"]


def test_icloud_job_across_the_autumn_switch_lasts_three_hours(config: Path) -> None:
    doc = preview(config, "icloud", "2026-10-24", "2026-10-27")
    night = doc["referrals"][0]
    assert (night["start"], night["end"]) == (
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T03:30:00+01:00",
    )
    # The all-day entries are shown as free (TRANSP:TRANSPARENT): ignored, not referred.
    assert {i["why"] for i in doc["ignored"]} == {"free"}


def test_a_malformed_calendar_names_the_file_and_the_others_still_preview(config: Path) -> None:
    done = calref(
        "preview", "-c", str(config), "--from", "2026-11-23", "--to", "2026-11-30", "--json"
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "malformed_truncated.ics" in done.stderr
    assert "line 12" in done.stderr
    docs = {d["user"]: d for d in json.loads(done.stdout)}
    assert set(docs) == {"outlook", "google", "icloud", "broken", "halfbroken"}
    # The broken user's other calendar is still read.
    assert referral_times(docs["broken"]) == referral_times(docs["outlook"])


def test_one_broken_event_is_skipped_with_a_warning_and_the_rest_still_refer(
    config: Path,
) -> None:
    done = calref(
        "preview",
        "-c",
        str(config),
        "--user",
        "halfbroken",
        "--from",
        "2026-11-30",
        "--to",
        "2026-12-07",
        "--json",
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "calendar warning" in line]
    assert len(warnings) == 2
    assert any("line 14" in w and "broken-date@example.se" in w for w in warnings)
    assert any("line 24" in w for w in warnings)
    doc = json.loads(done.stdout)
    assert [r["message"] for r in doc["referrals"]] == ["Morgonmöte", "Eftermiddagsmöte"]


HOSTILE = """\
timezone: Europe/Stockholm
organization: {{domains: [example.se]}}
calendar_limits: {{max_rule_steps: 100000, parse_seconds: 20}}
users:
  - id: hostile
    name: Hans Hostil
    email: hans@example.se
    extension: "2006"
    calendars:
      - {{kind: ics, path: {dir}/storm.ics}}
      - {{kind: ics, path: {dir}/duplicate.ics}}
"""
STORM = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:storm\r\n"
    "DTSTART:19000101T000000Z\r\nDURATION:PT1M\r\nRRULE:FREQ=MINUTELY\r\n"
    "SUMMARY:Sekret storm\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
DUPLICATE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
    "BEGIN:VEVENT\r\nUID:dup\r\nDTSTART:20261201T090000Z\r\nDTSTART:20261201T100000Z\r\n"
    "DTEND:20261201T110000Z\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:ok\r\nDTSTART:20261202T090000Z\r\nDTEND:20261202T100000Z\r\n"
    "SUMMARY:Planering\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.mark.timeout(120)
def test_a_hostile_calendar_fails_fast_by_its_bound_and_a_broken_event_is_only_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "storm.ics").write_text(STORM)
    (tmp_path / "duplicate.ics").write_text(DUPLICATE)
    config = tmp_path / "calref.yaml"
    config.write_text(HOSTILE.format(dir=tmp_path))
    done = calref(
        "preview", "-c", str(config), "--from", "2026-11-30", "--to", "2026-12-07", "--json"
    )
    assert "Traceback" not in done.stderr
    assert "storm.ics: line 8: an event's RRULE steps through about" in done.stderr
    assert "limit max_rule_steps" in done.stderr
    assert "Sekret" not in done.stderr  # the bound names the line, not the subject
    assert "line 4: event 'dup' skipped: DTSTART appears more than once" in done.stderr
    (doc,) = json.loads(done.stdout)
    assert [r["message"] for r in doc["referrals"]] == ["Planering"]
    checked = calref("check", "-c", str(config), "--connect")
    assert "Traceback" not in checked.stderr + checked.stdout
    assert "max_rule_steps" in checked.stderr + checked.stdout
