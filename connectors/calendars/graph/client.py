"""The HTTP side of the Microsoft Graph connector: app-only auth, retries and concurrency.

``GraphClient`` is shared by every Graph source of one connection (one tenant, one
app registration): ``shared_client`` keeps one per connection, made by
``make_client``, which reads the secret. It gets tokens with MSAL's
client-credentials flow (MSAL caches them, so one client object per process) for the
scope ``<Graph origin>/.default`` of the configured ``graph_url`` (so a national
cloud gets its own audience, see ``connectors/calendars/graph/clouds.py``), sends
every request with the ``Prefer`` headers calref relies on, retries 429/503/504
honouring ``Retry-After`` through ``connectors/retry.py`` (bounded, with an
injectable sleep so tests run in virtual time) and keeps at most ``max_in_flight``
requests per mailbox in flight, as Outlook's throttling limits ask. Errors are
``CalendarError``s naming the source and the problem, never a token, secret or
delta link.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.calendars.graph.clouds import graph_scope
from connectors.calendars.graph.config import GraphConnectionConfig
from connectors.retry import Retrying, RetryLater, Sleep
from connectors.retry_after import parse_retry_after
from connectors.secrets import Secret, read_secret
from rules.errors import CalendarError, CalendarUnavailable, SyncStateExpired, ThrottledError
from rules.wording import plural

RETRY_STATUSES = frozenset({429, 503, 504})
# Error codes Graph uses when a delta or skip token can no longer be used
# (concepts/errors.md, delta-query-overview.md; compared case-insensitively).
RESYNC_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "syncstateinvalid", "invaliddeltatoken"}
)


@dataclass(frozen=True)
class GraphResponse:
    """A successful Graph answer: status and decoded JSON body (``{}`` when empty)."""

    status: int
    body: dict[str, Any]


class _MsalHttpAdapter:
    """Lets MSAL talk through our ``httpx.Client`` (so tests mock it with respx)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def post(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> httpx.Response:
        if isinstance(data, str | bytes):
            return self._client.post(url, params=params, content=data, headers=headers)
        return self._client.post(url, params=params, data=data, headers=headers)

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers)

    def close(self) -> None:  # MSAL may call it; the httpx client is ours to close
        pass


class GraphClient:
    """Authenticated, throttling-aware access to Graph for one app registration."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: Secret | dict[str, Any],
        authority_host: str = "https://login.microsoftonline.com",
        graph_url: str = "https://graph.microsoft.com/v1.0",
        http: httpx.Client | None = None,
        sleep: Sleep = time.sleep,
        max_retries: int = 4,
        max_retry_wait: float = 120.0,
        max_in_flight: int = 4,
        page_size: int = 50,
        timeout: float = 30.0,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self.graph_url = graph_url.rstrip("/")
        # the `.default` scope names the Graph host of the cloud the calls go to
        self.scope = graph_scope(self.graph_url)
        self.http = http if http is not None else httpx.Client(timeout=timeout)
        self._retrying = Retrying(max_retries, max_retry_wait, sleep)
        self.max_in_flight = max_in_flight
        self.page_size = page_size
        self.calls = 0  # Graph API calls sent (token requests not counted)
        self._app: Any = None  # msal.ConfidentialClientApplication, made on first use
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        graph = urlsplit(self.graph_url)
        self._graph_origin = (graph.scheme, graph.netloc)

    # -- auth ---------------------------------------------------------------

    def _msal_app(self, source: str) -> Any:
        import msal  # loads its crypto stack only when a Graph calendar is read

        with self._lock:
            if self._app is None:
                credential: Any = self._credential
                if isinstance(credential, Secret):
                    credential = credential.reveal()
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        authority=self.authority,
                        client_credential=credential,
                        # a named tenant needs no authority aliases (no refresh tokens
                        # in client credentials), so skip the instance-discovery call
                        instance_discovery=False,
                        http_client=_MsalHttpAdapter(self.http),
                    )
                except (ValueError, httpx.HTTPError) as err:
                    unreachable = isinstance(err, httpx.HTTPError)
                    raise (CalendarUnavailable if unreachable else CalendarError)(
                        source,
                        f"cannot reach the sign-in authority for tenant {self.tenant_id}: "
                        f"{type(err).__name__}",
                    ) from None
            return self._app

    def access_token(self, source: str) -> str:
        """A bearer token for Graph (from MSAL's cache when still valid)."""
        app = self._msal_app(source)
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except httpx.HTTPError as err:
            raise CalendarUnavailable(
                source, f"token request failed: {type(err).__name__}"
            ) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            error = result.get("error", "unknown_error") if isinstance(result, dict) else "?"
            description = str(result.get("error_description", "")).split("\r\n")[0]
            raise CalendarError(
                source,
                f"token request for tenant {self.tenant_id} app {self.client_id} was refused: "
                f"{error}: {description}",
            )
        return str(token)

    # -- concurrency --------------------------------------------------------

    def mailbox_slots(self, mailbox: str) -> threading.BoundedSemaphore:
        """The semaphore that bounds in-flight requests for ``mailbox``."""
        key = mailbox.strip().lower()
        with self._lock:
            slots = self._slots.get(key)
            if slots is None:
                slots = threading.BoundedSemaphore(self.max_in_flight)
                self._slots[key] = slots
            return slots

    # -- requests -----------------------------------------------------------

    def prefer_headers(self) -> list[tuple[str, str]]:
        return [
            ("Prefer", f"odata.maxpagesize={self.page_size}"),
            ("Prefer", 'outlook.timezone="UTC"'),
            ("Prefer", 'IdType="ImmutableId"'),
        ]

    def check_link(self, url: str, source: str) -> None:
        """Refuse to send our token to a link that does not point at the Graph endpoint."""
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._graph_origin:
            raise CalendarError(source, "Graph returned a paging link to an unexpected host")

    def request(
        self,
        method: str,
        url: str,
        *,
        source: str,
        mailbox: str,
        what: str,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        delta: bool = False,
    ) -> GraphResponse:
        """Send one Graph request with retries; ``what`` names it in error messages.

        With ``delta`` true, a rejected state token raises ``SyncStateExpired``.
        """
        self.check_link(url, source)
        content = json.dumps(json_body).encode() if json_body is not None else None

        def attempt() -> httpx.Response:
            token = self.access_token(source)
            headers = [("Authorization", f"Bearer {token}"), *self.prefer_headers()]
            if json_body is not None:
                headers.append(("Content-Type", "application/json"))
            with self.mailbox_slots(mailbox):
                self.calls += 1
                try:
                    response = self.http.request(
                        method, url, params=params, headers=headers, content=content
                    )
                except httpx.TransportError as err:
                    raise _NetworkError(type(err).__name__) from None
            if response.status_code in RETRY_STATUSES:
                raise _Busy(response)
            return response

        def give_up(err: Exception, attempts: int, wait: float | None) -> Exception:
            tries = f"after {plural(attempts, 'attempt')}"
            if isinstance(err, _NetworkError):
                return CalendarUnavailable(source, f"{what}: network error ({err})")
            assert isinstance(err, _Busy)
            code, _ = _error_of(err.response)
            detail = f"HTTP {err.response.status_code}" + (f" {code}" if code else "")
            if err.response.status_code == 429 or wait is not None:
                return ThrottledError(
                    source, f"{what}: throttled ({detail}) {tries}", retry_after=wait
                )
            return CalendarUnavailable(source, f"{what}: service unavailable ({detail}) {tries}")

        response = self._retrying.call(attempt, classify=_retryable, give_up=give_up)
        return self._decode(response, source, what, delta)

    def _decode(
        self, response: httpx.Response, source: str, what: str, delta: bool
    ) -> GraphResponse:
        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return GraphResponse(status, {})
            try:
                body = response.json()
            except ValueError:
                raise CalendarError(source, f"{what}: response is not JSON") from None
            if not isinstance(body, dict):
                raise CalendarError(source, f"{what}: response is not a JSON object")
            return GraphResponse(status, body)
        code, message = _error_of(response)
        detail = (
            f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
        )
        if delta and (status == 410 or (code or "").lower() in RESYNC_CODES):
            raise SyncStateExpired(source, f"{what}: sync state rejected ({detail})")
        if status in (401, 403):
            raise CalendarError(
                source,
                f"{what}: access denied ({detail}); check the app's Calendars.Read grant "
                "and its mailbox scope (see docs/calendars-graph.md)",
            )
        if status == 404:
            raise GraphNotFound(source, f"{what}: not found ({detail})")
        failed = CalendarUnavailable if status >= 500 else CalendarError
        raise failed(source, f"{what}: failed ({detail})")


class GraphNotFound(CalendarError):
    """Graph answered 404: the mailbox, event or subscription does not exist."""


def _error_of(response: httpx.Response) -> tuple[str | None, str | None]:
    """Graph's ``{"error": {"code", "message"}}`` body, or Nones when absent."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    message = error.get("message")
    return (str(code) if code else None, str(message)[:200] if message else None)


class _NetworkError(Exception):
    """A request that never got an answer (its transport error's class name)."""


class _Busy(Exception):
    """A throttled or unavailable answer (``RETRY_STATUSES``)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _retryable(err: Exception) -> RetryLater | None:
    """Network errors and busy answers are worth another try, after any Retry-After."""
    if isinstance(err, _NetworkError):
        return RetryLater()
    if isinstance(err, _Busy):
        return RetryLater(parse_retry_after(err.response.headers.get("Retry-After")))
    return None


def make_client(
    connection: GraphConnectionConfig,
    *,
    http: httpx.Client | None = None,
    sleep: Sleep = time.sleep,
) -> GraphClient:
    """A ``GraphClient`` for ``connection``; secrets are read here, from env or file.

    ``http`` and ``sleep`` replace the transport and the wait between retries (tests,
    benchmarks); ``shared_client`` is what the sources of a config use.
    """
    credential: Secret | dict[str, Any]
    if connection.client_secret_env or connection.client_secret_file:
        credential = read_secret(
            env=connection.client_secret_env,
            file=connection.client_secret_file,
            what="graph client secret",
        )
    else:
        key = read_secret(
            env=connection.certificate_key_env,
            file=connection.certificate_key_file,
            what="graph certificate key",
        )
        credential = {
            "private_key": key.reveal(),
            "thumbprint": connection.certificate_thumbprint,
        }
    return GraphClient(
        tenant_id=connection.tenant_id,
        client_id=connection.client_id,
        credential=credential,
        authority_host=connection.authority_host,
        graph_url=connection.graph_url,
        http=http,
        sleep=sleep,
        page_size=connection.page_size,
        max_retries=connection.max_retries,
        max_retry_wait=connection.max_retry_wait_seconds,
        max_in_flight=connection.max_in_flight_per_mailbox,
        timeout=connection.timeout_seconds,
    )


_shared_clients: dict[str, GraphClient] = {}
_shared_lock = threading.Lock()


def shared_client(connection: GraphConnectionConfig) -> GraphClient:
    """The one ``GraphClient`` of ``connection`` in this process (one MSAL token cache, one
    set of per-mailbox semaphores for every source of that connection)."""
    key = connection.model_dump_json()
    with _shared_lock:
        client = _shared_clients.get(key)
        if client is None:
            client = make_client(connection)
            _shared_clients[key] = client
        return client
