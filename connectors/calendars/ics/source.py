"""Calendar sources that read ICS files from disk or from an http(s) URL.

Both answer every real change with a full result (ICS has no delta) and use
the opaque ``state`` only to say "nothing changed": the file's identity
(mtime_ns, size, SHA-256) or the URL's validators (ETag, Last-Modified, SHA-256),
always together with the window they were read for, because a moved window can
bring new occurrences of an unchanged file.

Both read within ``CalendarLimits`` (docs/calendar-limits.md): a file or body over
``max_bytes`` is refused before it is parsed, and a URL's whole download (every
redirect hop and the body) must end within ``download_seconds``, checked after each
chunk and, for a read that blocks, by waiting for the download on a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.ics.parse import parse_ics_report
from connectors.calendars.limits import CalendarLimits, DeadlineExceeded, LimitExceeded
from connectors.retry_after import parse_retry_after
from connectors.secrets import Secret
from rules.errors import CalendarError, CalendarUnavailable, ThrottledError

log = logging.getLogger(__name__)

_REDIRECTS = (301, 302, 303, 307, 308)


def _window_key(window: SyncWindow) -> list[str]:
    return [window.start.astimezone(UTC).isoformat(), window.end.astimezone(UTC).isoformat()]


@dataclass(frozen=True)
class _State:
    """What a source remembers between calls (serialised as JSON)."""

    window: list[str]
    sha256: str
    mtime_ns: int | None = None
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None

    def dump(self) -> str:
        return json.dumps({"v": 1, **asdict(self)}, sort_keys=True)

    @classmethod
    def load(cls, text: str | None) -> _State | None:
        """The decoded state, or None (full read) when absent or not ours."""
        if not text:
            return None
        try:
            data = json.loads(text)
            data.pop("v")
            return cls(**data)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.info("ignoring an unreadable ICS sync state; reading the calendar in full")
            return None


class IcsFileSource:
    """An .ics file on disk (e.g. an Outlook or Google export the admin drops in a folder)."""

    def __init__(
        self, path: str | Path, mailbox: Mailbox, *, limits: CalendarLimits | None = None
    ) -> None:
        self.path = Path(path)
        self.mailbox = mailbox
        self.limits = limits or CalendarLimits()

    @property
    def id(self) -> str:
        return str(self.path)

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        limit = self.limits.max_bytes
        try:
            info = self.path.stat()
            if info.st_size > limit:
                raise self._too_big(info.st_size)
            with self.path.open("rb") as handle:
                data = handle.read(limit + 1)  # the file may grow between stat and read
            if len(data) > limit:
                raise self._too_big(len(data))
        except FileNotFoundError:
            raise CalendarError(self.id, "the file does not exist") from None
        except OSError as err:
            raise CalendarError(self.id, f"cannot read the file: {err.strerror}") from None
        new = _State(
            window=_window_key(window),
            sha256=hashlib.sha256(data).hexdigest(),
            mtime_ns=info.st_mtime_ns,
            size=len(data),
        )
        old = _State.load(state)
        if old is not None and old.sha256 == new.sha256 and old.window == new.window:
            return SyncResult(events=[], full=False, state=new.dump())
        parsed = parse_ics_report(
            data, mailbox=self.mailbox, window=window, source=self.id, limits=self.limits
        )
        return SyncResult(
            events=parsed.events, full=True, state=new.dump(), warnings=parsed.warnings
        )

    def _too_big(self, size: int) -> LimitExceeded:
        limit = self.limits.max_bytes
        return LimitExceeded(
            self.id, "max_bytes", f"the file has {size:,} bytes or more, more than {limit:,}"
        )


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


class IcsUrlSource:
    """An ICS feed over http(s): Google "secret address", Outlook published calendar, CalDAV."""

    def __init__(
        self,
        url: str,
        mailbox: Mailbox,
        *,
        client: httpx.Client | None = None,
        max_bytes: int | None = None,
        timeout: float = 30.0,
        max_redirects: int = 3,
        auth: tuple[str, Secret] | None = None,
        clock: Callable[[], datetime] | None = None,
        limits: CalendarLimits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if url.lower().startswith("webcal://"):
            url = "https://" + url[len("webcal://") :]
        self._url = url
        self._id = redact_url(url)
        scheme = urlsplit(url).scheme.lower() if self._id != "<invalid URL>" else ""
        if scheme not in ("http", "https"):
            raise CalendarError(self._id, "only http:// and https:// calendar URLs are supported")
        self.mailbox = mailbox
        self._client = client or httpx.Client()
        limits = limits or CalendarLimits()
        if max_bytes is not None:  # the entry's own bound wins for the download and the parse
            limits = replace(limits, max_bytes=max_bytes)
        self.limits = limits
        self.max_bytes = limits.max_bytes
        self.download_seconds = self.limits.download_seconds
        self._monotonic = monotonic
        self._download_end = 0.0
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._auth = auth
        self._clock = clock or (lambda: datetime.now(UTC))
        self._secrets = _secrets_in(url) + ([auth[1].reveal()] if auth else [])
        self._cache: tuple[str, bytes] | None = None  # (sha256, body) of the last 200 reply

    @property
    def id(self) -> str:
        return self._id

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        old = _State.load(state)
        same_window = old is not None and old.window == _window_key(window)
        cached = self._cache if old and self._cache and self._cache[0] == old.sha256 else None
        headers = {"Accept": "text/calendar, */*;q=0.5", "User-Agent": "calref"}
        conditional = old is not None and (same_window or cached is not None)
        if old is not None and conditional:
            if old.etag:
                headers["If-None-Match"] = old.etag
            if old.last_modified:
                headers["If-Modified-Since"] = old.last_modified
        try:
            status, body, etag, modified = self._fetch_in_time(headers)
        except httpx.TimeoutException:
            raise CalendarUnavailable(self.id, f"timed out after {self.timeout:g} s") from None
        except httpx.TransportError as err:
            problem = self._scrub(f"cannot connect ({type(err).__name__}: {err})")
            raise CalendarUnavailable(self.id, problem) from None
        if status == 304:
            if old is None or not conditional:
                raise CalendarError(self.id, "HTTP 304 to a request that was not conditional")
            if same_window:
                return SyncResult(events=[], full=False, state=state)
            assert cached is not None
            body, etag, modified = cached[1], etag or old.etag, modified or old.last_modified
        digest = hashlib.sha256(body).hexdigest()
        new = _State(_window_key(window), digest, etag=etag, last_modified=modified)
        self._cache = (digest, body)
        if old is not None and same_window and old.sha256 == digest:
            return SyncResult(events=[], full=False, state=new.dump())
        parsed = parse_ics_report(
            body, mailbox=self.mailbox, window=window, source=self.id, limits=self.limits
        )
        return SyncResult(
            events=parsed.events, full=True, state=new.dump(), warnings=parsed.warnings
        )

    def _late(self) -> LimitExceeded:
        return DeadlineExceeded(
            self.id,
            "download_seconds",
            f"the download took longer than {self.download_seconds:g} s",
        )

    def _fetch_in_time(self, headers: dict[str, str]) -> tuple[int, bytes, str | None, str | None]:
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
        result: tuple[int, bytes, str | None, str | None] = outcome[0]
        return result

    def _check_deadline(self) -> None:
        if self._monotonic() > self._download_end:
            raise self._late()

    def _fetch(self, headers: dict[str, str]) -> tuple[int, bytes, str | None, str | None]:
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
