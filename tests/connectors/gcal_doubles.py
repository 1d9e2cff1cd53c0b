"""Google Calendar API v3 responses shaped as the API reference shows, for the Google tests.

``events_page`` builds an ``Events`` list resource and ``event`` an ``Event``
resource (field names and value shapes as in the Calendar v3 reference and the
discovery document shipped with google-api-python-client); ``instance`` is one
instance of a recurring event as ``singleEvents=true`` lists it. ``error_body``
builds the JSON error envelope Google sends (``error.code``, ``error.errors[]``
with ``domain``/``reason``/``message``, ``error.message``).

``make_source`` runs a source over canned answers (``HttpMockSequence``);
``GoogleCalendarServer`` is a stateful ``events.list`` with sync tokens for
the contract tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httplib2
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


def instance(
    event_id: str, original: datetime, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """One instance of the recurring event ``event_id`` (see ``instance_id``)."""
    when = {"dateTime": local(original), "timeZone": "Europe/Stockholm"}
    return event(
        instance_id(event_id, original),
        start,
        end,
        recurringEventId=event_id,
        originalStartTime=when,
        iCalUID=f"{event_id}@google.com",
        **extra,
    )


def instance_id(event_id: str, original: datetime) -> str:
    """An instance's id: ``<event id>_<original start, basic format, UTC>``."""
    return f"{event_id}_{original.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def local(moment: datetime) -> str:
    """A ``dateTime`` as Google writes it: RFC 3339 in the calendar's time zone."""
    return moment.astimezone(ZoneInfo("Europe/Stockholm")).isoformat()


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


@dataclass
class GoogleCalendarServer:
    """A stateful ``events.list`` for one calendar, an ``httplib2.Http`` stand-in.

    It answers as the Calendar API documents (events/list, guides/sync):

    - ``singleEvents=true`` lists a recurring event as its instances (the
      double stores instances, see ``instance``);
    - a listing with ``timeMin``/``timeMax`` gives the events overlapping the
      range, ``maxResults`` a page with ``nextPageToken``; the last page
      carries ``nextSyncToken``; cancelled events are left out;
    - ``syncToken`` gives every event changed since the token, wherever it
      lies in time, a deleted event or cancelled instance as ``status:
      cancelled``; a token evicted by ``evict_tokens`` is a 410
      ``fullSyncRequired``;
    - ``answers`` are given first, one per request (throttling, errors).
    """

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: list[tuple[dict[str, str], str]] = field(default_factory=list)
    request_sequence: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    follow_redirects: bool = True
    _log: list[tuple[int, str]] = field(default_factory=list)  # (version, event id)
    _version: int = 0
    _issued: int = 0
    _evicted_below: int = 0

    def put(self, item: dict[str, Any]) -> None:
        self._version += 1
        self.events[item["id"]] = item
        self._log.append((self._version, item["id"]))

    def cancel(self, event_id: str) -> None:
        """Delete an event, or cancel one instance of a recurring event."""
        item = self.events[event_id]
        kept: dict[str, Any] = {
            k: item[k] for k in ("recurringEventId", "originalStartTime") if k in item
        }
        self.put({**cancelled(event_id), **kept})

    def evict_tokens(self) -> None:
        """Every sync token issued so far is no longer valid."""
        self._evicted_below = self._issued + 1

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        redirections: int = 1,
        connection_type: Any = None,
    ) -> tuple[httplib2.Response, bytes]:
        self.request_sequence.append((uri, method, body, headers))
        status, text = self.answers.pop(0) if self.answers else self._answer(uri)
        return httplib2.Response(status), text.encode()

    def _answer(self, uri: str) -> tuple[dict[str, str], str]:
        params = {name: values[0] for name, values in parse_qs(urlparse(uri).query).items()}
        if not urlparse(uri).path.endswith("/events") or params.get("singleEvents") != "true":
            return status(400, error_body(400, "badRequest", "not in the double"))
        if "syncToken" in params:
            if {"timeMin", "timeMax"} & set(params):
                return status(400, error_body(400, "invalid", "syncToken with timeMin/timeMax"))
            serial, _, since = params["syncToken"].partition("-")
            if int(serial) < self._evicted_below:
                return status(410, GONE)
            changed = dict.fromkeys(e for v, e in self._log if v > int(since))
            items = [self.events[e] for e in changed]
        else:
            start, end = (_moment(params[name]) for name in ("timeMin", "timeMax"))
            items = [
                item
                for item in sorted(self.events.values(), key=lambda e: e["start"]["dateTime"])
                if item.get("status") != "cancelled"
                and _moment(item["start"]["dateTime"]) < end
                and _moment(item["end"]["dateTime"]) > start
            ]
        offset = int(params.get("pageToken", "0"))
        size = int(params.get("maxResults", "250"))
        if offset + size < len(items):
            return ok(events_page(items[offset : offset + size], next_page=str(offset + size)))
        self._issued += 1
        token = f"{self._issued}-{self._version}"
        return ok(events_page(items[offset:], next_sync=token))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
