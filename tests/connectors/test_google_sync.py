"""Google connector sync behaviour at the HTTP level: paging, sync tokens, windows, errors.

The cases every source shares are in ``test_google_contract``; these check the
requests themselves (over canned answers): the query parameters of full and
incremental listings, rate-limit 403s, the library's own retries, and that no
message or log line carries a sync token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from gcal_doubles import (
    cancelled,
    error_body,
    event,
    events_page,
    make_source,
    ok,
    path,
    query,
    status,
)

from connectors.calendars.base import SyncWindow
from rules.errors import CalendarError, ThrottledError, is_retryable

WINDOW = SyncWindow(
    datetime(2026, 1, 5, 7, 30, tzinfo=UTC), datetime(2026, 1, 12, 7, 30, tzinfo=UTC)
)
LATER_SAME_DAY = SyncWindow(
    datetime(2026, 1, 5, 9, 0, tzinfo=UTC), datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
)
NEXT_DAY = SyncWindow(
    datetime(2026, 1, 6, 0, 5, tzinfo=UTC), datetime(2026, 1, 13, 0, 5, tzinfo=UTC)
)

E1 = event("ev1", "2026-01-05T10:00:00+01:00", "2026-01-05T11:00:00+01:00", summary="Standup")
E2 = event("ev2", "2026-01-07T13:00:00+01:00", "2026-01-07T15:00:00+01:00", summary="Review")


def first_sync(extra: list | None = None):  # type: ignore[no-untyped-def]
    responses = [
        ok(events_page([E1], next_page="page-2")),
        ok(events_page([E2], next_sync="sync-token-1")),
        *(extra or []),
    ]
    source, http, sleeps = make_source(responses)
    result = source.sync(WINDOW, None)
    return source, http, sleeps, result


def test_initial_sync_follows_page_tokens_and_lists_the_whole_window() -> None:
    source, http, _, result = first_sync()
    assert result.full is True
    assert [e.key for e in result.events] == ["ev1", "ev2"]
    assert path(http, 0) == "/calendar/v3/calendars/primary/events"
    first, second = query(http, 0), query(http, 1)
    assert first["singleEvents"] == ["true"]
    assert first["timeMin"] == ["2026-01-05T00:00:00Z"]
    assert first["timeMax"] == ["2026-01-13T00:00:00Z"]
    assert "pageToken" not in first
    assert second["pageToken"] == ["page-2"]
    assert second["timeMin"] == first["timeMin"]
    assert source.id == "google:alice@example.se"


def test_incremental_sync_sends_only_the_sync_token_and_reports_changes_and_deletions() -> None:
    moved = dict(E2, start={"dateTime": "2026-01-08T13:00:00+01:00"})
    moved["end"] = {"dateTime": "2026-01-08T14:00:00+01:00"}
    source, http, _, first = first_sync(
        [ok(events_page([moved, cancelled("ev1")], next_sync="sync-token-2"))]
    )
    result = source.sync(LATER_SAME_DAY, first.state)
    assert result.full is False
    assert [e.key for e in result.events] == ["ev2"]
    assert result.events[0].start == datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    assert result.removed == ["ev1"]
    params = query(http, 2)
    assert params["syncToken"] == ["sync-token-1"]
    assert params["singleEvents"] == ["true"]
    for forbidden in ("timeMin", "timeMax", "orderBy", "q", "updatedMin", "iCalUID"):
        assert forbidden not in params
    assert json.loads(result.state or "{}")["sync_token"] == "sync-token-2"


def test_incremental_sync_pages_with_the_same_sync_token() -> None:
    source, http, _, first = first_sync(
        [
            ok(events_page([], next_page="delta-page-2")),
            ok(events_page([cancelled("ev2")], next_sync="sync-token-2")),
        ]
    )
    result = source.sync(WINDOW, first.state)
    assert result.removed == ["ev2"]
    assert query(http, 3)["syncToken"] == ["sync-token-1"]
    assert query(http, 3)["pageToken"] == ["delta-page-2"]


def test_changes_outside_the_window_are_dropped_and_events_leaving_it_are_removed() -> None:
    far = event("ev9", "2026-03-01T10:00:00+01:00", "2026-03-01T11:00:00+01:00")
    left = dict(E1, start={"dateTime": "2026-02-01T10:00:00+01:00"})
    left["end"] = {"dateTime": "2026-02-01T11:00:00+01:00"}
    source, _, _, first = first_sync([ok(events_page([far, left], next_sync="sync-token-2"))])
    result = source.sync(WINDOW, first.state)
    assert result.events == []
    assert sorted(result.removed) == ["ev1", "ev9"]


def test_window_moved_to_another_day_does_a_full_window_sync() -> None:
    source, http, _, first = first_sync([ok(events_page([E2], next_sync="sync-token-2"))])
    result = source.sync(NEXT_DAY, first.state)
    assert result.full is True
    assert query(http, 2)["timeMin"] == ["2026-01-06T00:00:00Z"]
    assert "syncToken" not in query(http, 2)


def test_rate_limit_403_is_retried_with_exponential_backoff_without_retry_after() -> None:
    limited = status(403, error_body(403, "userRateLimitExceeded", "User Rate Limit Exceeded"))
    source, _, sleeps = make_source(
        [limited, limited, ok(events_page([E1], next_sync="t"))], library_retries=0
    )
    source.sync(WINDOW, None)
    assert sleeps == [1.0, 2.0]


def test_a_retry_after_longer_than_the_cap_is_not_waited_for() -> None:
    throttled = status(
        429, error_body(429, "rateLimitExceeded", "Rate Limit Exceeded"), **{"retry-after": "3600"}
    )
    source, _, sleeps = make_source([throttled], library_retries=0, max_retry_wait=60)
    with pytest.raises(ThrottledError) as caught:
        source.sync(WINDOW, None)
    assert caught.value.retry_after == 3600.0
    assert sleeps == []


def test_library_retries_server_errors_with_the_injected_sleep() -> None:
    unavailable = status(503, error_body(503, "backendError", "Backend Error"))
    source, http, sleeps = make_source(
        [unavailable, ok(events_page([E1], next_sync="t"))], library_retries=2
    )
    source.sync(WINDOW, None)
    assert len(http.request_sequence) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 2  # rand() * 2**1


def test_forbidden_without_rate_limit_reason_is_a_permanent_error_naming_delegation() -> None:
    denied = status(403, error_body(403, "forbidden", "Not Authorized to access this resource"))
    source, http, sleeps = make_source([denied], library_retries=0)
    with pytest.raises(CalendarError) as caught:
        source.sync(WINDOW, None)
    assert not isinstance(caught.value, ThrottledError)
    assert not is_retryable(caught.value)
    assert "domain-wide delegation" in str(caught.value)
    assert sleeps == [] and len(http.request_sequence) == 1


def test_missing_calendar_is_reported_by_name() -> None:
    source, _, _ = make_source(
        [status(404, error_body(404, "notFound", "Not Found"))], calendar_id="team@example.se"
    )
    with pytest.raises(CalendarError, match=r"google:alice@example.se/team@example.se: calendar"):
        source.sync(WINDOW, None)


def test_error_messages_never_contain_the_sync_token() -> None:
    source, _, _, first = first_sync(
        [status(500, error_body(500, "backendError", "Backend Error"))]
    )
    source.client._library_retries = 0
    with pytest.raises(CalendarError) as caught:
        source.sync(WINDOW, first.state)
    assert is_retryable(caught.value)
    assert "sync-token-1" not in str(caught.value)


def test_a_malformed_event_time_is_a_calendar_error_naming_the_event() -> None:
    bad = event("evX", "yesterday-ish", "2026-01-05T11:00:00+01:00")
    source, _, _ = make_source([ok(events_page([bad], next_sync="t"))])
    with pytest.raises(CalendarError, match=r"event evX: start is not an RFC 3339"):
        source.sync(WINDOW, None)


def test_library_retry_warnings_do_not_log_the_sync_token(caplog: pytest.LogCaptureFixture) -> None:
    unavailable = status(503, error_body(503, "backendError", "Backend Error"))
    source, _, _, first = first_sync([unavailable, ok(events_page([], next_sync="t2"))])
    source.client._library_retries = 1
    with caplog.at_level("WARNING", logger="googleapiclient.http"):
        source.sync(WINDOW, first.state)
    assert "Sleeping" in caplog.text
    assert "sync-token-1" not in caplog.text
    assert "syncToken=***" in caplog.text
