"""National clouds: the token is asked for the Graph host the calls go to, and pairs must match.

At the HTTP level: MSAL runs for real over the connector's httpx client and the
double answers as Entra ID does, refusing a ``.default`` scope that names another
cloud's Graph (AADSTS500011 ``invalid_resource``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import respx
from graph_doubles import FakeGraph, event_json
from graph_fixture import BOX, connection, graph_source
from pydantic import ValidationError

from connectors.calendars.base import SyncWindow
from connectors.calendars.graph.clouds import graph_scope
from connectors.calendars.graph.source import GraphCalendarSource
from rules.errors import CalendarError

WINDOW = SyncWindow(datetime(2024, 5, 6, tzinfo=UTC), datetime(2024, 5, 20, tzinfo=UTC))
CLOUDS = {
    "us-gov-l4": ("https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0"),
    "us-gov-l5-dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us/v1.0"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0"),
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0"),
}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def cloud_source(monkeypatch: pytest.MonkeyPatch, login: str, graph: str) -> GraphCalendarSource:
    return graph_source(monkeypatch, authority_host=login, graph_url=graph)


@pytest.mark.parametrize("cloud", list(CLOUDS), ids=list(CLOUDS))
def test_token_request_names_the_clouds_graph_host_and_calls_go_there(
    cloud: str, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    login, graph = CLOUDS[cloud]
    fake = FakeGraph(login=login, graph=graph)
    fake.mount(router)
    fake.put(BOX, event_json("AAMkA="))
    result = cloud_source(monkeypatch, login, graph).sync(WINDOW, None)
    host = graph.split("/")[2]
    assert fake.token_scopes == [f"https://{host}/.default"]
    assert [e.key for e in result.events] == ["AAMkA="]
    assert {r.url.host for r in fake.graph_requests} == {host}


def test_a_global_scope_in_a_national_cloud_is_refused_by_the_sign_in_double(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the old hard-coded scope did: the double must refuse it, or the test above is void."""
    login, graph = CLOUDS["us-gov-l4"]
    fake = FakeGraph(login=login, graph=graph)
    fake.mount(router)
    source = cloud_source(monkeypatch, login, graph)
    source.client.scope = "https://graph.microsoft.com/.default"
    with pytest.raises(CalendarError, match="invalid_resource: AADSTS500011"):
        source.sync(WINDOW, None)
    assert fake.graph_requests == []


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
        ("https://dod-graph.microsoft.us/beta/", "https://dod-graph.microsoft.us/.default"),
        (
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        ("https://Graph.Example.net:8443/v1.0", "https://graph.example.net:8443/.default"),
    ],
)
def test_scope_is_the_graph_origin_plus_default(url: str, scope: str) -> None:
    assert graph_scope(url) == scope


@pytest.mark.parametrize(
    ("login", "graph", "expected"),
    [
        (
            "https://login.microsoftonline.com",
            "https://graph.microsoft.us/v1.0",
            "microsoftonline.us",
        ),
        (
            "https://login.microsoftonline.us",
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "login.chinacloudapi.cn",
        ),
        (
            "https://login.chinacloudapi.cn",
            "https://graph.microsoft.com/v1.0",
            "microsoftonline.com",
        ),
        (
            "https://login.microsoftonline.us",
            "https://graph.microsoft.com/v1.0",
            "microsoftonline.com",
        ),
    ],
)
def test_sign_in_and_graph_of_different_clouds_are_refused(
    login: str, graph: str, expected: str
) -> None:
    with pytest.raises(ValidationError, match=f"another cloud.*{expected}"):
        connection(authority_host=login, graph_url=graph)


@pytest.mark.parametrize(
    ("login", "graph"),
    [
        ("http://login.microsoftonline.us", "https://graph.microsoft.us/v1.0"),
        ("https://login.microsoftonline.us", "http://graph.microsoft.us/v1.0"),
        ("https://login.microsoftonline.us", "graph.microsoft.us"),
        ("https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0?x=1"),
    ],
)
def test_non_https_hosts_are_refused(login: str, graph: str) -> None:
    with pytest.raises(ValidationError, match="https://"):
        connection(authority_host=login, graph_url=graph)


def test_unknown_hosts_such_as_a_proxy_are_accepted() -> None:
    proxied = connection(
        authority_host="https://login.proxy.example.se",
        graph_url="https://graph.proxy.example.se/v1.0",
    )
    assert graph_scope(proxied.graph_url) == "https://graph.proxy.example.se/.default"
