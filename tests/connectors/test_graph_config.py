"""The Graph connection and calendar config models, and where secrets come from."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from graph_doubles import CLIENT_ID, TENANT
from pydantic import ValidationError

from connectors.calendars.base import Mailbox
from connectors.calendars.graph import build_source
from connectors.calendars.graph.client import make_client
from connectors.calendars.graph.config import GraphCalendarConfig, GraphConnectionConfig
from rules.errors import CalrefError, ConfigError
from sync.config import load_config


def test_connection_rejects_unknown_keys_and_inline_secrets() -> None:
    with pytest.raises(ValidationError, match="client_secret"):
        GraphConnectionConfig(tenant_id=TENANT, client_id=CLIENT_ID, client_secret="inline!")


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"client_secret_env": "A", "certificate_key_env": "B", "certificate_thumbprint": "AB"},
        {"certificate_key_file": "/k.pem"},
    ],
)
def test_connection_needs_exactly_one_complete_credential(credential: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        GraphConnectionConfig(tenant_id=TENANT, client_id=CLIENT_ID, **credential)


def test_missing_secret_variable_is_named_without_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_GRAPH_SECRET", raising=False)
    connection = GraphConnectionConfig(
        tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="NO_SUCH_GRAPH_SECRET"
    )
    with pytest.raises(CalrefError, match="NO_SUCH_GRAPH_SECRET is not set"):
        make_client(connection)


def test_certificate_credential_is_read_from_a_file(tmp_path, monkeypatch) -> None:
    key = tmp_path / "graph.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    connection = GraphConnectionConfig(
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        certificate_key_file=str(key),
        certificate_thumbprint="A1B2C3",
    )
    client = make_client(connection, http=httpx.Client())
    assert client._credential == {
        "private_key": key.read_text().strip(),
        "thumbprint": "A1B2C3",
    }
    assert "PRIVATE KEY" not in repr(client.__dict__.get("http"))


def test_calendar_entry_mailbox_overrides_the_user_email(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_SECRET", "x")
    connection = GraphConnectionConfig(
        tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="GRAPH_SECRET"
    )
    mailbox = Mailbox("alice", "alice@example.se")
    assert build_source(connection, GraphCalendarConfig(), mailbox).id == "graph:alice@example.se"
    other = GraphCalendarConfig.model_validate({"kind": "graph", "mailbox": "Alice.A@Example.se"})
    assert build_source(connection, other, mailbox).id == "graph:alice.a@example.se"
    with pytest.raises(ValidationError):
        GraphCalendarConfig.model_validate({"kind": "graph", "calendar": "x"})


def test_sources_of_one_connection_share_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_SECRET", "x")
    connection = GraphConnectionConfig(
        tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="GRAPH_SECRET"
    )
    a = build_source(connection, GraphCalendarConfig(), Mailbox("a", "a@example.se"))
    b = build_source(connection, GraphCalendarConfig(), Mailbox("b", "b@example.se"))
    assert a.client is b.client  # type: ignore[attr-defined]


def test_a_cloud_mismatch_in_the_config_file_is_a_config_error_with_its_place(
    tmp_path: Path,
) -> None:
    path = tmp_path / "calref.yaml"
    path.write_text(
        "timezone: Europe/Stockholm\n"
        "connections:\n"
        "  graph:\n"
        f"    tenant_id: {TENANT}\n"
        f"    client_id: {CLIENT_ID}\n"
        "    client_secret_env: CALREF_GRAPH_SECRET\n"
        "    authority_host: https://login.microsoftonline.com\n"
        "    graph_url: https://graph.microsoft.us/v1.0\n"
        "users:\n"
        "  - id: alice\n"
        "    name: Alice Andersson\n"
        "    email: alice@example.se\n"
        '    extension: "1234"\n'
        "    calendars:\n"
        "      - {kind: graph}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "calref.yaml:3:" in message or "calref.yaml:4:" in message, message
    assert "another cloud" in message and "https://login.microsoftonline.us" in message
