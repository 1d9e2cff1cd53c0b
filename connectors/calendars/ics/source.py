"""Calendar sources that read ICS files from disk or feeds over http(s), and ``build_source``.

Both answer every real change with a full result (ICS has no delta) and use
the opaque ``state`` only to say "nothing changed": the file's identity
(mtime_ns, size, SHA-256) or the URL's validators (ETag, Last-Modified, SHA-256),
always together with the window they were read for, because a moved window can
bring new occurrences of an unchanged file (the service's sync window moves once a
day: ``ServiceSettings.sync_window``). A file whose ``(mtime_ns, size)`` and window
are those of the state costs one ``stat`` and is not opened; a feed answering 304
costs the request. The text is parsed by
``connectors/calendars/ics/parse.py`` (each occurrence becomes a ``CalendarEvent``
in ``mapping.py``); a feed is fetched by ``client.py``.

Both read within ``CalendarLimits`` (docs/calendar-limits.md): a file or body over
``max_bytes`` is refused before it is parsed, and a feed's whole download must end
within ``download_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.ics.client import FeedClient, redact_url
from connectors.calendars.ics.config import IcsCalendarConfig, IcsConnectionConfig
from connectors.calendars.ics.parse import parse_ics_report
from connectors.calendars.limits import CalendarLimits, LimitExceeded
from connectors.secrets import Secret, read_secret
from rules.errors import CalendarError, CalrefError, ConfigError, Problem

log = logging.getLogger(__name__)


def build_source(
    connection: IcsConnectionConfig,
    calendar: IcsCalendarConfig,
    mailbox: Mailbox,
    *,
    limits: CalendarLimits | None = None,
    base_dir: Path | None = None,
) -> IcsFileSource | IcsUrlSource:
    """A file or feed source for one calendar entry of ``mailbox``'s user.

    ``path``, ``url_file`` and ``password_file`` are relative to ``base_dir`` (the
    config file's folder). ``limits`` are the config's ``calendar_limits`` (an entry's
    own ``max_bytes`` wins for its feed). A secret that cannot be read, or a secret URL
    calref cannot fetch, is a ``ConfigError`` naming the entry and the problem.
    """
    base = base_dir if base_dir is not None else Path()
    if calendar.path is not None:
        return IcsFileSource(base / calendar.path, mailbox, limits=limits)
    place = f"calendar entry of user {mailbox.user_id!r}"
    try:
        url = calendar.url
        if url is None:
            url = read_secret(
                env=calendar.url_env, file=_relative(base, calendar.url_file), what=place
            ).reveal()
        auth: tuple[str, Secret] | None = None
        if calendar.username is not None:
            password = read_secret(
                env=calendar.password_env,
                file=_relative(base, calendar.password_file),
                what=f"{place} password",
            )
            auth = (calendar.username, password)
        return IcsUrlSource(
            url,
            mailbox,
            auth=auth,
            limits=limits,
            max_bytes=calendar.max_bytes,
            timeout=calendar.timeout if calendar.timeout is not None else 30.0,
            max_redirects=calendar.max_redirects if calendar.max_redirects is not None else 3,
        )
    except CalrefError as err:
        problem = str(err).removeprefix(place + ": ")
        raise ConfigError([Problem(place, None, None, problem)]) from None


def _relative(base_dir: Path, name: str | None) -> Path | None:
    return None if name is None else base_dir / name


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
        # the last state decoded and window keyed, so an unchanged poll decodes nothing
        self._memo: tuple[str, int | None, int | None, list[str]] | None = None
        self._window_memo: tuple[SyncWindow, list[str]] | None = None

    @property
    def id(self) -> str:
        return str(self.path)

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        """Unchanged (``state`` returned as it is) on a stat alone when the file's
        ``(mtime_ns, size)`` and the window are those of ``state``; else read, and
        unchanged still when the SHA-256 is the same; else parsed in full."""
        limit = self.limits.max_bytes
        try:
            info = self.path.stat()
            if state is not None and self._stat_unchanged(state, info, window):
                return SyncResult(events=[], full=False, state=state)
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

    def _stat_unchanged(self, state: str, info: os.stat_result, window: SyncWindow) -> bool:
        """Whether ``state`` was returned for this window and a file with this stat."""
        memo = self._memo
        if memo is None or memo[0] != state:
            old = _State.load(state)
            if old is None:
                return False
            memo = self._memo = (state, old.mtime_ns, old.size, old.window)
        window_key = self._window_memo
        if window_key is None or window_key[0] != window:
            window_key = self._window_memo = (window, _window_key(window))
        return memo[1] == info.st_mtime_ns and memo[2] == info.st_size and memo[3] == window_key[1]

    def _too_big(self, size: int) -> LimitExceeded:
        limit = self.limits.max_bytes
        return LimitExceeded(
            self.id, "max_bytes", f"the file has {size:,} bytes or more, more than {limit:,}"
        )


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
        self._id = redact_url(url)
        scheme = urlsplit(url).scheme.lower() if self._id != "<invalid URL>" else ""
        if scheme not in ("http", "https"):
            raise CalendarError(self._id, "only http:// and https:// calendar URLs are supported")
        self.mailbox = mailbox
        limits = limits or CalendarLimits()
        if max_bytes is not None:  # the entry's own bound wins for the download and the parse
            limits = replace(limits, max_bytes=max_bytes)
        self.limits = limits
        self._feed = FeedClient(
            url,
            self._id,
            max_bytes=limits.max_bytes,
            download_seconds=limits.download_seconds,
            client=client,
            timeout=timeout,
            max_redirects=max_redirects,
            auth=auth,
            clock=clock,
            monotonic=monotonic,
        )
        self._cache: tuple[str, bytes] | None = None  # (sha256, body) of the last 200 reply

    @property
    def id(self) -> str:
        return self._id

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
        status, body, etag, modified = self._feed.fetch(headers)
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

    def close(self) -> None:
        self._feed.close()
