"""The ICS calendar entry model and ``build_source``: files relative to the config, secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.calendars.base import KEY_PROBLEM, Mailbox
from connectors.calendars.ics import build_source
from connectors.calendars.ics.config import IcsCalendarConfig, IcsConnectionConfig
from connectors.calendars.ics.source import IcsFileSource, IcsUrlSource
from rules.errors import ConfigError

ANNA = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")


def build(entry: dict[str, Any], base_dir: Path | None = None) -> IcsFileSource | IcsUrlSource:
    calendar = IcsCalendarConfig.model_validate(entry)
    return build_source(IcsConnectionConfig(), calendar, ANNA, base_dir=base_dir)


def test_a_file_source_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    source = build({"kind": "ics", "path": "anna.ics"}, tmp_path)
    assert isinstance(source, IcsFileSource) and source.path == tmp_path / "anna.ics"


def test_a_secret_url_is_read_from_a_file_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "anna.url").write_text("https://cal.example.se/feed?key=abc123\n")
    source = build({"kind": "ics", "url_file": "anna.url"}, tmp_path)
    assert isinstance(source, IcsUrlSource) and source.id == "https://cal.example.se/feed?key=***"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"kind": "ics", "url_env": "CALREF_TEST_UNSET_VAR"}, "CALREF_TEST_UNSET_VAR is not set"),
        ({"kind": "ics", "url_file": "no-such.url"}, "cannot read secret file"),
    ],
)
def test_a_secret_that_cannot_be_read_is_a_config_error_naming_the_entry(
    entry: dict[str, Any], problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALREF_TEST_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError) as caught:
        build(entry, tmp_path)
    assert problem in str(caught.value)
    assert str(caught.value).startswith("calendar entry of user 'anna': ")


def test_a_secret_url_calref_cannot_fetch_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALREF_TEST_ICS_URL", "ftp://files.example.se/a.ics")
    with pytest.raises(ConfigError, match="only http:// and https://"):
        build({"kind": "ics", "url_env": "CALREF_TEST_ICS_URL"})


@pytest.mark.parametrize(
    ("entry", "loc", "problem"),
    [
        ({"kind": "ics"}, (), "an ics calendar needs exactly one of 'path', 'url'"),
        ({"kind": "ics", "path": "a.ics", "url": "https://x"}, (), "needs exactly one of"),
        ({"kind": "ics", "path": "a.ics", "timeout": 3}, ("timeout",), "only applies to url"),
        ({"kind": "ics", "url": "https://x", "colour": "red"}, ("colour",), "unknown key 'colour'"),
        (
            {"kind": "ics", "url": "https://x", "timeout": "soon"},
            ("timeout",),
            "must be a non-negative number, got 'soon'",
        ),
        ({"kind": "ics", "url": "ftp://x/a.ics"}, ("url",), "must be an https://, http:// or"),
        ({"kind": "ics", "url": "https://x", "username": "a"}, ("username",), "needs password_"),
        ({"kind": "ics", "path": ""}, ("path",), "must be a non-empty string, got ''"),
    ],
)
def test_an_entry_is_refused_with_each_problem_at_its_key(
    entry: dict[str, Any], loc: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        IcsCalendarConfig.model_validate(entry)
    found = {(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()}
    assert any(where == loc and problem in message for where, message in found), found


def test_every_problem_of_an_entry_is_reported_at_once() -> None:
    entry = {"kind": "ics", "path": "a.ics", "colour": "red", "max_bytes": -1}
    with pytest.raises(ValidationError) as caught:
        IcsCalendarConfig.model_validate(entry)
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("colour",), KEY_PROBLEM),  # placed at the key: the key is what is wrong
        (("max_bytes",), "value_error"),
        (("max_bytes",), "value_error"),
    ]
    assert [e["msg"] for e in errors][1:] == [
        "only applies to url calendars",
        "must be a non-negative number, got -1",
    ]


def test_ics_takes_no_connection_block() -> None:
    assert IcsConnectionConfig.model_fields == {}
    with pytest.raises(ValidationError):
        IcsConnectionConfig.model_validate({"url": "https://x"})
