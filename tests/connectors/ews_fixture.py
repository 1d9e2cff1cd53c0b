"""Builds an EWS source wired to the SOAP double (no autodiscover, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock
from ews_doubles import ENDPOINT, EwsServer

from connectors.calendars.base import Mailbox
from connectors.calendars.ews.client import make_client
from connectors.calendars.ews.config import EwsConnectionConfig
from connectors.calendars.ews.source import EwsCalendarSource

ALICE = Mailbox(user_id="alice", email="alice@example.se", org_domains=("example.se",))


class Harness:
    def __init__(self, mocker: requests_mock.Mocker) -> None:
        self.server = EwsServer()
        self.sleeps: list[float] = []
        mocker.post(ENDPOINT, text=self.server)
        self.mocker = mocker
        self.endpoint = ENDPOINT

    def source(self, mailbox: Mailbox = ALICE, **connection: Any) -> Any:
        conn = EwsConnectionConfig(
            service_endpoint=ENDPOINT,
            username="EXAMPLE\\svc-calref",
            password_env="CALREF_TEST_EWS_PASSWORD",
            **connection,
        )
        client = make_client(conn, mailbox.email, mailbox.timezone, sleep=self.sleeps.append)
        return EwsCalendarSource(client, mailbox)


def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The body of each test module's ``ews`` fixture: a password in the env, a mocked endpoint."""
    monkeypatch.setenv("CALREF_TEST_EWS_PASSWORD", "s3cret-Pa55")
    with requests_mock.Mocker(real_http=False) as mocker:
        yield Harness(mocker)
