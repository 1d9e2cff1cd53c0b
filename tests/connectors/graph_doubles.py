"""Test doubles for the Graph connector: the sign-in endpoints and a stateful calendarView delta.

``FakeGraph`` keeps one calendar per mailbox and answers with payloads shaped
as Microsoft's documentation shows them (``delta-query-events.md``,
``event.md``, ``errors.md``): pages with ``@odata.nextLink`` /
``@odata.deltaLink``, ``@removed`` entries, 410 ``syncStateNotFound`` for
evicted tokens, 429 with ``Retry-After``. It is mounted with respx on the
httpx transport, so the real httpx + MSAL code paths run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import respx

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-access-token.sig"


def openid_configuration(tenant: str = TENANT) -> dict[str, Any]:
    """The v2.0 OpenID configuration document (trimmed to what MSAL reads)."""
    return {
        "token_endpoint": f"{LOGIN}/{tenant}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{LOGIN}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{LOGIN}/{tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{LOGIN}/{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{LOGIN}/{tenant}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{LOGIN}/{tenant}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid"],
        "kerberos_endpoint": f"{LOGIN}/{tenant}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
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
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (version, mailbox, id)
    version: int = 0
    evicted_below: int = 0  # tokens with a serial below this are gone
    issued: int = 0
    # what a delta round sends for an id instead of the stored event (e.g. only changed fields)
    delta_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    _snapshots: dict[str, str] = field(default_factory=dict)
    token_requests: int = 0
    graph_requests: list[httpx.Request] = field(default_factory=list)
    throttle_next: list[httpx.Response] = field(default_factory=list)
    on_request: Callable[[httpx.Request], None] | None = None
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- calendar edits -----------------------------------------------------

    def put(self, mailbox: str, item: dict[str, Any]) -> None:
        self.version += 1
        self.events.setdefault(mailbox, {})[item["id"]] = item
        self.log.append((self.version, mailbox, item["id"]))

    def delete(self, mailbox: str, event_id: str) -> None:
        self.version += 1
        self.events.get(mailbox, {}).pop(event_id, None)
        self.log.append((self.version, mailbox, event_id))

    def evict_tokens(self) -> None:
        """Every delta token issued so far is dropped from the server's cache."""
        self.evicted_below = self.issued + 1

    # -- wiring -------------------------------------------------------------

    def mount(self, router: respx.MockRouter) -> None:
        router.get(f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration").mock(
            return_value=httpx.Response(200, json=openid_configuration())
        )
        router.post(f"{LOGIN}/{TENANT}/oauth2/v2.0/token").mock(side_effect=self._token)
        router.route(host="graph.microsoft.com").mock(side_effect=self.handle)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["client_credentials"]
        assert form["scope"] == ["https://graph.microsoft.com/.default"]
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
        if self.on_request is not None:
            self.on_request(request)
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        if self.throttle_next:
            return self.throttle_next.pop(0)
        path = unquote(urlsplit(str(request.url)).path)
        query = parse_qs(urlsplit(str(request.url)).query)
        parts = path.removeprefix("/v1.0/").split("/")
        if parts[0] == "subscriptions":
            return self._subscriptions(request, parts)
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "calendarView":
            return graph_error(400, "BadRequest", "Unsupported segment")
        if len(parts) == 4 and parts[0] == "users" and parts[2:] == ["calendarView", "delta"]:
            return self._delta(request, parts[1], query)
        if len(parts) == 4 and parts[0] == "users" and parts[2] == "events":
            item = self.events.get(parts[1], {}).get(parts[3])
            if item is None:
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
            return httpx.Response(200, json=item)
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

    def _delta(
        self, request: httpx.Request, mailbox: str, query: dict[str, list[str]]
    ) -> httpx.Response:
        base = f"{GRAPH}/users/{mailbox}/calendarView/delta"
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
            ids = [eid for version, box, eid in self.log if version > since and box == mailbox]
            items = [
                self.delta_items.get(eid) or self.events[mailbox].get(eid) or removed_json(eid)
                for eid in ids
            ]
            return self._pages(base, items, 0, size)
        if "$skiptoken" in query:
            token = query["$skiptoken"][0]
            serial, _, offset = token.partition(".")
            if int(serial) < self.evicted_below:
                return graph_error(
                    410, "SyncStateNotFound", "The sync state generation was not found."
                )
            items = json.loads(self._snapshots[token])
            return self._pages(base, items, int(offset), size)
        if "startDateTime" not in query or "endDateTime" not in query:
            return graph_error(
                400, "ErrorInvalidParameter", "startDateTime and endDateTime required"
            )
        items = sorted(self.events.get(mailbox, {}).values(), key=lambda e: e["start"]["dateTime"])
        return self._pages(base, items, 0, size)

    def _pages(
        self, base: str, items: list[dict[str, Any]], offset: int, size: int
    ) -> httpx.Response:
        self.issued += 1
        page = items[offset : offset + size]
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
            "value": page,
        }
        if offset + size < len(items):
            token = f"{self.issued}.{offset + size}"
            self._snapshots[token] = json.dumps(items)
            body["@odata.nextLink"] = f"{base}?$skiptoken={token}"
        else:
            body["@odata.deltaLink"] = f"{base}?$deltatoken={self.issued}-{self.version}"
        return httpx.Response(200, json=body)


def graph_calls(fake: FakeGraph) -> int:
    return len(fake.graph_requests)
