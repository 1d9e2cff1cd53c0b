"""The store's calendar side: each source's sync state and the last known events.

``apply_sync`` stores a successful sync (full or incremental) in one
transaction, ``touch_sources`` the times of many polls that found nothing changed
(one transaction for all), ``record_sync_failure`` counts failures (the events are kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from connectors.calendars.base import SyncResult
from rules.model import CalendarEvent
from sync.store import records as rec
from sync.store.base import EVENTS, SOURCES, StoreBase, chunked, source_record
from sync.store.models import SourceRow


class SourceStore(StoreBase):
    """Calendar sources' sync state and their events (SQLAlchemy Core: start-up syncs all)."""

    def ensure_source(self, source_id: str, user_id: str) -> rec.SourceState:
        with self._conn() as conn:
            row = conn.execute(_SOURCE_BY_ID, {"b_id": source_id}).first()
            if row is None:
                conn.execute(_INSERT_SOURCE, _new_source(source_id, user_id))
                return source_record(_Fields(_new_source(source_id, user_id)))
            return source_record(row)

    def ensure_sources(self, sources: Sequence[tuple[str, str]]) -> None:
        """``ensure_source`` for many ``(source id, user id)`` pairs in one transaction."""
        with self._conn() as conn:
            known = set(conn.scalars(select(SOURCES.c.id)))
            new = {sid: uid for sid, uid in sources if sid not in known}
            if new:
                conn.execute(_INSERT_SOURCE, [_new_source(s, u) for s, u in new.items()])

    def source(self, source_id: str) -> rec.SourceState | None:
        """One source's state (None when it was never stored)."""
        with self._read() as conn:
            row = conn.execute(_SOURCE_BY_ID, {"b_id": source_id}).first()
        return None if row is None else source_record(row)

    def sources(self) -> list[rec.SourceState]:
        with self._read() as conn:
            return [source_record(r) for r in conn.execute(select(SOURCES).order_by(SOURCES.c.id))]

    def apply_sync(self, source_id: str, user_id: str, result: SyncResult, now: datetime) -> bool:
        """Store a successful sync's events and state; True when the events changed."""
        with self._conn() as conn:
            rows = conn.execute(_EVENTS_OF_SOURCE, {"b_source": source_id})
            current = {r.key: r.data for r in rows}
            gone = set(result.removed) & current.keys()
            if result.full:
                gone |= current.keys() - {ev.key for ev in result.events}
            for key in gone:
                del current[key]
            added: dict[str, str] = {}
            changed_data: dict[str, str] = {}
            for event in result.events:
                text = rec.event_to_text(event)
                if event.key not in current and event.key not in added:
                    added[event.key] = text
                elif current.get(event.key, added.get(event.key)) != text:
                    if event.key in added:
                        added[event.key] = text
                    else:
                        changed_data[event.key] = text
                        current[event.key] = text
            if gone:
                conn.execute(
                    _DELETE_EVENT, [{"b_source": source_id, "b_key": k} for k in sorted(gone)]
                )
            if added:
                conn.execute(
                    _INSERT_EVENT,
                    [
                        {"source_id": source_id, "key": k, "user_id": user_id, "data": d}
                        for k, d in added.items()
                    ],
                )
            if changed_data:
                conn.execute(
                    _UPDATE_EVENT,
                    [
                        {"b_source": source_id, "b_key": k, "b_data": d}
                        for k, d in changed_data.items()
                    ],
                )
            state = {
                "b_id": source_id,
                "state": result.state,
                "last_attempt": now,
                "last_success": now,
                "failures": 0,
                "backoff_until": None,
                "last_error": None,
            }
            if conn.execute(_SYNC_SUCCEEDED, state).rowcount == 0:
                del state["b_id"]
                conn.execute(_INSERT_SOURCE, _new_source(source_id, user_id) | state)
        return bool(gone or added or changed_data)

    def touch_sources(self, polls: Sequence[tuple[str, datetime]]) -> None:
        """Record polls that found nothing changed: ``(source id, when)``, one transaction.

        Only the times move (``last_attempt``, ``last_success``); the sync state and the
        events are what the last ``apply_sync`` wrote.
        """
        with self._conn() as conn:
            conn.execute(_TOUCH_SOURCE, [{"b_id": s, "b_at": at} for s, at in polls])

    def record_sync_failure(
        self, source_id: str, user_id: str, error: str, now: datetime, backoff_until: datetime
    ) -> int:
        """Record a failed sync (events are kept); returns the consecutive failure count."""
        with self._tx() as s:
            src = s.get(SourceRow, source_id)
            if src is None:
                src = SourceRow(id=source_id, user_id=user_id, failures=0)
                s.add(src)
            src.failures = (src.failures or 0) + 1
            src.last_attempt, src.last_error, src.last_error_at = now, error, now
            src.backoff_until = backoff_until
            return src.failures

    def events_for_user(self, user_id: str) -> list[CalendarEvent]:
        """The last known events of all the user's sources."""
        return self.events_for_users([user_id])[user_id]

    def events_for_users(self, user_ids: Sequence[str]) -> dict[str, list[CalendarEvent]]:
        """``events_for_user`` of many users, in a few queries."""
        out: dict[str, list[CalendarEvent]] = {u: [] for u in user_ids}
        e = EVENTS.c
        with self._read() as conn:
            for chunk in chunked(list(out)):
                query = (
                    select(e.user_id, e.data).where(e.user_id.in_(chunk)).order_by(e.user_id, e.key)
                )
                for row in conn.execute(query):
                    out[row.user_id].append(rec.event_from_text(row.data))
        return out


# statements built once (building a Core statement costs more CPU than running it)
_SOURCE_BY_ID = select(SOURCES).where(SOURCES.c.id == bindparam("b_id"))
_INSERT_SOURCE = insert(SOURCES)
_SYNC_SUCCEEDED = (
    update(SOURCES)
    .where(SOURCES.c.id == bindparam("b_id"))
    .values(
        {
            c: bindparam(c)
            for c in (
                "state",
                "last_attempt",
                "last_success",
                "failures",
                "backoff_until",
                "last_error",
            )
        }
    )
)
_TOUCH_SOURCE = (
    update(SOURCES)
    .where(SOURCES.c.id == bindparam("b_id"))
    .values(last_attempt=bindparam("b_at"), last_success=bindparam("b_at"))
)
_EVENTS_OF_SOURCE = select(EVENTS.c.key, EVENTS.c.data).where(
    EVENTS.c.source_id == bindparam("b_source")
)
_EVENT_KEY = (EVENTS.c.source_id == bindparam("b_source")) & (EVENTS.c.key == bindparam("b_key"))
_DELETE_EVENT = delete(EVENTS).where(_EVENT_KEY)
_INSERT_EVENT = insert(EVENTS)
_UPDATE_EVENT = update(EVENTS).where(_EVENT_KEY).values(data=bindparam("b_data"))


class _Fields:
    """Attribute access to a dict (a new source's values as ``source_record`` reads them)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _new_source(source_id: str, user_id: str) -> dict[str, Any]:
    return {
        "id": source_id,
        "user_id": user_id,
        "state": None,
        "last_attempt": None,
        "last_success": None,
        "last_error": None,
        "last_error_at": None,
        "failures": 0,
        "backoff_until": None,
    }
