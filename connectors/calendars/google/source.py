"""Google Workspace calendars through the Calendar API v3, read with domain-wide delegation.

A service account with domain-wide delegation reads each user's calendar
(``events.list`` with ``singleEvents=true``): the first call lists the window
(``timeMin``/``timeMax``, paged with ``pageToken``) and keeps the final page's
``nextSyncToken``; later calls send only ``syncToken`` (Google refuses it
together with ``timeMin``/``timeMax``/``orderBy``/``q``...) and get the changes
for the whole calendar, which are filtered back to the window here. The state
string records the span it was made for; a window outside that span (the next
day) starts over with a full window sync. A ``410`` (``fullSyncRequired``)
becomes ``SyncStateExpired``.

Throttling: the client library's own retries (``execute(num_retries=...)``)
cover 5xx, 429 and rate-limit 403s; on top of that 429 and rate-limit 403s are
retried a bounded number of times honouring ``Retry-After``, then raised as
``ThrottledError``. Error messages never contain the request URI (it carries
the sync token).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.google.mapping import EventMapper
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
from rules.model import CalendarEvent

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
STATE_VERSION = 1

_TOKEN_IN_URI = re.compile(r"((?:syncToken|pageToken)=)[^&\s]+")


class _RedactTokens(logging.Filter):
    """Keeps sync and page tokens out of the client library's retry warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _TOKEN_IN_URI.sub(r"\1***", record.getMessage())
        record.args = None
        return True


logging.getLogger("googleapiclient.http").addFilter(_RedactTokens())


class GoogleConnection(BaseModel):
    """The organisation-level ``connections.google`` block: the service account and limits."""

    model_config = ConfigDict(extra="forbid")

    service_account_file: str | None = Field(
        default=None, description="path of the service account JSON key file"
    )
    service_account_env: str | None = Field(
        default=None, description="environment variable holding the service account JSON key"
    )
    page_size: int = Field(default=250, ge=1, le=2500)
    library_retries: int = Field(default=1, ge=0, le=10)
    throttle_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> GoogleConnection:
        if (self.service_account_file is None) == (self.service_account_env is None):
            raise ValueError("give exactly one of service_account_file or service_account_env")
        return self


class GoogleCalendar(BaseModel):
    """One user's calendar entry ``{kind: google, calendar_id: primary}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["google"] = "google"
    calendar_id: str = Field(default="primary", min_length=1)


@dataclass(frozen=True)
class _State:
    span_start: datetime
    span_end: datetime
    sync_token: str | None

    def dump(self) -> str:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "span": [self.span_start.isoformat(), self.span_end.isoformat()],
                "sync_token": self.sync_token,
            }
        )

    @classmethod
    def load(cls, text: str) -> _State | None:
        """The state, or None when it is unreadable (then a full sync starts over)."""
        try:
            data = json.loads(text)
            if data.get("v") != STATE_VERSION:
                return None
            start, end = (datetime.fromisoformat(s) for s in data["span"])
            token = data.get("sync_token")
            if start.tzinfo is None or end.tzinfo is None:
                return None
            return cls(start, end, token if isinstance(token, str) else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def day_span(window: SyncWindow) -> tuple[datetime, datetime]:
    """The whole UTC days covering the window: what a full sync fetches and a state covers."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise CalrefError("sync window: start and end must be timezone-aware")
    start = window.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end_utc = window.end.astimezone(UTC)
    end = end_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    if end < end_utc:
        end += timedelta(days=1)
    return start, end


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GoogleCalendarSource:
    """One user's Google calendar as a ``CalendarSource``."""

    def __init__(
        self,
        service: Any,
        mailbox: Mailbox,
        calendar_id: str = "primary",
        *,
        page_size: int = 250,
        library_retries: int = 1,
        throttle_retries: int = 3,
        max_retry_wait: float = 60.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._service = service
        self._mailbox = mailbox
        self._calendar_id = calendar_id
        self._page_size = page_size
        self._library_retries = library_retries
        self._sleep = sleep
        self._retrying = Retrying(throttle_retries, max_retry_wait, sleep)
        suffix = "" if calendar_id == "primary" else f"/{calendar_id}"
        self._id = f"google:{mailbox.email}{suffix}"
        self._mapper = EventMapper(self._id, mailbox)
        self.calls = 0

    @property
    def id(self) -> str:
        return self._id

    @property
    def calendar_id(self) -> str:
        return self._calendar_id

    @property
    def service(self) -> Any:
        return self._service

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        span = day_span(window)
        previous = _State.load(state) if state else None
        if previous is None or previous.sync_token is None:
            return self._full(span)
        if (previous.span_start, previous.span_end) != span:  # the window moved to another day
            return self._full(span)
        return self._incremental(previous)

    def _overlaps(self, event: CalendarEvent, start: datetime, end: datetime) -> bool:
        return self._mapper.bounds(event.end) > start and self._mapper.bounds(event.start) < end

    def _full(self, span: tuple[datetime, datetime]) -> SyncResult:
        params = {"timeMin": _rfc3339(span[0]), "timeMax": _rfc3339(span[1])}
        events: dict[str, CalendarEvent] = {}
        token: str | None = None
        for page in self._pages(params):
            for item in page.get("items") or ():
                if item.get("status") == "cancelled":
                    events.pop(str(item.get("id")), None)
                    continue
                event = self._mapper.event(item)
                if self._overlaps(event, *span):
                    events[event.key] = event
            token = page.get("nextSyncToken", token)
        state = _State(span[0], span[1], token).dump()
        return SyncResult(events=list(events.values()), full=True, state=state)

    def _incremental(self, previous: _State) -> SyncResult:
        upserts: dict[str, CalendarEvent] = {}
        removed: dict[str, None] = {}
        token = previous.sync_token
        assert token is not None
        new_token: str | None = None
        for page in self._pages({"syncToken": token}):
            for item in page.get("items") or ():
                key = item.get("id")
                if not isinstance(key, str) or not key:
                    raise CalendarError(self._id, "a changed event has no id")
                if item.get("status") == "cancelled":
                    upserts.pop(key, None)
                    removed[key] = None
                    continue
                event = self._mapper.event(item)
                if self._overlaps(event, previous.span_start, previous.span_end):
                    upserts[key] = event
                    removed.pop(key, None)
                else:  # moved out of the span: the caller may know it from before
                    upserts.pop(key, None)
                    removed[key] = None
            new_token = page.get("nextSyncToken", new_token)
        state = _State(previous.span_start, previous.span_end, new_token or token).dump()
        return SyncResult(
            events=list(upserts.values()), full=False, state=state, removed=list(removed)
        )

    def _pages(self, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        page_token: str | None = None
        while True:
            query: dict[str, Any] = {
                "calendarId": self._calendar_id,
                "singleEvents": True,
                "maxResults": self._page_size,
                **params,
            }
            if page_token:
                query["pageToken"] = page_token
            page = self.execute(self._service.events().list(**query))
            if not isinstance(page, dict):
                raise CalendarError(
                    self._id, "events.list answered with something not a JSON object"
                )
            yield page
            page_token = page.get("nextPageToken")
            if not page_token:
                return

    def execute(self, request: Any) -> Any:
        """Run one request with bounded retries; translate every failure to a CalendarError."""
        from googleapiclient.errors import HttpError

        if hasattr(request, "_sleep"):
            request._sleep = self._sleep  # the library's own backoff uses our (virtual) sleep

        def attempt() -> Any:
            self.calls += 1
            return request.execute(num_retries=self._library_retries)

        try:
            return self._retrying.call(attempt, classify=_throttled)
        except HttpError as err:
            raise _classify(err).error(self._id) from None
        except CalrefError:
            raise
        except Exception as err:  # transport or auth failure: name its kind, not its URI
            raise _transport_error(self._id, err) from None


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


def load_credentials(connection: GoogleConnection, subject: str) -> Any:
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


def build_source(
    connection: GoogleConnection,
    entry: GoogleCalendar,
    mailbox: Mailbox,
    *,
    http: Any = None,
    credentials: Any = None,
    sleep: Sleep = time.sleep,
) -> GoogleCalendarSource:
    """The source for ``mailbox``'s calendar. ``http`` (an httplib2-like object) replaces the
    network and skips credentials, for tests; ``credentials`` replaces the key file."""
    if http is None and credentials is None:
        credentials = load_credentials(connection, mailbox.email)
    service = build_service(credentials=credentials, http=http)
    return GoogleCalendarSource(
        service,
        mailbox,
        entry.calendar_id,
        page_size=connection.page_size,
        library_retries=connection.library_retries,
        throttle_retries=connection.throttle_retries,
        max_retry_wait=connection.max_retry_wait,
        sleep=sleep,
    )
