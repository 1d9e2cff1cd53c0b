"""The store's calendar side: each source's sync state and the last known events.

``apply_sync`` stores a successful sync (full or incremental) in one
transaction, ``record_sync_failure`` counts failures (the events are kept).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from connectors.calendars.base import SyncResult
from rules.model import CalendarEvent
from sync.store import records as rec
from sync.store.base import StoreBase, source_record
from sync.store.models import EventRow, SourceRow


class SourceStore(StoreBase):
    """Calendar sources' sync state and their events."""

    def ensure_source(self, source_id: str, user_id: str) -> rec.SourceState:
        with self._tx() as s:
            row = s.get(SourceRow, source_id)
            if row is None:
                row = SourceRow(id=source_id, user_id=user_id, failures=0)
                s.add(row)
                s.flush()
            return source_record(row)

    def sources(self) -> list[rec.SourceState]:
        with self._tx() as s:
            return [source_record(r) for r in s.scalars(select(SourceRow).order_by(SourceRow.id))]

    def apply_sync(self, source_id: str, user_id: str, result: SyncResult, now: datetime) -> bool:
        """Store a successful sync's events and state; True when the events changed."""
        changed = False
        with self._tx() as s:
            current = {
                r.key: r for r in s.scalars(select(EventRow).where(EventRow.source_id == source_id))
            }
            if result.full:
                keep = {e.key for e in result.events}
                for key, row in current.items():
                    if key not in keep:
                        s.delete(row)
                        changed = True
            for key in result.removed:
                if key in current:
                    s.delete(current.pop(key))
                    changed = True
            for event in result.events:
                text = rec.event_to_text(event)
                existing = current.get(event.key)
                if existing is None:
                    s.add(EventRow(source_id=source_id, key=event.key, user_id=user_id, data=text))
                    current[event.key] = EventRow(key=event.key, data=text)
                    changed = True
                elif existing.data != text:
                    existing.data = text
                    changed = True
            src = s.get(SourceRow, source_id)
            if src is None:
                src = SourceRow(id=source_id, user_id=user_id, failures=0)
                s.add(src)
            src.state, src.last_attempt, src.last_success = result.state, now, now
            src.failures, src.backoff_until, src.last_error = 0, None, None
        return changed

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
        with self._tx() as s:
            rows = s.scalars(
                select(EventRow).where(EventRow.user_id == user_id).order_by(EventRow.key)
            )
            return [rec.event_from_text(r.data) for r in rows]

    def forget_events(self, source_id: str) -> None:
        with self._tx() as s:
            s.execute(delete(EventRow).where(EventRow.source_id == source_id))
