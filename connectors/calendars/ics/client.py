"""Fetching an ICS feed over http(s): counted redirects, bounded bytes and time, errors.

``FeedClient.fetch`` sends one conditional GET (the caller's ``If-None-Match`` /
``If-Modified-Since``), follows at most ``max_redirects`` redirects by hand (basic
auth only to the feed's own origin), refuses a body over ``max_bytes`` before it is
all read, and ends the whole download (every redirect hop and the body) within
``download_seconds``: checked after each chunk and, for a read that blocks, by
waiting for the download on a worker thread (docs/calendar-limits.md). Answers
become ``CalendarError``s: 429 and 503 a ``ThrottledError`` with the server's
``Retry-After``, other 5xx and network failures ``CalendarUnavailable``. No message
holds the URL's secrets (a password, query values, a Google ``private-`` key):
sources are named by ``redact_url``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from connectors.calendars.limits import DeadlineExceeded, LimitExceeded
from connectors.retry_after import parse_retry_after
from connectors.secrets import Secret
from rules.errors import CalendarError, CalendarUnavailable, ThrottledError

_REDIRECTS = (301, 302, 303, 307, 308)

Fetched = tuple[int, bytes, str | None, str | None]
"""``(status, body, etag, last_modified)`` of one fetch: status 200, or 304 with no body."""


def redact_url(url: str) -> str:
    """``url`` safe to log: no user:password, no query values, no Google ``private-`` key."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    netloc = ("***@" if parts.username or parts.password else "") + host
    if port is not None:
        netloc += f":{port}"
    path = "/".join(
        "private-***" if seg.startswith("private-") else seg for seg in parts.path.split("/")
    )
    query = urlencode(
        [(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _secrets_in(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password or "", parts.username or ""]
    found += [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    found += [s for s in parts.path.split("/") if s.startswith("private-")]
    return [s for s in found if len(s) >= 3]


class FeedClient:
    """GETs of one feed ``url`` (http or https), named ``source`` in every error."""

    def __init__(
        self,
        url: str,
        source: str,
        *,
        max_bytes: int,
        download_seconds: float,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        max_redirects: int = 3,
        auth: tuple[str, Secret] | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self.id = source
        self._client = client or httpx.Client()
        self.max_bytes = max_bytes
        self.download_seconds = download_seconds
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._auth = auth
        self._clock = clock or (lambda: datetime.now(UTC))
        self._monotonic = monotonic
        self._download_end = 0.0
        self._secrets = _secrets_in(url) + ([auth[1].reveal()] if auth else [])

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def fetch(self, headers: dict[str, str]) -> Fetched:
        """One GET with ``headers``; every failure a ``CalendarError`` of this feed."""
        try:
            return self._fetch_in_time(headers)
        except httpx.TimeoutException:
            raise CalendarUnavailable(self.id, f"timed out after {self.timeout:g} s") from None
        except httpx.TransportError as err:
            problem = self._scrub(f"cannot connect ({type(err).__name__}: {err})")
            raise CalendarUnavailable(self.id, problem) from None

    def _late(self) -> LimitExceeded:
        return DeadlineExceeded(
            self.id,
            "download_seconds",
            f"the download took longer than {self.download_seconds:g} s",
        )

    def _fetch_in_time(self, headers: dict[str, str]) -> Fetched:
        """``_fetch`` that returns or fails within ``download_seconds``.

        The chunk loop checks the deadline itself; a read that blocks (a server that
        stops sending) is left to end on its own read timeout in the worker thread
        while this call reports the source as failing on time.
        """
        self._download_end = self._monotonic() + self.download_seconds
        outcome: list[Any] = []

        def work() -> None:
            try:
                outcome.append(self._fetch(headers))
            except BaseException as err:  # handed to the caller below
                outcome.append(err)

        worker = threading.Thread(target=work, name=f"ics-download {self.id}", daemon=True)
        worker.start()
        worker.join(self.download_seconds + 0.05)
        if not outcome:
            raise self._late()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        result: Fetched = outcome[0]
        return result

    def _check_deadline(self) -> None:
        if self._monotonic() > self._download_end:
            raise self._late()

    def _fetch(self, headers: dict[str, str]) -> Fetched:
        """GET with manual, counted redirects; returns (status, body, etag, last-modified)."""
        url = httpx.URL(self._url)
        origin = (url.scheme, url.host, url.port)
        for hop in range(self.max_redirects + 1):
            self._check_deadline()
            same_origin = (url.scheme, url.host, url.port) == origin
            auth = None
            if self._auth and same_origin:
                auth = httpx.BasicAuth(self._auth[0], self._auth[1].reveal())
            with self._client.stream(
                "GET",
                url,
                headers=headers,
                timeout=self.timeout,
                follow_redirects=False,
                auth=auth,
            ) as resp:
                if resp.status_code in _REDIRECTS and "location" in resp.headers:
                    target = url.join(resp.headers["location"])
                    if target.scheme not in ("http", "https"):
                        raise CalendarError(self.id, "redirected to a non-http(s) URL")
                    if hop == self.max_redirects:
                        raise CalendarError(
                            self.id, f"more than {self.max_redirects} redirects (a loop?)"
                        )
                    url = target
                    continue
                self._check_status(resp)
                if resp.status_code == 304:
                    return 304, b"", resp.headers.get("etag"), resp.headers.get("last-modified")
                body = self._read_limited(resp)
                return 200, body, resp.headers.get("etag"), resp.headers.get("last-modified")
        raise CalendarError(self.id, f"more than {self.max_redirects} redirects")  # unreachable

    def _check_status(self, resp: httpx.Response) -> None:
        code = resp.status_code
        if code in (429, 503):
            retry = parse_retry_after(resp.headers.get("retry-after"), self._clock())
            raise ThrottledError(self.id, f"HTTP {code}: the server asks us to wait", retry)
        if code in (401, 403):
            raise CalendarError(self.id, f"HTTP {code}: access denied (check the credentials)")
        if code == 404:
            raise CalendarError(self.id, "HTTP 404: no calendar at this address")
        if 400 <= code < 500:
            raise CalendarError(self.id, f"HTTP {code}: the server refused the request")
        if code >= 500:
            raise CalendarUnavailable(self.id, f"HTTP {code}: server error")
        if code != 304 and not 200 <= code < 300:
            raise CalendarError(self.id, f"unexpected HTTP status {code}")

    def _read_limited(self, resp: httpx.Response) -> bytes:
        too_big = LimitExceeded(
            self.id, "max_bytes", f"the calendar is larger than {self.max_bytes:,} bytes"
        )
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        chunks: list[bytes] = []
        total = 0
        for chunk in resp.iter_bytes():
            self._check_deadline()
            total += len(chunk)
            if total > self.max_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._client.close()
