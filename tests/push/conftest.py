"""Fixtures of the push tests: FakeGraph on respx (loopback passes through) and a push stack.

``fake`` also answers ``DELETE /subscriptions/{id}``. ``validating`` makes FakeGraph
validate the notification URLs on ``POST /subscriptions`` as Graph does (see
``push_support.validate_like_graph``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx
from push_support import (
    CLIENT_STATE,
    GRAPH_SECRET_ENV,
    STATE_ENV,
    PushFakeGraph,
    Stack,
    Validations,
    graph_stack,
    validate_like_graph,
)

from tests.connectors.graph_doubles import FakeGraph


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GRAPH_SECRET_ENV, "graph-app-secret")
    monkeypatch.setenv(STATE_ENV, CLIENT_STATE)


@pytest.fixture
def fake(env: None) -> Iterator[FakeGraph]:
    graph = PushFakeGraph()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        graph.mount(router)
        yield graph


@pytest.fixture
def stack(fake: FakeGraph, tmp_path: Path) -> Iterator[Stack]:
    running = graph_stack(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def validating(fake: FakeGraph, stack: Stack) -> Validations:
    return validate_like_graph(fake, stack)
