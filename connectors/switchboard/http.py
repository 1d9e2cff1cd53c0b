"""``HttpSwitchboard``: the ``Switchboard`` protocol over the JSON/HTTP gateway contract.

Talks to any gateway that implements ``docs/switchboard-api.yaml`` (the
simulator included) over kept-alive connections: a small free list of
``httpx.Client``s of one connection each, one taken per call, so a call costs
O(1) in connection bookkeeping (one client shared by 16 threads spent a third
of its CPU in httpcore's pool scan, quadratic in the connections). Failures
become ``SwitchboardError``s from ``connectors.switchboard.errors``: timeouts,
connection errors, 429 and 5xx are transient (retry with backoff, honouring
``retry_after``); other 4xx are permanent. Messages name the call and the
gateway's own error message, never the token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from connectors.retry_after import parse_retry_after
from connectors.secrets import Secret
from rules.errors import CalrefError, SwitchboardError, SwitchboardUnavailable, WireError
from rules.model import PhoneAction

from .base import PhoneState, PublishedReferral, SwitchboardUser
from .errors import error_for_status
from .wire import phone_from_json, referral_to_json, referrals_of_user_json, user_from_json

T = TypeVar("T")


class HttpSwitchboard:
    """A switchboard gateway at ``url`` (e.g. ``http://127.0.0.1:8700``), bearer ``token``."""

    def __init__(
        self,
        url: str,
        token: Secret | None,
        *,
        client_name: str = "calref",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 20,
    ) -> None:
        parsed = httpx.URL(url) if "://" in url else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise CalrefError(
                f"switchboard url {url!r}: expected http://HOST[:PORT] or https://..."
            )
        headers = {"Accept": "application/json", "User-Agent": f"{client_name} (calref)"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        self._token = token
        self.url = url.rstrip("/")
        self.client_name = client_name
        self.timeout = timeout
        self._client_args: dict[str, Any] = {
            "base_url": self.url,
            "headers": headers,
            "timeout": timeout,
            "transport": transport,
            "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
        }
        #: clients not in use; at most ``max_connections`` are kept (the service's concurrency)
        self._idle: list[httpx.Client] = []
        self._keep = max_connections
        self._clients_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"HttpSwitchboard({self.url!r}, client_name={self.client_name!r})"

    def close(self) -> None:
        with self._clients_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for client in idle:
            client.close()

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        """A client (one kept-alive connection) for one call, back to the free list after."""
        with self._clients_lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = httpx.Client(**self._client_args)
        try:
            yield client
        finally:
            with self._clients_lock:
                keep = not self._closed and len(self._idle) < self._keep
                if keep:
                    self._idle.append(client)
            if not keep:
                client.close()

    def __enter__(self) -> HttpSwitchboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Switchboard protocol ----------------------------------------------------

    def list_users(self) -> list[SwitchboardUser]:
        path = "/api/users"
        body = self._call("GET", path)
        items = body.get("users") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise self._malformed("GET", path, "users: expected a list")
        return self._decode("GET", path, lambda: [user_from_json(u, "users[]") for u in items])

    def get_user(self, user_id: str) -> SwitchboardUser:
        path = f"/api/users/{_seg(user_id)}"
        body = self._call("GET", path)
        return self._decode("GET", path, lambda: user_from_json(body, "user"))

    def list_referrals(self, user_id: str) -> list[PublishedReferral]:
        """The referrals the gateway shows on ``user_id`` (for reconciling drift)."""
        path = f"/api/users/{_seg(user_id)}"
        body = self._call("GET", path)
        return self._decode("GET", path, lambda: referrals_of_user_json(body, "user"))

    def referral_ids(self) -> dict[str, set[str]]:
        """Every user's referral ids, from one ``GET /api/users`` (each user carries them)."""
        path = "/api/users"
        body = self._call("GET", path)
        items = body.get("users") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise self._malformed("GET", path, "users: expected a list")

        def decode() -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for i, item in enumerate(items):
                user = user_from_json(item, f"users[{i}]")
                out[user.id] = {r.id for r in referrals_of_user_json(item, f"users[{i}]")}
            return out

        return self._decode("GET", path, decode)

    def publish_referral(
        self, user_id: str, referral: PublishedReferral, idempotency_key: str
    ) -> None:
        path = f"/api/users/{_seg(user_id)}/referrals/{_seg(referral.id)}"
        try:
            payload = referral_to_json(referral)
            del payload["id"]  # the id is in the path
            payload["client"] = self.client_name
        except ValueError as err:
            raise SwitchboardError(f"PUT {path}: {err}") from None
        self._call("PUT", path, json_body=payload, key=idempotency_key)

    def withdraw_referral(self, user_id: str, referral_id: str, idempotency_key: str) -> None:
        path = f"/api/users/{_seg(user_id)}/referrals/{_seg(referral_id)}"
        self._call("DELETE", path, key=idempotency_key, params={"client": self.client_name})

    def apply_action(self, user_id: str, action: PhoneAction, idempotency_key: str) -> PhoneState:
        path = f"/api/users/{_seg(user_id)}/actions"
        payload = {"action": action.to_json(), "client": self.client_name}
        body = self._call("POST", path, json_body=payload, key=idempotency_key)
        return self._decode("POST", path, lambda: phone_from_json(body, "phone"))

    # -- plumbing ----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        key: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        call = f"switchboard {method} {path}"
        headers = {}
        if key is not None:
            if not key:
                raise SwitchboardError(f"{call}: empty idempotency key")
            headers["Idempotency-Key"] = key
        try:
            with self._client() as client:
                response = client.request(
                    method, path, json=json_body, headers=headers, params=params
                )
        except httpx.TimeoutException as err:
            raise SwitchboardUnavailable(
                f"{call}: timed out after {self.timeout:g}s ({type(err).__name__})", code="timeout"
            ) from None
        except httpx.TransportError as err:
            raise SwitchboardUnavailable(
                f"{call}: cannot reach {self.url}: {self._clean(str(err)) or type(err).__name__}",
                code="unreachable",
            ) from None
        if response.status_code >= 400:
            raise self._error(call, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._malformed(method, path, "the answer is not JSON") from None

    def _error(self, call: str, response: httpx.Response) -> SwitchboardError:
        code, message = None, ""
        try:
            body = response.json()
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                code = str(error["code"]) if isinstance(error.get("code"), str) else None
                message = str(error["message"]) if isinstance(error.get("message"), str) else ""
        except (json.JSONDecodeError, UnicodeDecodeError):
            message = response.text[:200].strip()
        status = response.status_code
        text = f"{call}: HTTP {status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {self._clean(message)}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return error_for_status(status, text, code=code, retry_after=retry_after)

    def _malformed(self, method: str, path: str, problem: str) -> SwitchboardError:
        return SwitchboardError(f"switchboard {method} {path}: unexpected answer: {problem}")

    def _decode(self, method: str, path: str, decode: Callable[[], T]) -> T:
        try:
            return decode()
        except WireError as err:
            raise self._malformed(method, path, str(err)) from None

    def _clean(self, text: str) -> str:
        """``text`` with the token blanked out, should a gateway ever echo it."""
        if self._token is not None and self._token.reveal():
            text = text.replace(self._token.reveal(), "***")
        return text


def _seg(value: str) -> str:
    """One URL path segment; ``/`` in a referral id is allowed by the contract."""
    return quote(value, safe="")
