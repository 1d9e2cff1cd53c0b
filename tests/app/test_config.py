"""The config file: valid files load; every problem is reported with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import ConfigError
from rules.rulefile import default_rules_text
from sync.config import load_config

VALID = """\
timezone: Europe/Stockholm
organization:
  domains: [example.se]
users:
  - id: alice
    name: Alice Andersson
    email: alice@example.se
    extension: "1234"
    profiles:
      - {id: ext, name: Extension, tags: [ext, desk]}
      - {id: mobile, name: Mobile, number: "0701234567", tags: [Mobile, mobil]}
    calendars:
      - {kind: ics, path: alice.ics}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calref.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return str(caught.value)


def test_a_valid_config_builds_users_with_lower_case_profile_tags(tmp_path: Path) -> None:
    app = load_config(write(tmp_path, VALID))
    alice = app.user("alice")
    assert alice.extension == "1234"
    assert [p.id for p in alice.profiles] == ["ext", "mobile"]
    assert alice.profile("mobile") is not None
    assert alice.profile("mobile").tags == ("mobile", "mobil")  # type: ignore[union-attr]
    assert app.timezone.key == "Europe/Stockholm"
    assert app.org_domains == ("example.se",)
    assert [r.name for r in app.rules.rules][:2] == ["cancelled", "declined"]


def test_every_problem_is_reported_at_once_with_line_and_column(tmp_path: Path) -> None:
    text = VALID.replace('extension: "1234"', 'extension: "12a4"').replace(
        "timezone: Europe/Stockholm", "timezone: Europe/Stockholm\nstore: 5\nbogus: 1"
    )
    message = problems(tmp_path, text)
    lines = message.splitlines()
    assert any(
        line.startswith(f"{tmp_path / 'calref.yaml'}:3:") and "bogus" in line for line in lines
    )
    assert any(":10:16:" in line and "extension" in line and "12a4" in line for line in lines)
    assert any(":2:8:" in line and "store" in line for line in lines)
    assert len(lines) >= 2


def test_unknown_time_zone_is_named(tmp_path: Path) -> None:
    message = problems(tmp_path, VALID.replace("Europe/Stockholm", "Europe/Stokholm"))
    assert "calref.yaml:1:" in message
    assert "unknown time zone 'Europe/Stokholm'" in message


def test_duplicate_user_and_profile_tag_are_reported(tmp_path: Path) -> None:
    second = VALID.split("users:\n", 1)[1]
    text = VALID + second.replace("[Mobile, mobil]", "[mobile, ext]")
    message = problems(tmp_path, text)
    assert "user id 'alice' is used twice" in message
    assert "tag 'ext' names two profiles" in message


def test_unknown_calendar_kind_and_missing_connection_block(tmp_path: Path) -> None:
    text = VALID.replace(
        "- {kind: ics, path: alice.ics}",
        "- {kind: outlook}\n      - {kind: graph}",
    )
    message = problems(tmp_path, text)
    assert "unknown calendar kind 'outlook'" in message
    assert "calendar kind 'graph' needs a 'connections: {graph: ...}' block" in message


def test_connection_blocks_are_validated_where_they_stand(tmp_path: Path) -> None:
    text = VALID.replace(
        "users:",
        "connections:\n  graph:\n    tenant_id: contoso.onmicrosoft.com\n"
        "    client_secret: hunter2\nusers:",
    ).replace("- {kind: ics, path: alice.ics}", "- {kind: graph}")
    message = problems(tmp_path, text)
    assert "client_secret" in message
    assert "calref.yaml:7:" in message or "calref.yaml:5:" in message
    assert "hunter2" not in message


def test_an_ics_calendar_needs_a_path_or_a_url(tmp_path: Path) -> None:
    message = problems(tmp_path, VALID.replace("{kind: ics, path: alice.ics}", "{kind: ics}"))
    assert "needs exactly one of 'path', 'url', 'url_env', 'url_file'" in message


def test_unreadable_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert "missing.yaml: cannot read" in str(caught.value)


def test_a_bad_rule_file_is_reported_with_its_own_place(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - name: x\n    when: {show_as: [bsy]}\n    skip: x\n"
    )
    text = VALID.replace("users:", "rules: rules.yaml\nusers:")
    with pytest.raises(Exception) as caught:
        load_config(write(tmp_path, text))
    assert "rules.yaml:4:" in str(caught.value)
    assert "bsy" in str(caught.value)


def test_the_deploy_example_config_is_valid_and_holds_no_secrets(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "calref.example.yaml"
    text = example.read_text(encoding="utf-8")
    # It names a rules.yaml beside it; check it with the default rules written there.
    (tmp_path / "rules.yaml").write_text(default_rules_text(), encoding="utf-8")
    app = load_config(write(tmp_path, text))
    assert [u.id for u in app.users] == ["alice", "bob"]
    assert app.policy.denied_prefixes == ("0900", "0939", "0944", "099")
    for key in ("secret:", "password:", "token:"):
        assert key not in text
