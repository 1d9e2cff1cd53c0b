"""Microsoft 365 calendars through Microsoft Graph: the source and ``build_source``.

One ``GraphCalendarSource`` reads one mailbox's primary calendar with
``GET /users/{mailbox}/calendarView/delta`` (app-only auth, requests and retries in
``connectors/calendars/graph/client.py``; each item becomes a ``CalendarEvent`` in
``mapping.py``). The first call for a window reads every page until the
``@odata.deltaLink``; later calls replay that link and return only changes.
Occurrences of a series arrive sparse and take their fields from the series
master, read once per series and cached (``series.py``). When the window
slides to a new day the added days are read with a bounded ``calendarView``
and the delta link is kept (``state.py``). When Graph rejects the link (410
Gone, ``syncStateNotFound``, ``resyncRequired``...) or the window moved too far,
the source does a full window sync itself and returns ``full=True``, so the
caller replaces what it knew and nothing is lost or duplicated. See
docs/calendars-graph.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.graph.client import GraphClient, GraphNotFound, shared_client
from connectors.calendars.graph.config import GraphCalendarConfig, GraphConnectionConfig
from connectors.calendars.graph.mapping import (
    SELECT_FIELDS,
    is_removed,
    missing_fields,
    time_in_window,
    to_event,
)
from connectors.calendars.graph.series import (
    MasterCache,
    derive_occurrence,
    is_sparse_occurrence,
)
from connectors.calendars.graph.state import DeltaState, load_state, next_midnight, plan
from connectors.calendars.limits import CalendarLimits
from rules.errors import CalendarError, SyncStateExpired
from rules.model import CalendarEvent

MAX_PAGES = 10_000  # a guard against a server that never ends a round


def build_source(
    connection: GraphConnectionConfig,
    calendar: GraphCalendarConfig,
    mailbox: Mailbox,
    *,
    limits: CalendarLimits | None = None,
    base_dir: Path | None = None,
) -> GraphCalendarSource:
    """The source for one user's Graph calendar, on the connection's shared client.

    ``limits`` and ``base_dir`` are not used: Graph answers JSON page by page, and a
    Graph entry names no file.
    """
    return GraphCalendarSource(shared_client(connection), calendar, mailbox)


class GraphCalendarSource:
    """One mailbox's primary calendar, read with calendarView delta.

    The mailbox is the entry's ``mailbox`` or else the user's email; ``client`` may be
    any ``GraphClient`` (tests and benchmarks give one made with their own transport).
    """

    def __init__(
        self, client: GraphClient, calendar: GraphCalendarConfig, mailbox: Mailbox
    ) -> None:
        address = (calendar.mailbox or mailbox.email).strip()
        if not address:
            raise CalendarError("graph:?", "no mailbox address: set the user's email or `mailbox`")
        self.client = client
        self.mailbox = mailbox
        self.address = address.lower()
        self._id = f"graph:{self.address}"
        self.masters = MasterCache()

    @property
    def id(self) -> str:
        return self._id

    def user_path(self) -> str:
        return f"{self.client.graph_url}/users/{quote(self.address, safe='@')}"

    # -- the protocol -------------------------------------------------------

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        if window.start.tzinfo is None or window.end.tzinfo is None:
            raise CalendarError(self.id, "the sync window must use timezone-aware datetimes")
        if window.end <= window.start:
            raise CalendarError(self.id, "the sync window ends before it starts")
        saved = self._load_state(state)
        if saved is not None:
            covered = plan(saved, window.start.astimezone(UTC), window.end.astimezone(UTC))
            if covered is not None:
                try:
                    return self._incremental(saved, covered)
                except SyncStateExpired:
                    pass  # the delta link is gone: a full window sync replaces everything
        return self._full(window)

    # -- rounds -------------------------------------------------------------

    def _full(self, window: SyncWindow) -> SyncResult:
        start = window.start.astimezone(UTC)
        end = next_midnight(window.end)  # later syncs that day stay inside this range
        for attempt in range(2):
            try:
                items, delta_link = self._round(self._initial_url(start, end))
                break
            except SyncStateExpired:
                if attempt == 1:
                    raise
        upserts, _removed, warnings = self._resolve(items)
        state = DeltaState(self.address, start, end, end, delta_link).dump()
        events = sorted(upserts.values(), key=lambda e: e.key)
        return SyncResult(events=events, full=True, state=state, warnings=warnings)

    def _incremental(self, saved: DeltaState, covered: datetime) -> SyncResult:
        """Replay the delta link; read added days (and a changed extension) with calendarView.

        Graph reports changes outside the delta link's range as ``@removed``
        (event-delta.md), so when the range has been extended, any ``@removed``
        entry may be an edit in the extension: the extension is then read again
        and what it holds is an upsert, not a removal.
        """
        items, delta_link = self._round(saved.delta)
        upserts, removed, warnings = self._resolve(items)
        reread: datetime | None = None
        if saved.covered > saved.end and removed:
            reread = saved.end
        elif covered > saved.covered:
            reread = saved.covered
        if reread is not None:
            view, skipped, view_warnings = self._resolve(self._view(reread, covered))
            upserts.update(view)
            removed -= view.keys()
            for key in skipped:  # unreadable there: no stale copy may linger
                upserts.pop(key, None)
                removed.add(key)
            warnings += view_warnings
        for key, event in list(upserts.items()):
            if not time_in_window(event, saved.start, covered):
                del upserts[key]
                removed.add(key)
        state = DeltaState(self.address, saved.start, saved.end, covered, delta_link).dump()
        events = sorted(upserts.values(), key=lambda e: e.key)
        return SyncResult(
            events=events, full=False, state=state, removed=sorted(removed), warnings=warnings
        )

    def _initial_url(self, start: datetime, end: datetime) -> str:
        query = f"startDateTime={_iso(start)}&endDateTime={_iso(end)}"
        return f"{self.user_path()}/calendarView/delta?{query}"

    def _round(self, url: str) -> tuple[list[dict[str, Any]], str]:
        """Follow ``@odata.nextLink`` (even empty pages) until an ``@odata.deltaLink``."""
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self.client.request(
                "GET",
                url,
                source=self.id,
                mailbox=self.address,
                what="calendarView delta",
                delta=True,
            ).body
            items.extend(self._page_items(page, "calendarView delta"))
            delta_link = page.get("@odata.deltaLink")
            if isinstance(delta_link, str):
                return items, delta_link
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str):
                raise CalendarError(
                    self.id, "calendarView delta: page has neither nextLink nor deltaLink"
                )
            url = next_link
        raise CalendarError(self.id, f"calendarView delta: no deltaLink after {MAX_PAGES} pages")

    def _view(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every event in [start, end) with plain ``calendarView`` (full items, all pages)."""
        url = f"{self.user_path()}/calendarView"
        params: dict[str, str] | None = {
            "startDateTime": _iso(start),
            "endDateTime": _iso(end),
            "$select": ",".join(SELECT_FIELDS),
            "$top": str(self.client.page_size),
        }
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self.client.request(
                "GET", url, params=params, source=self.id, mailbox=self.address, what="calendarView"
            ).body
            items.extend(self._page_items(page, "calendarView"))
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str):
                return items
            url, params = next_link, None
        raise CalendarError(self.id, f"calendarView: still paging after {MAX_PAGES} pages")

    def _page_items(self, page: dict[str, Any], what: str) -> list[dict[str, Any]]:
        value = page.get("value", [])
        if not isinstance(value, list):
            raise CalendarError(self.id, f"{what}: `value` is not a list")
        return [v for v in value if isinstance(v, dict)]

    def _resolve(
        self, items: list[dict[str, Any]]
    ) -> tuple[dict[str, CalendarEvent], set[str], list[str]]:
        """Upserts, removals and warnings of one round; the last mention of an id wins.

        Sparse occurrences are derived from their series master (one read per
        series, or none when cached); other items that lack fields are fetched
        one by one. An event Graph sends but calref cannot read is skipped with
        a warning (and counted as removed, so a stale copy does not linger).
        """
        latest: dict[str, dict[str, Any]] = {}
        for item in items:
            event_id = item.get("id")
            if isinstance(event_id, str) and event_id:
                latest.pop(event_id, None)  # keep order of the last mention
                latest[event_id] = item
        upserts: dict[str, CalendarEvent] = {}
        removed: set[str] = set()
        warnings: list[str] = []
        series: dict[str, list[dict[str, Any]]] = {}
        for event_id, item in latest.items():
            if is_removed(item):
                removed.add(event_id)
                self.masters.forget(event_id)
            elif item.get("type") == "seriesMaster":
                self.masters.note_master(item)  # not an event in the view itself
            elif is_sparse_occurrence(item):
                series.setdefault(str(item["seriesMasterId"]), []).append(item)
            elif missing_fields(item):
                fetched = self._fetch(event_id)
                if fetched is None:
                    removed.add(event_id)
                else:
                    self._add({**item, **fetched}, upserts, removed, warnings)
            else:
                self._add(item, upserts, removed, warnings)
        for master_id, occurrences in series.items():
            master = self.masters.lookup(master_id, occurrences)
            if master is None:
                master = self._fetch(master_id)
                if master is None:  # the series is gone
                    removed.update(str(o["id"]) for o in occurrences)
                    continue
                self.masters.store(master_id, master, occurrences)
            for occurrence in occurrences:
                self._add(derive_occurrence(master, occurrence), upserts, removed, warnings)
        return upserts, removed, warnings

    def _add(
        self,
        item: dict[str, Any],
        upserts: dict[str, CalendarEvent],
        removed: set[str],
        warnings: list[str],
    ) -> None:
        event_id = str(item["id"])
        try:
            upserts[event_id] = to_event(item, self.mailbox, self.id)
        except CalendarError as err:
            warnings.append(f"skipped: {err}")
            removed.add(event_id)

    def _fetch(self, event_id: str) -> dict[str, Any] | None:
        """One event (or series master) in full; None when Graph no longer has it."""
        url = f"{self.user_path()}/events/{quote(event_id, safe='')}"
        try:
            return self.client.request(
                "GET",
                url,
                params={"$select": ",".join(SELECT_FIELDS)},
                source=self.id,
                mailbox=self.address,
                what="get event",
            ).body
        except GraphNotFound:
            return None

    # -- state --------------------------------------------------------------

    def _load_state(self, state: str | None) -> DeltaState | None:
        """The saved state, or None when unreadable, foreign or linking off Graph."""
        saved = load_state(state, self.address)
        if saved is None:
            return None
        try:
            self.client.check_link(saved.delta, self.id)
        except CalendarError:
            return None
        return saved


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
