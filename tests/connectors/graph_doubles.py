"""Test doubles for the Graph connector: the sign-in endpoints and a stateful calendarView delta.

``FakeGraph`` keeps one calendar per mailbox and answers with payloads shaped
as Microsoft's documentation shows them (``delta-query-events.md``,
``event.md``, ``errors.md``): pages with ``@odata.nextLink`` /
``@odata.deltaLink``, ``@removed`` entries, 410 ``syncStateNotFound`` for
evicted tokens, 429 with ``Retry-After``. Like the real service:

- a delta round only lists events overlapping the range its link was made
  for; a change to an event outside that range comes as ``@removed``;
- a series master is never listed by calendarView (only its occurrences and
  exceptions), and an occurrence in a delta round has the sparse shape
  ``@odata.type, @odata.etag, id, seriesMasterId, type, start, end``
  (microsoft-graph-docs issues #7632, #22197); plain ``calendarView`` and
  ``GET /events/{id}`` return full items, honouring ``$select``;
- an occurrence's ETag is its master's, and editing a series touches every
  occurrence (``edit_series``).

The sign-in and Graph hosts are configurable (national clouds); the token
endpoint answers a wrong ``.default`` scope as Entra ID does (AADSTS500011).
It is mounted with respx on the httpx transport, so the real httpx + MSAL code
paths run. ``calls()`` counts Graph calls by kind.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx
import respx

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-access-token.sig"


SPARSE_FIELDS = ("@odata.type", "@odata.etag", "id", "seriesMasterId", "type", "start", "end")


def openid_configuration(
    tenant: str = TENANT, login: str = LOGIN, graph_host: str = "graph.microsoft.com"
) -> dict[str, Any]:
    """The v2.0 OpenID configuration document (trimmed to what MSAL reads)."""
    return {
        "token_endpoint": f"{login}/{tenant}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{login}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{login}/{tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"https://{graph_host}/oidc/userinfo",
        "authorization_endpoint": f"{login}/{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{login}/{tenant}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{login}/{tenant}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid"],
        "kerberos_endpoint": f"{login}/{tenant}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": login.removeprefix("https://login."),
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": graph_host,
        "rbac_url": "https://pas.windows.net",
    }


def graph_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """An error in Graph's JSON error shape (concepts/errors.md)."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2024-05-06T07:08:09",
                "request-id": "9e2b5a3c-0000-4000-8000-000000000001",
                "client-request-id": "9e2b5a3c-0000-4000-8000-000000000002",
            },
        }
    }
    return httpx.Response(status, json=body, headers=headers)


def event_json(
    event_id: str,
    subject: str = "Meeting",
    start: str = "2024-05-06T08:00:00.0000000",
    end: str = "2024-05-06T09:00:00.0000000",
    **fields: Any,
) -> dict[str, Any]:
    """One event as calendarView delta returns it (event.md JSON representation)."""
    item: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": 'W/"EZ9r3czxY0m2jz8c45czkwAAFXcvIQ=="',
        "id": event_id,
        "createdDateTime": "2024-05-01T10:00:00.0000000Z",
        "lastModifiedDateTime": "2024-05-01T10:00:00.0000000Z",
        "changeKey": "EZ9r3czxY0m2jz8c45czkwAAFXcvIQ==",
        "categories": [],
        "originalStartTimeZone": "W. Europe Standard Time",
        "originalEndTimeZone": "W. Europe Standard Time",
        "iCalUId": f"040000008200E00074C5B7101A82E008{event_id}",
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "hasAttachments": False,
        "subject": subject,
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": True,
        "seriesMasterId": None,
        "showAs": "busy",
        "type": "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1",
        "onlineMeetingUrl": None,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "html", "content": ""},
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        "location": {"displayName": "", "locationType": "default"},
        "locations": [],
        "recurrence": None,
        "attendees": [],
        "organizer": {"emailAddress": {"name": "Alice Andersson", "address": "alice@example.se"}},
    }
    item.update(fields)
    return item


def series_json(
    master_id: str,
    subject: str = "Standup",
    first: datetime = datetime(2024, 5, 6, 8, 0),
    count: int = 14,
    length: timedelta = timedelta(minutes=15),
    **fields: Any,
) -> list[dict[str, Any]]:
    """A daily series: its master, then ``count`` occurrences (full items, as GET returns them).

    Occurrence ids are ``<master id without '='>_NNN=``; each shares the
    master's ETag and changeKey, as Exchange computes occurrences from the master.
    """

    def wall(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")

    master = event_json(
        master_id,
        subject,
        wall(first),
        wall(first + length),
        type="seriesMaster",
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": first.date().isoformat(),
                "numberOfOccurrences": count,
            },
        },
        **fields,
    )
    items = [master]
    for n in range(count):
        start = first + timedelta(days=n)
        occurrence = dict(
            master,
            id=f"{master_id.rstrip('=')}_{n:03d}=",
            type="occurrence",
            seriesMasterId=master_id,
            recurrence=None,
            originalStart=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            start={"dateTime": wall(start), "timeZone": "UTC"},
            end={"dateTime": wall(start + length), "timeZone": "UTC"},
        )
        items.append(occurrence)
    return items


def sparse(item: dict[str, Any]) -> dict[str, Any]:
    """An occurrence as calendarView delta sends it."""
    return {name: item[name] for name in SPARSE_FIELDS if name in item}


def removed_json(event_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


@dataclass
class FakeGraph:
    """A stateful calendarView delta for a few mailboxes, plus the sign-in endpoints."""

    page_size_default: int = 10
    login: str = LOGIN  # the sign-in host (authority_host)
    graph: str = GRAPH  # the Graph root (graph_url)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (version, mailbox, id)
    version: int = 0
    evicted_below: int = 0  # tokens with a serial below this are gone
    issued: int = 0
    # what a delta round sends for an id instead of the stored event (e.g. only changed fields)
    delta_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    sparse_exceptions: bool = False  # send exceptions in the sparse shape too
    _snapshots: dict[str, tuple[list[dict[str, Any]], tuple[str, str]]] = field(
        default_factory=dict
    )
    _ranges: dict[int, tuple[str, str]] = field(default_factory=dict)  # delta serial -> range
    token_requests: int = 0
    token_scopes: list[str] = field(default_factory=list)
    graph_requests: list[httpx.Request] = field(default_factory=list)
    graph_responses: list[httpx.Response] = field(default_factory=list)
    throttle_next: list[httpx.Response] = field(default_factory=list)
    on_request: Callable[[httpx.Request], None] | None = None
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- calendar edits -----------------------------------------------------

    def put(self, mailbox: str, item: dict[str, Any]) -> None:
        self.version += 1
        self.events.setdefault(mailbox, {})[item["id"]] = item
        self.log.append((self.version, mailbox, item["id"]))

    def put_all(self, mailbox: str, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.put(mailbox, item)

    def delete(self, mailbox: str, event_id: str) -> None:
        self.version += 1
        self.events.get(mailbox, {}).pop(event_id, None)
        self.log.append((self.version, mailbox, event_id))

    def edit_series(self, mailbox: str, master_id: str, **fields: Any) -> None:
        """Change a series: the master and every occurrence get the fields and a new ETag."""
        change_key = f"EZ9r3czxY0m2jz8c45czkwAAFX{self.version + 1:06d}=="
        stamp = {"changeKey": change_key, "@odata.etag": f'W/"{change_key}"', **fields}
        for item in list(self.events.get(mailbox, {}).values()):
            if item["id"] == master_id or (
                item.get("type") == "occurrence" and item.get("seriesMasterId") == master_id
            ):
                self.put(mailbox, dict(item, **stamp))

    def evict_tokens(self) -> None:
        """Every delta token issued so far is dropped from the server's cache."""
        self.evicted_below = self.issued + 1

    # -- counting -----------------------------------------------------------

    def calls(self, since: int = 0) -> Counter[str]:
        """Graph calls from request number ``since`` on, by kind (delta, view, get, ...)."""
        kinds: Counter[str] = Counter()
        for request in self.graph_requests[since:]:
            path = urlsplit(str(request.url)).path
            if path.endswith("/calendarView/delta"):
                kinds["delta"] += 1
            elif path.endswith("/calendarView"):
                kinds["view"] += 1
            elif "/events/" in path:
                kinds["get"] += 1
            elif "/subscriptions" in path:
                kinds["subscription"] += 1
            else:
                kinds["other"] += 1
        return kinds

    # -- wiring -------------------------------------------------------------

    @property
    def graph_host(self) -> str:
        return urlsplit(self.graph).netloc

    def mount(self, router: respx.MockRouter) -> None:
        router.get(f"{self.login}/{TENANT}/v2.0/.well-known/openid-configuration").mock(
            return_value=httpx.Response(
                200, json=openid_configuration(TENANT, self.login, self.graph_host)
            )
        )
        router.post(f"{self.login}/{TENANT}/oauth2/v2.0/token").mock(side_effect=self._token)
        router.route(host=self.graph_host).mock(side_effect=self.handle)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["client_credentials"]
        scope = form["scope"][0]
        self.token_scopes.append(scope)
        resource = scope.removesuffix("/.default")
        if scope != f"https://{self.graph_host}/.default":
            # Entra ID has no such resource in this cloud (AADSTS500011, invalid_resource)
            return httpx.Response(
                400,
                json={
                    "error": "invalid_resource",
                    "error_description": (
                        f"AADSTS500011: The resource principal named {resource} was not found "
                        f"in the tenant named {TENANT}. This can happen if the application has "
                        "not been installed by the administrator of the tenant.\r\n"
                        "Trace ID: 0000\r\nCorrelation ID: 0000\r\nTimestamp: 2024-05-06"
                    ),
                    "error_codes": [500011],
                    "error_uri": f"{self.login}/error?code=500011",
                },
            )
        return httpx.Response(
            200,
            json={
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": ACCESS_TOKEN,
            },
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.graph_requests.append(request)
        response = self._answer(request)
        self.graph_responses.append(response)
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if self.on_request is not None:
            self.on_request(request)
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        if self.throttle_next:
            return self.throttle_next.pop(0)
        path = unquote(urlsplit(str(request.url)).path)
        query = parse_qs(urlsplit(str(request.url)).query)
        parts = path.removeprefix(urlsplit(self.graph).path + "/").split("/")
        if parts[0] == "subscriptions":
            return self._subscriptions(request, parts)
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "calendarView":
            return self._view(request, parts[1], query)
        if len(parts) == 4 and parts[0] == "users" and parts[2:] == ["calendarView", "delta"]:
            return self._delta(request, parts[1], query)
        if len(parts) == 4 and parts[0] == "users" and parts[2] == "events":
            item = self.events.get(parts[1], {}).get(parts[3])
            if item is None:
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
            return httpx.Response(200, json=_select(item, query))
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{path}'.")

    def _subscriptions(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        """POST /subscriptions and PATCH /subscriptions/{id} (subscription-post/update docs)."""
        if request.method == "POST" and len(parts) == 1:
            body = json.loads(request.content)
            sub_id = f"7f105c7d-2dc5-4530-97cd-4e7ae653{len(self.graph_requests):04d}"
            sub = {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
                "id": sub_id,
                "resource": body["resource"],
                "applicationId": CLIENT_ID,
                "changeType": body["changeType"],
                "clientState": body.get("clientState"),
                "notificationUrl": body["notificationUrl"],
                "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
                "expirationDateTime": body["expirationDateTime"],
                "creatorId": "8ee44408-0679-472c-bc2a-692812af3437",
                "latestSupportedTlsVersion": "v1_2",
                "notificationContentType": None,
            }
            self.subscriptions[sub_id] = sub
            return httpx.Response(201, json=sub)
        if request.method == "PATCH" and len(parts) == 2:
            sub = self.subscriptions.get(parts[1])
            if sub is None:
                return graph_error(404, "ResourceNotFound", "The object was not found.")
            sub["expirationDateTime"] = json.loads(request.content)["expirationDateTime"]
            return httpx.Response(200, json=sub)
        return graph_error(405, "MethodNotAllowed", "Method not allowed.")

    def _page_size(self, request: httpx.Request) -> int:
        for value in request.headers.get_list("Prefer", split_commas=True):
            name, _, size = value.strip().partition("=")
            if name == "odata.maxpagesize":
                return int(size)
        return self.page_size_default

    def _in_view(self, mailbox: str, start: str, end: str) -> list[dict[str, Any]]:
        """What calendarView lists for [start, end): no masters, sorted by start."""
        items = [
            item
            for item in self.events.get(mailbox, {}).values()
            if item.get("type") != "seriesMaster" and _overlaps(item, start, end)
        ]
        return sorted(items, key=lambda e: e["start"]["dateTime"])

    def _delta_shape(self, item: dict[str, Any]) -> dict[str, Any]:
        override = self.delta_items.get(item["id"])
        if override is not None:
            return override
        if item.get("type") == "occurrence" or (
            self.sparse_exceptions and item.get("type") == "exception"
        ):
            return sparse(item)
        return item

    def _view(
        self, request: httpx.Request, mailbox: str, query: dict[str, list[str]]
    ) -> httpx.Response:
        """Plain calendarView: full items (``$select`` honoured), paged with ``$skip``."""
        if "startDateTime" not in query or "endDateTime" not in query:
            return graph_error(
                400, "ErrorInvalidParameter", "startDateTime and endDateTime required"
            )
        start, end = query["startDateTime"][0], query["endDateTime"][0]
        size = int(query["$top"][0]) if "$top" in query else self._page_size(request)
        skip = int(query.get("$skip", ["0"])[0])
        items = self._in_view(mailbox, start, end)
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph}/$metadata#users('{mailbox}')/calendarView",
            "value": [_select(item, query) for item in items[skip : skip + size]],
        }
        if skip + size < len(items):
            params = {name: values[0] for name, values in query.items()}
            params["$skip"] = str(skip + size)
            body["@odata.nextLink"] = (
                f"{self.graph}/users/{mailbox}/calendarView?{urlencode(params, safe='$:,')}"
            )
        return httpx.Response(200, json=body)

    def _delta(
        self, request: httpx.Request, mailbox: str, query: dict[str, list[str]]
    ) -> httpx.Response:
        base = f"{self.graph}/users/{mailbox}/calendarView/delta"
        size = self._page_size(request)
        if "$deltatoken" in query:
            serial, _, since_text = query["$deltatoken"][0].partition("-")
            since = int(since_text)
            if int(serial) < self.evicted_below:
                return graph_error(
                    410,
                    "SyncStateNotFound",
                    "The sync state generation was not found.",
                    Location=f"{base}?startDateTime=...",
                )
            start, end = self._ranges[int(serial)]
            ids = [eid for version, box, eid in self.log if version > since and box == mailbox]
            items = []
            for eid in ids:
                item = self.events.get(mailbox, {}).get(eid)
                if item is not None and item.get("type") == "seriesMaster":
                    continue  # the view lists occurrences, never the master
                if item is None or not _overlaps(item, start, end):
                    items.append(removed_json(eid))  # deleted, or a change outside the range
                else:
                    items.append(self._delta_shape(item))
            return self._pages(base, items, 0, size, (start, end))
        if "$skiptoken" in query:
            token = query["$skiptoken"][0]
            serial, _, offset = token.partition(".")
            if int(serial) < self.evicted_below:
                return graph_error(
                    410, "SyncStateNotFound", "The sync state generation was not found."
                )
            items, window = self._snapshots[token]
            return self._pages(base, items, int(offset), size, window)
        if "startDateTime" not in query or "endDateTime" not in query:
            return graph_error(
                400, "ErrorInvalidParameter", "startDateTime and endDateTime required"
            )
        window = (query["startDateTime"][0], query["endDateTime"][0])
        items = [self._delta_shape(item) for item in self._in_view(mailbox, *window)]
        return self._pages(base, items, 0, size, window)

    def _pages(
        self,
        base: str,
        items: list[dict[str, Any]],
        offset: int,
        size: int,
        window: tuple[str, str],
    ) -> httpx.Response:
        self.issued += 1
        page = items[offset : offset + size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph}/$metadata#Collection(event)",
            "value": page,
        }
        if offset + size < len(items):
            token = f"{self.issued}.{offset + size}"
            self._snapshots[token] = (copy.deepcopy(items), window)
            body["@odata.nextLink"] = f"{base}?$skiptoken={token}"
        else:
            self._ranges[self.issued] = window
            body["@odata.deltaLink"] = f"{base}?$deltatoken={self.issued}-{self.version}"
        return httpx.Response(200, json=body)


def _moment(text: str) -> datetime:
    """A Graph ``dateTime`` (UTC here) or a query's ISO time, as a naive UTC datetime."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.replace(tzinfo=None) - (parsed.utcoffset() or timedelta(0))
    return parsed


def _overlaps(item: dict[str, Any], start: str, end: str) -> bool:
    first, last = _moment(item["start"]["dateTime"]), _moment(item["end"]["dateTime"])
    lo, hi = _moment(start), _moment(end)
    return first < hi and (last > lo or first == last == lo)


def _select(item: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
    """The item trimmed to ``$select`` (plus ``id`` and ``@odata.etag``, as Graph sends)."""
    if "$select" not in query:
        return item
    names = {"id", "@odata.etag", *query["$select"][0].split(",")}
    return {name: value for name, value in item.items() if name in names}


def graph_calls(fake: FakeGraph) -> int:
    return len(fake.graph_requests)
