"""Graph calendarView delta at the HTTP level: paging, deletions, resync, throttling, auth.

The cases every source shares are in ``test_graph_contract``; these are Graph's
own: the requests and headers sent, ``@removed`` entries, the error codes that
mean "resync", 503/504 retries, partial items, sign-in and concurrency.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from graph_doubles import (
    ACCESS_TOKEN,
    GRAPH,
    LOGIN,
    TENANT,
    FakeGraph,
    event_json,
    graph_error,
    openid_configuration,
    removed_json,
)
from graph_fixture import BOX, SECRET, graph_source

from connectors.calendars.base import SyncWindow
from connectors.calendars.graph.source import GraphCalendarSource
from rules.errors import CalendarError, ThrottledError, is_retryable

WINDOW = SyncWindow(datetime(2024, 5, 6, tzinfo=UTC), datetime(2024, 5, 20, tzinfo=UTC))
DELTA_URL = f"{GRAPH}/users/{BOX}/calendarView/delta"


class Sleeps:
    """A virtual sleep: records what the client asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def fake(router: respx.MockRouter) -> FakeGraph:
    graph = FakeGraph()
    graph.mount(router)
    return graph


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_source(
    monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps, page_size: int = 2, **conn: Any
) -> GraphCalendarSource:
    return graph_source(monkeypatch, sleep=sleeps, page_size=page_size, **conn)


def mount_auth(router: respx.MockRouter) -> respx.Route:
    router.get(f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration").mock(
        return_value=httpx.Response(200, json=openid_configuration())
    )
    return router.post(f"{LOGIN}/{TENANT}/oauth2/v2.0/token").mock(
        return_value=httpx.Response(
            200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
        )
    )


def page(items: list[dict[str, Any]], *, next_token: str | None = None, delta: str | None = None):
    body: dict[str, Any] = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
        "value": items,
    }
    if next_token:
        body["@odata.nextLink"] = f"{DELTA_URL}?$skiptoken={next_token}"
    if delta:
        body["@odata.deltaLink"] = f"{DELTA_URL}?$deltatoken={delta}"
    return httpx.Response(200, json=body)


def test_initial_sync_follows_next_links_including_empty_pages_until_delta_link(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    route = router.get(url__startswith=DELTA_URL).mock(
        side_effect=[
            page([event_json("AAMkADNVxRAAA="), event_json("AAMkADVxSAAA=")], next_token="R0a"),
            page([], next_token="R0b"),
            page([event_json("AAMkADj1HuAAA=")], delta="R0usmcMDNGg0J1E"),
        ]
    )
    result = make_source(monkeypatch, sleeps).sync(WINDOW, None)

    assert result.full is True
    assert sorted(e.key for e in result.events) == [
        "AAMkADNVxRAAA=",
        "AAMkADVxSAAA=",
        "AAMkADj1HuAAA=",
    ]
    first = route.calls[0].request
    assert first.url.params["startDateTime"] == "2024-05-06T00:00:00Z"
    assert first.url.params["endDateTime"] == "2024-05-20T00:00:00Z"
    assert route.calls[1].request.url.params["$skiptoken"] == "R0a"
    assert route.calls[2].request.url.params["$skiptoken"] == "R0b"
    prefer = first.headers.get_list("Prefer")
    assert prefer == ["odata.maxpagesize=2", 'outlook.timezone="UTC"', 'IdType="ImmutableId"']
    assert first.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(result.state or "")["delta"].endswith("$deltatoken=R0usmcMDNGg0J1E")


def test_removed_ids_outside_the_window_and_out_of_window_upserts_are_removals(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    router.get(url__startswith=DELTA_URL).mock(
        side_effect=[
            page([event_json("AAMkIn=")], delta="d1"),
            page(
                [
                    removed_json("AAMkNeverSeen="),
                    event_json(
                        "AAMkIn=",
                        start="2024-06-30T08:00:00.0000000",
                        end="2024-06-30T09:00:00.0000000",
                    ),
                ],
                delta="d2",
            ),
        ]
    )
    source = make_source(monkeypatch, sleeps)
    state = source.sync(WINDOW, None).state
    result = source.sync(WINDOW, state)
    assert result.events == []
    assert result.removed == ["AAMkIn=", "AAMkNeverSeen="]


def test_same_id_twice_in_a_round_keeps_the_last_mention(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    router.get(url__startswith=DELTA_URL).mock(
        side_effect=[
            page([event_json("AAMkA=", subject="old")], next_token="p2"),
            page([removed_json("AAMkB="), event_json("AAMkA=", subject="new")], delta="d"),
        ]
    )
    result = make_source(monkeypatch, sleeps).sync(WINDOW, None)
    assert [(e.key, e.subject) for e in result.events] == [("AAMkA=", "new")]


@pytest.mark.parametrize(
    "error",
    [
        graph_error(410, "SyncStateNotFound", "The sync state generation was not found."),
        graph_error(400, "resyncRequired", "The delta token is no longer valid."),
        graph_error(400, "syncStateNotFound", "Sync state generation is not found."),
    ],
)
def test_rejected_delta_token_gives_complete_full_resync_without_duplicates(
    router: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: Sleeps,
    error: httpx.Response,
) -> None:
    mount_auth(router)
    events = [event_json("AAMkA="), event_json("AAMkB=")]
    router.get(url__startswith=DELTA_URL).mock(
        side_effect=[
            page(events, delta="old"),
            error,
            page(events[:1], next_token="s1"),
            page([*events[1:], event_json("AAMkC=")], delta="fresh"),
        ]
    )
    source = make_source(monkeypatch, sleeps)
    state = source.sync(WINDOW, None).state
    result = source.sync(WINDOW, state)
    assert result.full is True
    assert [e.key for e in result.events] == ["AAMkA=", "AAMkB=", "AAMkC="]
    assert json.loads(result.state or "")["delta"].endswith("$deltatoken=fresh")


def test_window_moved_to_another_day_reads_only_the_added_day_same_day_does_not(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.put(BOX, event_json("AAMkA="))
    source = make_source(monkeypatch, sleeps)
    state = source.sync(WINDOW, None).state
    same_day = SyncWindow(WINDOW.start.replace(hour=10), WINDOW.end - timedelta(hours=1))
    mark = len(fake.graph_requests)
    assert source.sync(same_day, state).full is False
    assert fake.calls(mark) == {"delta": 1}
    next_day = SyncWindow(datetime(2024, 5, 7, tzinfo=UTC), datetime(2024, 5, 21, tzinfo=UTC))
    mark = len(fake.graph_requests)
    moved = source.sync(next_day, state)
    assert moved.full is False  # the delta link is kept; only the added day is read
    assert fake.calls(mark) == {"delta": 1, "view": 1}
    view = fake.graph_requests[-1]
    assert view.url.path == f"/v1.0/users/{BOX}/calendarView"
    assert view.url.params["startDateTime"] == "2024-05-20T00:00:00Z"
    assert view.url.params["endDateTime"] == "2024-05-21T00:00:00Z"
    assert json.loads(moved.state or "")["covered"] == "2024-05-21T00:00:00+00:00"


def test_a_state_whose_delta_link_leaves_graph_falls_back_to_full_sync(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.put(BOX, event_json("AAMkA="))
    source = make_source(monkeypatch, sleeps)
    foreign = json.dumps(
        {
            "v": 1,
            "mailbox": BOX,
            "start": WINDOW.start.isoformat(),
            "end": WINDOW.end.isoformat(),
            "delta": "https://evil.example.net/steal?$deltatoken=1",
        }
    )
    assert source.sync(WINDOW, foreign).full is True
    assert all(r.url.host == "graph.microsoft.com" for r in fake.graph_requests)


def test_throttling_honours_retry_after_then_succeeds(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.put(BOX, event_json("AAMkA="))
    fake.throttle_next = [
        graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            **{"Retry-After": "7"},
        ),
        graph_error(503, "ServiceUnavailable", "Service unavailable", **{"Retry-After": "2"}),
        graph_error(504, "GatewayTimeout", "Gateway timeout"),
    ]
    result = make_source(monkeypatch, sleeps).sync(WINDOW, None)
    assert [e.key for e in result.events] == ["AAMkA="]
    assert sleeps.calls == [7.0, 2.0, 4.0]  # the 504 had no Retry-After: backoff 2**2


def test_retry_after_longer_than_allowed_wait_raises_at_once(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.throttle_next = [
        graph_error(429, "TooManyRequests", "slow down", **{"Retry-After": "900"})
    ]
    with pytest.raises(ThrottledError) as caught:
        make_source(monkeypatch, sleeps).sync(WINDOW, None)
    assert caught.value.retry_after == 900.0
    assert sleeps.calls == []


def test_updated_item_with_only_changed_properties_is_fetched_in_full(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.put(BOX, event_json("AAMkA=", subject="Full"))
    source = make_source(monkeypatch, sleeps)
    state = source.sync(WINDOW, None).state
    fake.put(BOX, dict(fake.events[BOX]["AAMkA="], subject="Renamed", showAs="oof"))
    # the delta round carries only the id and the changed subject
    fake.delta_items["AAMkA="] = {
        "@odata.type": "#microsoft.graph.event",
        "id": "AAMkA=",
        "subject": "Renamed",
    }
    result = source.sync(WINDOW, state)
    assert [(e.subject, e.show_as.value) for e in result.events] == [("Renamed", "oof")]
    fetch = fake.graph_requests[-1]
    assert fetch.url.path == f"/v1.0/users/{BOX}/events/AAMkA="
    assert "showAs" in fetch.url.params["$select"].split(",")


def test_partial_item_that_no_longer_exists_is_removed(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    router.get(url__startswith=DELTA_URL).mock(
        return_value=page([{"id": "AAMkGone=", "subject": "x"}], delta="d")
    )
    router.get(f"{GRAPH}/users/{BOX}/events/AAMkGone%3D", params={}).mock(
        return_value=graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
    )
    source = make_source(monkeypatch, sleeps)
    state = json.dumps(
        {
            "v": 1,
            "mailbox": BOX,
            "start": WINDOW.start.isoformat(),
            "end": WINDOW.end.isoformat(),
            "delta": f"{DELTA_URL}?$deltatoken=x",
        }
    )
    result = source.sync(WINDOW, state)
    assert (result.full, result.events, result.removed) == (False, [], ["AAMkGone="])


def test_one_broken_event_is_skipped_with_a_warning(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    bad = event_json("AAMkBad=", start="yesterday-ish")
    router.get(url__startswith=DELTA_URL).mock(
        return_value=page([bad, event_json("AAMkOk=")], delta="d")
    )
    result = make_source(monkeypatch, sleeps).sync(WINDOW, None)
    assert [e.key for e in result.events] == ["AAMkOk="]
    assert len(result.warnings) == 1 and "not ISO 8601" in result.warnings[0]


def test_token_is_requested_once_and_reused_from_the_msal_cache(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.put(BOX, event_json("AAMkA="))
    source = make_source(monkeypatch, sleeps)
    state = source.sync(WINDOW, None).state
    for _ in range(3):
        state = source.sync(WINDOW, state).state
    assert fake.token_requests == 1
    assert len(fake.graph_requests) == 4


def test_refused_token_is_a_calendar_error_without_the_secret(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    token = mount_auth(router)
    token.mock(
        return_value=httpx.Response(
            401,
            json={
                "error": "invalid_client",
                "error_description": (
                    "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"
                ),
                "error_codes": [7000215],
            },
        )
    )
    with pytest.raises(CalendarError) as caught:
        make_source(monkeypatch, sleeps).sync(WINDOW, None)
    message = str(caught.value)
    assert message.startswith(f"graph:{BOX}: token request")
    assert "invalid_client" in message and "AADSTS7000215" in message
    assert SECRET not in message and "Trace ID" not in message
    sent = token.calls[0].request.content.decode()
    assert "client_secret=" in sent  # the secret went to the token endpoint only


def test_access_denied_names_the_permission_problem(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    router.get(url__startswith=DELTA_URL).mock(
        return_value=graph_error(403, "ErrorAccessDenied", "Access to OData is disabled.")
    )
    with pytest.raises(CalendarError) as caught:
        make_source(monkeypatch, sleeps).sync(WINDOW, None)
    assert "access denied (HTTP 403 ErrorAccessDenied" in str(caught.value)
    assert ACCESS_TOKEN not in str(caught.value)
    assert not is_retryable(caught.value)


def test_next_link_to_another_host_is_refused(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    mount_auth(router)
    router.get(url__startswith=DELTA_URL).mock(
        return_value=httpx.Response(
            200, json={"value": [], "@odata.nextLink": "https://attacker.example.net/x"}
        )
    )
    with pytest.raises(CalendarError, match="unexpected host"):
        make_source(monkeypatch, sleeps).sync(WINDOW, None)


def test_at_most_four_requests_in_flight_per_mailbox(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    fake.put(BOX, event_json("AAMkA="))
    source = make_source(monkeypatch, sleeps)
    cond = threading.Condition()
    state = {"now": 0, "peak": 0, "release": False}

    def hold(_: httpx.Request) -> None:
        with cond:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            cond.notify_all()
            cond.wait_for(lambda: bool(state["release"]), timeout=10)
            state["now"] -= 1

    fake.on_request = hold
    source.client.access_token(source.id)  # sign in before the threads start
    threads = [threading.Thread(target=source.sync, args=(WINDOW, None)) for _ in range(8)]
    for thread in threads:
        thread.start()
    with cond:
        assert cond.wait_for(lambda: state["now"] == 4, timeout=10)
        # give the other four threads a chance to get past the semaphore (they must not)
        assert not cond.wait_for(lambda: state["now"] > 4, timeout=0.3)
        state["release"] = True
        cond.notify_all()
    for thread in threads:
        thread.join(timeout=10)
    assert state["peak"] == 4
    assert len(fake.graph_requests) == 8
