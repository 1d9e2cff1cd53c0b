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


# -- hostile files: never a traceback, always file:line:column -----------------------------


def only_problem(tmp_path: Path, data: str | bytes) -> str:
    """The single problem loading ``data`` as the config gives, as printed."""
    path = tmp_path / "calref.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1, str(caught.value)
    return str(caught.value).removeprefix(str(path))


def test_a_binary_config_names_the_line_and_column_of_the_first_bad_byte(tmp_path: Path) -> None:
    assert only_problem(tmp_path, b"timezone: UTC\nusers: \xff\xfe\x00") == (
        ":2:8: not UTF-8 text (byte 0xff)"
    )
    assert only_problem(tmp_path, "timezone: UTC".encode("utf-16")).startswith(":1:1: not UTF-8")
    assert only_problem(tmp_path, b"\x89PNG\r\n\x1a\n").startswith(":1:1: not UTF-8 text")


def test_characters_yaml_forbids_are_placed(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "timezone: UTC\nstore: a\x00b\n") == (
        ":2:9: YAML syntax: character U+0000 is not allowed in YAML"
    )


@pytest.mark.parametrize("depth", [65, 200, 400, 5000, 100_000])
def test_deep_nesting_is_refused_where_it_gets_too_deep(tmp_path: Path, depth: int) -> None:
    import time

    flow = "users: " + "[" * depth + "]" * depth + "\n"
    started = time.monotonic()
    assert only_problem(tmp_path, flow) == ":1:71: YAML syntax: nested deeper than 64 levels"
    # ruamel's scanner is quadratic in flow nesting (5000 levels: 8 s); the depth is found first
    assert time.monotonic() - started < 2
    block = "".join("  " * i + f"k{i}:\n" for i in range(depth if depth < 1000 else 1000))
    message = only_problem(tmp_path, block)
    assert message.startswith(":64:") or message.startswith(":65:"), message
    assert "nested deeper than 64 levels" in message


def test_nesting_within_the_limit_is_still_read(tmp_path: Path) -> None:
    # 64 levels are fine for the YAML reader; the config schema then names the wrong type
    message = problems(tmp_path, "users: " + "[" * 63 + "]" * 63 + "\n")
    assert "calref.yaml:1:9: users[0]: Input should be a valid dictionary" in message


def test_aliases_are_not_expanded_and_cycles_are_named(tmp_path: Path) -> None:
    import time

    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    started = time.monotonic()
    message = problems(tmp_path, "\n".join(bomb) + "\n")  # 10**12 values if expanded
    assert time.monotonic() - started < 5
    assert len(message.splitlines()) == 12  # an unknown key each: the aliases themselves are fine
    assert only_problem(tmp_path, "&u [*u]\n") == (
        ":1:1: YAML syntax: an alias refers to a value that contains it"
    )
    deep = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    assert only_problem(tmp_path, deep) == (
        ":1:4: YAML syntax: nested deeper than 64 levels (through an alias)"
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-02-30", "day is out of range for month"),
        ("!!int abc", "invalid literal for int()"),
        ("!!float abc", "could not convert string to float"),
        ("9" * 5000, "a number longer than 4300 digits"),
    ],
)
def test_values_yaml_cannot_build_are_placed(tmp_path: Path, value: str, why: str) -> None:
    message = only_problem(tmp_path, f"timezone: UTC\nstore: {value}\n")
    assert message.startswith(":2:8: YAML syntax: cannot read the value: "), message
    assert why in message


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert (
        only_problem(tmp_path, "- a\n- b\n") == ":1:1: a config file is a mapping of keys to values"
    )


def test_a_deep_rule_file_is_placed_in_the_rule_file(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nrules: " + "[" * 3000 + "]" * 3000)
    message = problems(tmp_path, VALID.replace("users:", "rules: rules.yaml\nusers:"))
    assert f"{tmp_path / 'rules.yaml'}:2:71: YAML syntax: nested deeper than 64 levels" in message


# -- every block validated strictly, every problem at once ----------------------------------

BAD_CALENDARS = """\
    calendars:
      - {kind: ics, path: alice.ics, colour: red}
      - {kind: ics, url: "ftp://files.example.se/alice.ics"}
      - {kind: ics, path: 5}
      - {kind: ics, url: "https://cal.example.se/a.ics", timeout: soon, username: [x]}
      - {kind: ics, path: a.ics, url: "https://cal.example.se/a.ics"}
      - {kind: caldav, url: 5, colour: red}
"""


def test_calendar_entries_are_validated_strictly_all_at_once(tmp_path: Path) -> None:
    text = VALID.replace("    calendars:\n      - {kind: ics, path: alice.ics}\n", BAD_CALENDARS)
    text = text.replace("users:", "connections:\n  caldav: {url: 'https://dav.example.se'}\nusers:")
    lines = problems(tmp_path, text).replace(str(tmp_path / "calref.yaml"), "").splitlines()
    assert lines == [
        ":15:38: users[0].calendars[0].colour: unknown key 'colour' (allowed: kind, max_bytes, "
        "max_redirects, password_env, password_file, path, timeout, url, url_env, url_file, "
        "username)",
        ":16:26: users[0].calendars[1].url: must be an https://, http:// or webcal:// URL with a "
        "host",
        ":17:27: users[0].calendars[2].path: must be a non-empty string, got 5",
        ":18:67: users[0].calendars[3].timeout: must be a non-negative number, got 'soon'",
        ":18:83: users[0].calendars[3].username: must be a non-empty string, got ['x']",
        ":18:83: users[0].calendars[3].username: needs password_env or password_file",
        ":19:9: users[0].calendars[4]: an ics calendar needs exactly one of 'path', 'url', "
        "'url_env', 'url_file'",
        ":20:29: users[0].calendars[5].url: Input should be a valid string",
        ":20:32: users[0].calendars[5].colour: unknown key 'colour'",
    ]


def test_connection_blocks_are_validated_once_even_unused(tmp_path: Path) -> None:
    text = VALID.replace(
        "users:",
        "connections:\n  caldav: {url: 'ftp://dav.example.se'}\n  outlook: {}\nusers:",
    )
    lines = problems(tmp_path, text).replace(str(tmp_path / "calref.yaml"), "").splitlines()
    assert lines == [
        ":5:17: connections.caldav.url: must be an http:// or https:// URL",
        ":6:3: connections.outlook: unknown connection 'outlook' (expected one of graph, ews, "
        "google, caldav)",
    ]


@pytest.mark.parametrize(
    ("store", "why"),
    [
        ("mysql://calref@db/calref", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://db/calref", "unsupported database 'postgresql+asyncpg'"),
        ("calref.db", "not a database URL"),
        ("''", "not a database URL"),
        ("mysql://calref:hunter2@db/calref", "unsupported database 'mysql'"),
        ("'0://'", "not a database URL"),
        ("'mssql+pyodbc://db/calref'", "unsupported database 'mssql+pyodbc'"),
    ],
)
def test_only_sqlite_and_postgresql_stores(tmp_path: Path, store: str, why: str) -> None:
    message = problems(tmp_path, f"store: {store}\n" + VALID)
    assert "calref.yaml:1:8: store: " in message
    assert why in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "store", ["sqlite:///calref.db", "sqlite:///:memory:", "postgresql+psycopg://u@db/calref"]
)
def test_supported_stores_load(tmp_path: Path, store: str) -> None:
    assert load_config(write(tmp_path, f"store: '{store}'\n" + VALID)).file.store == store


def test_switchboard_and_graph_urls_need_http_schemes(tmp_path: Path) -> None:
    text = VALID.replace(
        "users:",
        "switchboard: {kind: http, url: 'ftp://pbx.example.se'}\n"
        "connections:\n  graph: {tenant_id: t, client_id: c, client_secret_env: S,"
        " graph_url: 'http://graph.example.se/v1.0'}\nusers:",
    )
    lines = problems(tmp_path, text).replace(str(tmp_path / "calref.yaml"), "").splitlines()
    assert lines[0] == (
        ":4:32: switchboard.url: must be an https:// or http:// URL with a host, "
        "got 'ftp://pbx.example.se'"
    )
    assert lines[1] == (":6:72: connections.graph.graph_url: must be an https:// URL")


def test_check_store_reports_a_missing_or_unwritable_folder_without_creating_it(
    tmp_path: Path,
) -> None:
    import os

    missing = tmp_path / "no" / "such"
    text = f"store: 'sqlite:///{missing}/calref.db'\n" + VALID
    load_config(write(tmp_path, text))  # only check asks about the folder
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), check_store=True)
    assert f"calref.yaml:1:8: the store's folder {missing} does not exist" in str(caught.value)
    assert not (tmp_path / "no").exists()
    if os.geteuid() == 0:  # root may write anywhere a mode allows: use a folder none may write
        locked = Path("/proc/self")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    text = f"store: 'sqlite:///{locked}/calref.db'\n" + VALID
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), check_store=True)
    assert f"the store's folder {locked} cannot be written by this user" in str(caught.value)
    assert load_config(write(tmp_path, "store: sqlite:///calref.db\n" + VALID), check_store=True)


def test_config_and_rule_file_problems_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nrules: [\n")
    text = VALID.replace("users:", "rules: rules.yaml\nbogus: 1\nusers:")
    message = problems(tmp_path, text)
    assert "calref.yaml:5:1: bogus: unknown key 'bogus'" in message
    assert "rules.yaml:3:1: YAML syntax" in message


def test_a_calendar_that_cannot_be_set_up_fails_in_status_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from connectors.clock import VirtualClock
    from sync.cli.runtime import build_service
    from sync.cli.status import format_status, status_report

    monkeypatch.delenv("ALICE_SECRET_URL", raising=False)
    (tmp_path / "alice.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"
    )
    text = "store: sqlite:///calref.db\n" + VALID.replace(
        "      - {kind: ics, path: alice.ics}\n",
        "      - {kind: ics, url_env: ALICE_SECRET_URL}\n      - {kind: ics, path: alice.ics}\n",
    )
    app = load_config(write(tmp_path, text))
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    service = build_service(app, VirtualClock(now))
    try:
        service.start()
        report = status_report(service.store, now)
        shown = format_status(report, now)
    finally:
        service.store.close()
    sources = {s.id: s for s in report[0].sources}
    broken = sources["alice/calendars[0]"]
    assert broken.failures == 1 and broken.last_success is None
    assert "environment variable ALICE_SECRET_URL is not set" in (broken.last_error or "")
    assert sources[str(tmp_path / "alice.ics")].last_error is None
    assert (
        "source alice/calendars[0]: last success never; last error: alice/calendars[0]: " in shown
    )
    assert "calendar could not be set up" in shown


def test_a_binary_rule_file_is_placed_at_its_first_bad_byte(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_bytes(b"version: 1\nrules:\n  - \xc3\x28\n")
    message = problems(tmp_path, VALID.replace("users:", "rules: rules.yaml\nusers:"))
    assert message == f"{tmp_path / 'rules.yaml'}:3:5: not UTF-8 text (byte 0xc3)"


def test_an_ews_server_is_a_host_name_not_a_url(tmp_path: Path) -> None:
    text = VALID.replace(
        "users:",
        "connections:\n  ews: {server: 'ftp://mail.example.se', username: u, password_env: P}\n"
        "users:",
    )
    message = problems(tmp_path, text).replace(str(tmp_path / "calref.yaml"), "")
    assert message == (
        ":5:8: connections.ews: server must be a host name such as mail.example.se "
        "(no scheme or path)"
    )
