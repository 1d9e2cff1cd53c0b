"""Talking to the Google Calendar API v3: delegated credentials, retries and error translation.

``make_client`` reads the service account key (``load_credentials``: read-only
scope, acting as the user through domain-wide delegation) and builds the Calendar
v3 service from the discovery document shipped with the client library (no network
to build it). ``GoogleClient.execute`` runs one request: the library's own retries
(``execute(num_retries=...)``) cover 5xx, 429 and rate-limit 403s; on top of that
429 and rate-limit 403s are retried a bounded number of times honouring
``Retry-After`` through ``connectors/retry.py``, then raised as ``ThrottledError``.
Every failure becomes a ``CalendarError`` naming the source; messages never contain
the request URI (it carries the sync token), and the library's own retry warnings
have their sync and page tokens masked.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from connectors.calendars.google.config import GoogleConnectionConfig
from connectors.retry import Retrying, RetryLater, Sleep
from connectors.retry_after import parse_retry_after
from connectors.secrets import read_secret
from rules.errors import (
    CalendarError,
    CalendarUnavailable,
    CalrefError,
    SyncStateExpired,
    ThrottledError,
)

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})

_TOKEN_IN_URI = re.compile(r"((?:syncToken|pageToken)=)[^&\s]+")


class _RedactTokens(logging.Filter):
    """Keeps sync and page tokens out of the client library's retry warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _TOKEN_IN_URI.sub(r"\1***", record.getMessage())
        record.args = None
        return True


logging.getLogger("googleapiclient.http").addFilter(_RedactTokens())


class GoogleClient:
    """One user's Calendar v3 service, with bounded retries and translated errors."""

    def __init__(
        self,
        service: Any,
        *,
        page_size: int = 250,
        library_retries: int = 1,
        throttle_retries: int = 3,
        max_retry_wait: float = 60.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.service = service
        self.page_size = page_size
        self._library_retries = library_retries
        self._sleep = sleep
        self._retrying = Retrying(throttle_retries, max_retry_wait, sleep)
        self.calls = 0

    def execute(self, request: Any, source: str) -> Any:
        """Run one request with bounded retries; every failure a CalendarError of ``source``."""
        from googleapiclient.errors import HttpError

        if hasattr(request, "_sleep"):
            request._sleep = self._sleep  # the library's own backoff uses our (virtual) sleep

        def attempt() -> Any:
            self.calls += 1
            return request.execute(num_retries=self._library_retries)

        try:
            return self._retrying.call(attempt, classify=_throttled)
        except HttpError as err:
            raise _classify(err).error(source) from None
        except CalrefError:
            raise
        except Exception as err:  # transport or auth failure: name its kind, not its URI
            raise _transport_error(source, err) from None


def make_client(
    connection: GoogleConnectionConfig,
    subject: str,
    *,
    http: Any = None,
    credentials: Any = None,
    sleep: Sleep = time.sleep,
) -> GoogleClient:
    """The client acting as ``subject`` (the user's address) under ``connection``.

    ``http`` (an httplib2-like object) replaces the network and skips credentials, for
    tests and benchmarks; ``credentials`` replaces the key; ``sleep`` the wait between
    retries.
    """
    if http is None and credentials is None:
        credentials = load_credentials(connection, subject)
    return GoogleClient(
        build_service(credentials=credentials, http=http),
        page_size=connection.page_size,
        library_retries=connection.library_retries,
        throttle_retries=connection.throttle_retries,
        max_retry_wait=connection.max_retry_wait,
        sleep=sleep,
    )


def load_credentials(connection: GoogleConnectionConfig, subject: str) -> Any:
    """The delegated, read-only service account credentials acting as ``subject``."""
    from google.oauth2 import service_account

    key = read_secret(
        env=connection.service_account_env,
        file=connection.service_account_file,
        what="google service account key",
    )
    try:
        info = json.loads(key.reveal())
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES)
        )
    except (ValueError, KeyError, TypeError):
        where = connection.service_account_env or connection.service_account_file
        raise CalrefError(
            f"google service account key ({where}): not a service account JSON key"
        ) from None
    return creds.with_subject(subject)


def build_service(credentials: Any = None, http: Any = None) -> Any:
    """The Calendar v3 client from the discovery document shipped with the library (no network)."""
    from googleapiclient.discovery import build

    if http is not None:
        return build("calendar", "v3", http=http, cache_discovery=False, static_discovery=True)
    return build(
        "calendar", "v3", credentials=credentials, cache_discovery=False, static_discovery=True
    )


def _throttled(err: Exception) -> RetryLater | None:
    """A rate-limit answer is worth another try (after its Retry-After, if any)."""
    from googleapiclient.errors import HttpError

    if isinstance(err, HttpError):
        problem = _classify(err)
        if problem.throttled:
            return RetryLater(problem.retry_after)
    return None


@dataclass(frozen=True)
class _HttpProblem:
    status: int
    reason: str
    message: str
    retry_after: float | None

    @property
    def throttled(self) -> bool:
        return self.status == 429 or (self.status == 403 and self.reason in RATE_LIMIT_REASONS)

    def error(self, source: str) -> CalendarError:
        text = f"HTTP {self.status}" + (f" {self.reason}" if self.reason else "")
        text += f": {self.message}" if self.message else ""
        if self.status == 410:
            return SyncStateExpired(source, f"sync token rejected, full sync required ({text})")
        if self.throttled:
            return ThrottledError(source, f"throttled ({text})", retry_after=self.retry_after)
        if self.status in (401, 403):
            return CalendarError(
                source, f"access denied, check domain-wide delegation and scope ({text})"
            )
        if self.status == 404:
            return CalendarError(source, f"calendar not found ({text})")
        return (CalendarUnavailable if self.status >= 500 else CalendarError)(source, text)


def _classify(err: Any) -> _HttpProblem:
    status = int(getattr(err.resp, "status", 0) or 0)
    reason = message = ""
    try:
        data = json.loads(err.content.decode("utf-8"))
        body = data.get("error", {})
        message = str(body.get("message", ""))
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            reason = str(errors[0].get("reason", ""))
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    return _HttpProblem(
        status, reason, message[:200], parse_retry_after(_header(err.resp, "retry-after"))
    )


def _header(resp: Any, name: str) -> str | None:
    value = resp.get(name) if hasattr(resp, "get") else None
    return None if value is None else str(value)


def _transport_error(source: str, err: Exception) -> CalendarError:
    from google.auth.exceptions import RefreshError, TransportError

    if isinstance(err, RefreshError):
        return CalendarError(
            source,
            "service account token refused: check the key and that domain-wide delegation "
            "grants the calendar.readonly scope to this client ID",
        )
    if isinstance(err, TransportError | OSError | TimeoutError):
        return CalendarUnavailable(source, f"network error ({type(err).__name__})")
    return CalendarUnavailable(source, f"unexpected failure ({type(err).__name__})")
