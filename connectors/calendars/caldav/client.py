"""One CalDAV calendar collection over HTTP: requests, throttling retries and error translation.

``CalDAVCollection`` opens the ``caldav`` client lazily, runs each request
through ``call`` (429/503 with Retry-After retried by ``connectors.retry.Retrying``
with an injectable ``sleep``, then ``ThrottledError``; every other failure
becomes a ``CalendarError`` naming the source and the problem, never the
password; a rejected sync token becomes ``SyncStateExpired``) and reads the
collection's ``DAV:sync-token`` and ``CS:getctag``. The sync logic is in
``connectors.calendars.caldav.source``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from caldav.elements.base import BaseElement
from caldav.lib import error as dav_error

from connectors.retry import GiveUp, Retrying, RetryLater, Sleep
from connectors.secrets import Secret
from rules.errors import (
    CalendarError,
    CalendarUnavailable,
    CalrefError,
    SyncStateExpired,
    ThrottledError,
)
from rules.wording import plural

CTAG_TAG = "{http://calendarserver.org/ns/}getctag"
SYNC_TOKEN_TAG = "{DAV:}sync-token"
VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"
SUPPORTED_REPORT = "{DAV:}supported-report"

T = TypeVar("T")


class CalDAVCollection:
    """The calendar collection at ``url``, read as ``source_id`` (used in every error)."""

    def __init__(
        self,
        url: str,
        source_id: str,
        *,
        username: str | None,
        password: Secret | None,
        timeout_seconds: float,
        verify_tls: bool,
        throttle_retries: int,
        max_retry_wait: float,
        sleep: Sleep,
    ) -> None:
        self._url = url
        self._id = source_id
        self._username = username
        self._password = password
        self._timeout = timeout_seconds
        self._verify_tls = verify_tls
        self._retrying = Retrying(throttle_retries, max_retry_wait, sleep)
        self._calendar: Any = None

    def calendar(self) -> Any:
        """The ``caldav`` calendar object (the client is made on first use)."""
        if self._calendar is None:
            from caldav.davclient import DAVClient  # its HTTP stack loads only when used

            client: Any = DAVClient(
                url=self._url,
                username=self._username,
                password=self._password.reveal() if self._password is not None else None,
                timeout=int(max(1, self._timeout)),
                ssl_verify_cert=self._verify_tls,
                enable_rfc6764=False,
                rate_limit_handle=False,
            )
            self._calendar = client.calendar(url=self._url)
        return self._calendar

    def collection_props(self) -> dict[str, Any]:
        """The collection's sync-token and ctag (one PROPFIND, depth 0), by tag."""
        calendar = self.calendar()
        props: dict[str, Any] = self.call(
            "reading the calendar's sync-token and ctag",
            lambda: calendar.get_properties([_SyncToken(), _GetCtag()]),
        )
        return props

    def call(self, doing: str, fn: Callable[[], T], *, sync_report: bool = False) -> T:
        """Run one request, retrying throttled answers; translate every failure."""
        try:
            return self._retrying.call(fn, classify=_throttled, give_up=self._gave_up(doing))
        except CalrefError:
            raise
        except Exception as err:
            raise self._translate(err, doing, sync_report=sync_report) from None

    def _gave_up(self, doing: str) -> GiveUp:
        def give_up(_err: Exception, attempts: int, retry_after: float | None) -> Exception:
            return ThrottledError(
                self._id,
                f"the server is throttling requests ({doing}); "
                f"gave up after {plural(attempts, 'attempt')}",
                retry_after=retry_after,
            )

        return give_up

    def _translate(self, err: Exception, doing: str, *, sync_report: bool) -> CalendarError:
        if isinstance(err, dav_error.DAVError):
            status = err.status
            pre = set(err.preconditions)
            if sync_report and (
                pre & {VALID_SYNC_TOKEN, SUPPORTED_REPORT} or (status in (409, 412) and not pre)
            ):
                return SyncStateExpired(self._id, "the server rejected the sync token; resync")
            if status == 401:
                return CalendarError(
                    self._id, f"authentication failed while {doing} (check username and password)"
                )
            if status == 403 or isinstance(err, dav_error.AuthorizationError):
                return CalendarError(self._id, f"access denied to {self._url} while {doing}")
            if status == 404 or isinstance(err, dav_error.NotFoundError):
                return CalendarError(self._id, f"no calendar at {self._url} ({doing})")
            if status is not None and status >= 500:
                return CalendarUnavailable(self._id, f"server error HTTP {status} while {doing}")
            code = f"HTTP {status}" if status is not None else type(err).__name__
            return CalendarError(self._id, f"{doing} failed: {code}")
        if isinstance(err, OSError):  # niquests/requests connection errors and timeouts
            host = urlsplit(self._url).netloc
            return CalendarUnavailable(
                self._id,
                f"cannot reach the CalDAV server {host} while {doing} ({type(err).__name__})",
            )
        return CalendarUnavailable(
            self._id, f"unexpected reply while {doing} ({type(err).__name__})"
        )


class _SyncToken(BaseElement):
    tag: ClassVar[str] = SYNC_TOKEN_TAG


class _GetCtag(BaseElement):
    tag: ClassVar[str] = CTAG_TAG


def _throttled(err: Exception) -> RetryLater | None:
    if isinstance(err, dav_error.RateLimitError):
        return RetryLater(err.retry_after_seconds)
    return None
