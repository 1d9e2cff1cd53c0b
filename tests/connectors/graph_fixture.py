"""Builds a Graph source wired to ``FakeGraph`` (respx on the httpx transport, no network)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from graph_doubles import CLIENT_ID, TENANT, FakeGraph

from connectors.calendars.base import Mailbox
from connectors.calendars.graph.client import make_client
from connectors.calendars.graph.config import GraphCalendarConfig, GraphConnectionConfig
from connectors.calendars.graph.source import GraphCalendarSource

BOX = "alice@example.se"
ALICE = Mailbox("alice", BOX, ("example.se",))
SECRET_ENV = "GRAPH_SECRET"
SECRET = "very-secret-client-value"  # never in a message or log


def fake_graph() -> Iterator[FakeGraph]:
    """The body of each test module's ``fake`` fixture: a ``FakeGraph`` mounted with respx."""
    with respx.mock(assert_all_called=False) as router:
        graph = FakeGraph()
        graph.mount(router)
        yield graph


def connection(**settings: Any) -> GraphConnectionConfig:
    """The test tenant's app registration, its secret in ``SECRET_ENV``; ``settings`` added."""
    return GraphConnectionConfig(
        tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env=SECRET_ENV, **settings
    )


def graph_source(
    monkeypatch: pytest.MonkeyPatch,
    *,
    sleep: Callable[[float], None] = lambda _: None,
    **settings: Any,
) -> GraphCalendarSource:
    """Alice's Graph calendar source over ``connection(**settings)``; ``sleep`` returns at once."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    client = make_client(connection(**settings), http=httpx.Client(), sleep=sleep)
    return GraphCalendarSource(client, GraphCalendarConfig(), ALICE)
