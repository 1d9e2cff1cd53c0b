"""Recurring series in a calendarView delta: occurrences take their fields from the master.

calendarView delta sends an occurrence of a series in a sparse shape: only
``@odata.type``, ``@odata.etag``, ``id``, ``seriesMasterId``, ``type``,
``start`` and ``end`` (microsoft-graph-docs issues #7632 and #22197; plain
``calendarView`` and ``GET /events/{id}`` return full events). Everything
else an occurrence has (subject, showAs, sensitivity, responseStatus,
organizer, categories, isAllDay, isCancelled) is the series master's, so the
source reads the master once per series (``GET /users/{mb}/events/{masterId}``)
and derives each occurrence from it. Exceptions are real items with their own
fields; they are used as sent, or fetched one by one when sent sparse.

``MasterCache`` keeps masters across syncs of one source (in memory, bounded,
least recently used dropped first). A cached master is used for an occurrence
only when that occurrence's ETag proves nothing changed since it was read:

- the occurrence's ``@odata.etag`` equals the master's ETag (Exchange computes
  an occurrence from its master, so they change together), or
- it equals the ETag that very occurrence had when the master was read (a
  replayed delta entry, or the same occurrence in a full resync).

Any other ETag (or none) means the representation changed — an edit of the
series changes every occurrence's ETag — and the master is read again, once
for all its occurrences in that round. A delta entry for the master itself
(``type: seriesMaster``, not emitted as an event) refreshes or drops it, and an
``@removed`` entry for its id drops it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from connectors.calendars.graph.mapping import REQUIRED_FIELDS, missing_fields

# What an occurrence inherits from its master: the fields ``to_event`` reads but its own
# times and type (which the sparse shape carries) and iCalUId (the uid of an occurrence is
# its seriesMasterId, never the master's iCalUId).
_OWN_FIELDS = frozenset({"start", "end", "type", "iCalUId"})
INHERITED_FIELDS = (*(name for name in REQUIRED_FIELDS if name not in _OWN_FIELDS), "organizer")
MAX_MASTERS = 500  # per source; a mailbox with more live series re-reads the oldest


def is_sparse_occurrence(item: dict[str, Any]) -> bool:
    """An occurrence that lacks fields but names its master (the delta's sparse shape)."""
    master = item.get("seriesMasterId")
    return (
        item.get("type") == "occurrence"
        and isinstance(master, str)
        and bool(master)
        and bool(missing_fields(item))
    )


def derive_occurrence(master: dict[str, Any], occurrence: dict[str, Any]) -> dict[str, Any]:
    """The occurrence with the master's fields filled in (its own id, times and type win)."""
    inherited = {name: master[name] for name in INHERITED_FIELDS if name in master}
    return {**inherited, **occurrence}


def _etag(item: dict[str, Any]) -> str | None:
    tag = item.get("@odata.etag")
    return tag if isinstance(tag, str) and tag else None


@dataclass
class _Entry:
    fields: dict[str, Any]
    etag: str | None  # the master's own ETag when it was read
    seen: dict[str, str] = field(default_factory=dict)  # occurrence id -> its ETag then


class MasterCache:
    """Series masters of one source, valid while their occurrences' ETags say so."""

    def __init__(self, limit: int = MAX_MASTERS) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, master_id: str, occurrences: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The cached master if every occurrence's ETag shows it unchanged, else None."""
        entry = self._entries.get(master_id)
        if entry is None:
            return None
        for occurrence in occurrences:
            tag = _etag(occurrence)
            if tag is None:
                return None
            if tag != entry.etag and entry.seen.get(str(occurrence.get("id"))) != tag:
                return None
        self._entries.move_to_end(master_id)
        return entry.fields

    def store(
        self, master_id: str, master: dict[str, Any], occurrences: list[dict[str, Any]]
    ) -> None:
        """Remember a freshly read master and the ETags its occurrences had this round."""
        seen = {str(o.get("id")): tag for o in occurrences if (tag := _etag(o)) is not None}
        self._entries[master_id] = _Entry(dict(master), _etag(master), seen)
        self._entries.move_to_end(master_id)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def note_master(self, item: dict[str, Any]) -> None:
        """A delta entry for a master: keep it when complete, else forget the stale copy."""
        master_id = item.get("id")
        if not isinstance(master_id, str):
            return
        if all(name in item for name in INHERITED_FIELDS):
            self.store(master_id, item, [])
        else:
            self.forget(master_id)

    def forget(self, master_id: str) -> None:
        self._entries.pop(master_id, None)
