"""Google Calendar API v3 responses shaped as the API reference shows, for the Google tests.

``events_page`` builds an ``Events`` list resource and ``event`` an ``Event``
resource (field names and value shapes as in the Calendar v3 reference and the
discovery document shipped with google-api-python-client). ``error_body``
builds the JSON error envelope Google sends (``error.code``, ``error.errors[]``
with ``domain``/``reason``/``message``, ``error.message``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from googleapiclient.http import HttpMockSequence

from connectors.calendars.base import Mailbox
from connectors.calendars.google.client import make_client
from connectors.calendars.google.config import GoogleCalendarConfig, GoogleConnectionConfig
from connectors.calendars.google.source import GoogleCalendarSource

ALICE = Mailbox(user_id="alice", email="alice@example.se", org_domains=("example.se",))


def event(
    event_id: str,
    start: str,
    end: str,
    *,
    summary: str = "Meeting",
    all_day: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    key = "date" if all_day else "dateTime"
    body: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": f'"{abs(hash(event_id)) % 10**15}"',
        "id": event_id,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": "2026-01-01T08:00:00.000Z",
        "updated": "2026-01-02T08:00:00.000Z",
        "summary": summary,
        "creator": {"email": "alice@example.se", "self": True},
        "organizer": {"email": "alice@example.se", "self": True},
        "start": {key: start} if all_day else {key: start, "timeZone": "Europe/Stockholm"},
        "end": {key: end} if all_day else {key: end, "timeZone": "Europe/Stockholm"},
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    body.update(extra)
    return body


def cancelled(event_id: str) -> dict[str, Any]:
    """A deletion as incremental sync returns it: only id and status are guaranteed."""
    return {"kind": "calendar#event", "etag": '"1"', "id": event_id, "status": "cancelled"}


def events_page(
    items: list[dict[str, Any]],
    *,
    next_page: str | None = None,
    next_sync: str | None = None,
) -> str:
    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": '"p32ofplf5q6gf20g"',
        "summary": "alice@example.se",
        "description": "",
        "updated": "2026-01-05T08:00:00.000Z",
        "timeZone": "Europe/Stockholm",
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": items,
    }
    if next_page:
        body["nextPageToken"] = next_page
    if next_sync:
        body["nextSyncToken"] = next_sync
    return json.dumps(body)


def error_body(code: int, reason: str, message: str, domain: str = "global") -> str:
    return json.dumps(
        {
            "error": {
                "errors": [{"domain": domain, "reason": reason, "message": message}],
                "code": code,
                "message": message,
            }
        }
    )


GONE = error_body(
    410,
    "fullSyncRequired",
    "Sync token is no longer valid, a full sync is required.",
    domain="calendar",
)


def ok(body: str) -> tuple[dict[str, str], str]:
    return ({"status": "200", "content-type": "application/json; charset=UTF-8"}, body)


def status(code: int, body: str, **headers: str) -> tuple[dict[str, str], str]:
    return ({"status": str(code), "content-type": "application/json", **headers}, body)


def make_source(
    responses: list[tuple[dict[str, str], str]],
    *,
    mailbox: Mailbox = ALICE,
    calendar_id: str = "primary",
    **connection: Any,
) -> tuple[Any, HttpMockSequence, list[float]]:
    """A Google source over ``HttpMockSequence``; returns (source, http, recorded sleeps)."""
    http = HttpMockSequence(list(responses))
    sleeps: list[float] = []
    conn = GoogleConnectionConfig(service_account_env="UNUSED_IN_TESTS", **connection)
    client = make_client(conn, mailbox.email, http=http, sleep=sleeps.append)
    source = GoogleCalendarSource(client, GoogleCalendarConfig(calendar_id=calendar_id), mailbox)
    return source, http, sleeps


def query(http: HttpMockSequence, index: int) -> dict[str, list[str]]:
    """The query parameters of the ``index``-th request the mock received."""
    return parse_qs(urlparse(http.request_sequence[index][0]).query)


def path(http: HttpMockSequence, index: int) -> str:
    return urlparse(http.request_sequence[index][0]).path
