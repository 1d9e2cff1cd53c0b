"""CalDAV calendars through the ``caldav`` package: the source and ``build_source``.

A full sync reads the collection's ``DAV:sync-token`` and ``CS:getctag`` (one
PROPFIND, depth 0) and then the calendar object resources that touch the window
(one ``calendar-query`` REPORT with a time range, not expanded); each resource's
iCalendar text is expanded into occurrences inside the window by ``parse_ics``
(``connectors/calendars/ics/parse.py``; each occurrence becomes a ``CalendarEvent``
in ``connectors/calendars/ics/mapping.py``). The opaque state (JSON) records the
window it was made for, the sync mode, the token or ctag, and which occurrence
keys each resource (href) produced.

Incremental sync depends on what the server offers:

- ``sync-token`` (RFC 6578): a ``sync-collection`` REPORT lists changed and
  deleted hrefs; changed resources are fetched with one ``calendar-multiget``
  and re-expanded; their new occurrences are upserts and the keys they no
  longer produce (an EXDATE, a moved or removed override, a deleted resource)
  are ``removed``. A rejected token (``DAV:valid-sync-token``: Radicale 403,
  Xandikos 412, some servers 409) raises ``SyncStateExpired``.
- ``ctag``: only the collection's ctag is read; if it changed the window is
  re-read and answered with ``full=True``.
- ``window``: every call re-reads the window (``full=True``).

A state made for another day's window is ignored and a full sync is done.
Requests, throttling (429, or 503 with Retry-After: retried a bounded number of
times with an injectable ``sleep``, then ``ThrottledError``) and error
translation are in ``connectors/calendars/caldav/client.py``. Errors name the
source (``caldav:alice@example.se``) and the problem, never the password.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.caldav.client import CTAG_TAG, SYNC_TOKEN_TAG, CalDAVCollection
from connectors.calendars.caldav.config import CalDAVCalendarConfig, CalDAVConnectionConfig
from connectors.calendars.ics.parse import parse_ics
from connectors.calendars.limits import CalendarLimits
from connectors.retry import Sleep
from connectors.secrets import Secret, read_secret
from rules.errors import CalendarError, CalrefError
from rules.model import CalendarEvent

log = logging.getLogger(__name__)

STATE_VERSION = 1

Mode = Literal["sync-token", "ctag", "window"]
Parser = Callable[..., list[CalendarEvent]]


def _href(url: object) -> str:
    """The unquoted path of a resource URL: how resources are named in the state."""
    return unquote(urlsplit(str(url)).path)


class CalDAVSource:
    """One CalDAV calendar collection of one user (implements ``CalendarSource``)."""

    def __init__(
        self,
        *,
        calendar_url: str,
        mailbox: Mailbox,
        source_id: str | None = None,
        username: str | None = None,
        password: Secret | None = None,
        mode: Literal["auto", "sync-token", "ctag", "window"] = "auto",
        timeout_seconds: float = 30.0,
        verify_tls: bool = True,
        throttle_retries: int = 3,
        max_retry_wait: float = 60.0,
        sleep: Sleep = time.sleep,
        parser: Parser | None = None,
        limits: CalendarLimits | None = None,
    ) -> None:
        self._limits = limits
        self._url = calendar_url if calendar_url.endswith("/") else calendar_url + "/"
        self._mailbox = mailbox
        self._id = source_id or f"caldav:{mailbox.email}"
        self._mode = mode
        self._parser = parser
        self._dav = CalDAVCollection(
            self._url,
            self._id,
            username=username,
            password=password,
            timeout_seconds=timeout_seconds,
            verify_tls=verify_tls,
            throttle_retries=throttle_retries,
            max_retry_wait=max_retry_wait,
            sleep=sleep,
        )

    @property
    def id(self) -> str:
        return self._id

    # -- public -----------------------------------------------------------
    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        """Read the window (``state`` None) or the changes since ``state``."""
        if window.start.tzinfo is None or window.end.tzinfo is None:
            raise CalrefError(f"{self._id}: sync window start and end must be timezone-aware")
        previous = self._load_state(state, window) if state is not None else None
        if previous is None or state is None:
            return self._full(window)
        if previous["mode"] == "sync-token":
            return self._incremental(window, previous, state)
        if previous["mode"] == "ctag":
            props = self._dav.collection_props()
            ctag = props.get(CTAG_TAG)
            if ctag is not None and ctag == previous.get("ctag"):
                return SyncResult(events=[], full=False, state=state)
            return self._full(window, props)
        return self._full(window, {})  # window mode: the server offers neither; just re-read

    # -- state ------------------------------------------------------------
    def _load_state(self, state: str, window: SyncWindow) -> dict[str, Any] | None:
        """The decoded state, or None when it is unreadable or made for another day."""
        try:
            data = json.loads(state)
            ok = (
                isinstance(data, dict)
                and data.get("v") == STATE_VERSION
                and data.get("url") == self._url
                and data.get("mode") in ("sync-token", "ctag", "window")
                and isinstance(data.get("hrefs"), dict)
            )
        except ValueError:
            ok = False
        if not ok:
            log.warning("%s: stored sync state is unreadable; doing a full sync", self._id)
            return None
        if data.get("days") != _days(window):
            return None
        result: dict[str, Any] = data
        return result

    def _state(
        self, window: SyncWindow, mode: Mode, props: dict[str, Any], hrefs: dict[str, list[str]]
    ) -> str:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "url": self._url,
                "mode": mode,
                "days": _days(window),
                "token": props.get(SYNC_TOKEN_TAG),
                "ctag": props.get(CTAG_TAG),
                "hrefs": hrefs,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    # -- full sync ----------------------------------------------------------
    def _full(self, window: SyncWindow, props: dict[str, Any] | None = None) -> SyncResult:
        """Read the whole window; ``props`` are the collection's token/ctag if just read."""
        if props is None:
            props = {} if self._mode == "window" else self._dav.collection_props()
        mode = self._choose_mode(props)
        calendar = self._dav.calendar()
        found = self._dav.call(
            "reading the window",
            lambda: calendar.search(
                start=window.start,
                end=window.end,
                event=True,
                expand=False,
                post_filter=False,
            ),
        )
        events: list[CalendarEvent] = []
        hrefs: dict[str, list[str]] = {}
        for obj in found:
            parsed = self._parse(_href(obj.url), obj.data, window)
            if parsed:
                events.extend(parsed)
                hrefs[_href(obj.url)] = sorted({e.key for e in parsed})
        return SyncResult(events=events, full=True, state=self._state(window, mode, props, hrefs))

    def _choose_mode(self, props: dict[str, Any]) -> Mode:
        if self._mode != "auto":
            wanted: Mode = self._mode
            tag = {"sync-token": SYNC_TOKEN_TAG, "ctag": CTAG_TAG}.get(wanted)
            if tag is not None and not props.get(tag):
                raise CalendarError(
                    self._id, f"the server offers no {tag} on {self._url}; set sync: auto"
                )
            return wanted
        if props.get(SYNC_TOKEN_TAG):
            return "sync-token"
        if props.get(CTAG_TAG):
            return "ctag"
        return "window"

    # -- incremental sync (RFC 6578) ------------------------------------------
    def _incremental(self, window: SyncWindow, previous: dict[str, Any], state: str) -> SyncResult:
        """The changes since ``previous`` (decoded from ``state``); ``state`` itself, with no
        event, when the server reports none and the same sync token (nothing to store)."""
        calendar = self._dav.calendar()
        token = previous.get("token")
        changes = self._dav.call(
            "reading changes (sync-collection)",
            lambda: calendar.get_objects_by_sync_token(
                sync_token=token, load_objects=False, disable_fallback=True
            ),
            sync_report=True,
        )
        if getattr(changes, "truncated", False):
            log.warning("%s: the server truncated its change list; re-reading the window", self._id)
            return self._full(window)
        deleted = {_href(u) for u in changes.deleted_urls}
        changed = {_href(o.url): o.url for o in changes if _href(o.url) not in deleted}
        if not deleted and not changed and changes.sync_token == token:
            return SyncResult(events=[], full=False, state=state)
        old: dict[str, list[str]] = {k: list(v) for k, v in previous["hrefs"].items()}
        hrefs = dict(old)
        events: list[CalendarEvent] = []
        removed: set[str] = set()
        for href in deleted:
            removed.update(hrefs.pop(href, []))
        if changed:
            loaded = self._dav.call(
                "fetching changed events (calendar-multiget)",
                lambda: calendar.multiget(list(changed.values())),
            )
            for obj in loaded:
                href = _href(obj.url)
                if obj.data is None:  # deleted between the two requests
                    removed.update(hrefs.pop(href, []))
                    continue
                parsed = self._parse(href, obj.data, window)
                if parsed is None:  # unreadable: keep what we had
                    continue
                keys = sorted({e.key for e in parsed})
                removed.update(set(old.get(href, [])) - set(keys))
                events.extend(parsed)
                if keys:
                    hrefs[href] = keys
                else:
                    hrefs.pop(href, None)
        removed -= {e.key for e in events}
        props = {SYNC_TOKEN_TAG: changes.sync_token, CTAG_TAG: previous.get("ctag")}
        return SyncResult(
            events=events,
            full=False,
            removed=sorted(removed),
            state=self._state(window, "sync-token", props, hrefs),
        )

    # -- helpers ----------------------------------------------------------------
    def _parse(self, href: str, data: str | None, window: SyncWindow) -> list[CalendarEvent] | None:
        """The occurrences of one resource in the window; None when it cannot be read."""
        if not data:
            return []
        parser = self._parser or parse_ics
        bounds = {"limits": self._limits} if self._limits is not None else {}
        try:
            return parser(data, mailbox=self._mailbox, window=window, source=self._id, **bounds)
        except CalrefError as err:
            log.warning("%s: skipping unreadable calendar object %s: %s", self._id, href, err)
            return None


def _days(window: SyncWindow) -> list[str]:
    """The UTC days a window starts and ends on: a state is only reused within them."""
    return [
        window.start.astimezone(UTC).date().isoformat(),
        window.end.astimezone(UTC).date().isoformat(),
    ]


def calendar_url(
    connection: CalDAVConnectionConfig, entry: CalDAVCalendarConfig, mailbox: Mailbox
) -> str:
    """The absolute calendar collection URL for ``mailbox``, placeholders filled in."""
    path = entry.url.format_map(
        {
            "email": mailbox.email,
            "local": mailbox.email.partition("@")[0],
            "user_id": mailbox.user_id,
        }
    )
    return urljoin(connection.url, path)


def build_source(
    connection: CalDAVConnectionConfig,
    calendar: CalDAVCalendarConfig,
    mailbox: Mailbox,
    *,
    limits: CalendarLimits | None = None,
    base_dir: Path | None = None,
) -> CalDAVSource:
    """The source for ``mailbox``'s CalDAV calendar; reads the password from env or file.

    Each calendar object is parsed within ``limits``; ``base_dir`` is not used (a CalDAV
    entry names no file).
    """
    entry = calendar
    login = entry if entry.username else connection
    password = None
    if login.password_env or login.password_file:
        password = read_secret(
            env=login.password_env,
            file=login.password_file,
            what=f"caldav password for {login.username}",
        )
    source_id = f"caldav:{mailbox.email}" + (f"/{entry.name}" if entry.name else "")
    return CalDAVSource(
        calendar_url=calendar_url(connection, entry, mailbox),
        mailbox=mailbox,
        source_id=source_id,
        username=login.username,
        password=password,
        mode=entry.sync,
        timeout_seconds=connection.timeout_seconds,
        verify_tls=connection.verify_tls,
        throttle_retries=connection.throttle_retries,
        max_retry_wait=connection.max_retry_wait,
        limits=limits,
    )
