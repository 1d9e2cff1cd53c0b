"""The interface every calendar source implements, and helpers they share.

A source does an initial window sync (``state`` is None: every event in the
window, ``full=True``) and later incremental syncs from the opaque ``state``
it returned (changed events plus removed keys, ``full=False``). A source that
cannot do incremental sync simply answers every call with a full result.
Errors are ``rules.errors.CalendarError`` (``SyncStateExpired`` asks the caller
to retry with ``state=None``; ``ThrottledError`` carries ``retry_after``).

``split_shared`` reads the ``shared:`` key any calendar entry may carry, which
makes the source's ``Mailbox.own_calendar`` False (organizers are judged in
``connectors/calendars/organizer.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from connectors.calendars.limits import CalendarLimits
from rules.errors import CalendarError
from rules.model import CalendarEvent

__all__ = [
    "KEY_PROBLEM",
    "SHARED_KEY",
    "CalendarSource",
    "Connector",
    "Mailbox",
    "SyncResult",
    "SyncWindow",
    "split_shared",
]

SHARED_KEY = "shared"
"""The key every calendar entry may carry: ``shared: true`` for a calendar not the user's own."""

KEY_PROBLEM = "key_problem"
"""The pydantic error type of a config model's problem that is placed at its key rather than
at its value: a key that does not belong there, or the entry as a whole."""


@dataclass(frozen=True)
class Mailbox:
    """Whose calendar a source reads, and what it needs to classify organizers.

    ``own_calendar`` is False for a shared or subscribed calendar (config
    ``shared: true``): there an event without an organizer is external, not the
    user's own appointment (see ``classify_organizer``).
    """

    user_id: str
    email: str
    org_domains: tuple[str, ...] = ()
    timezone: str = "Europe/Stockholm"
    own_calendar: bool = True

    def zone(self, source: str) -> ZoneInfo:
        """The mailbox's time zone; an unknown name is a ``CalendarError`` of ``source``."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(
                source, f"unknown time zone {self.timezone!r} for {self.user_id}"
            ) from None


@dataclass(frozen=True)
class SyncWindow:
    """The time range (aware datetimes, end exclusive) the service plans for."""

    start: datetime
    end: datetime


@dataclass
class SyncResult:
    """What one sync call found.

    ``full``: ``events`` is everything in the window and replaces what the
    caller knew from this source. Otherwise ``events`` are upserts by
    ``CalendarEvent.key`` and ``removed`` are keys that no longer exist.
    ``warnings`` are entries the source skipped (e.g. one broken event in an
    ICS file), one readable line each, for the caller to report.
    """

    events: list[CalendarEvent]
    full: bool
    state: str | None = None
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class CalendarSource(Protocol):
    """One calendar of one user."""

    @property
    def id(self) -> str:
        """A stable name for this source, used in logs, errors and the store."""
        ...

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        """Read the window (``state`` None) or the changes since ``state``."""
        ...


class Connector(Protocol):
    """What each platform's package (``connectors/calendars/<kind>/__init__.py``) exports.

    ``ConnectionConfig`` validates the config file's ``connections: {<kind>: ...}``
    block (a model without fields for a kind that takes none, such as ics);
    ``CalendarConfig`` one ``{kind: <kind>, ...}`` calendar entry of a user (without its
    ``shared`` key); ``build_source`` makes the source of one such entry for
    ``mailbox``. Every package's ``build_source`` takes the same arguments:
    ``limits`` bound what reading the calendar may cost (``CalendarLimits()`` when
    None; the kinds that parse iCalendar use them) and ``base_dir`` is the folder that
    relative paths in the entry are read from (the working directory when None).
    """

    @property
    def ConnectionConfig(self) -> type[BaseModel]: ...

    @property
    def CalendarConfig(self) -> type[BaseModel]: ...

    def build_source(
        self,
        connection: Any,
        calendar: Any,
        mailbox: Mailbox,
        *,
        limits: CalendarLimits | None = None,
        base_dir: Path | None = None,
    ) -> CalendarSource: ...


def split_shared(entry: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """A calendar entry without its ``shared`` key (for the kind's own validation) and the
    key's value (False when absent). Raises ``ValueError`` unless it is true or false."""
    rest = {key: value for key, value in entry.items() if key != SHARED_KEY}
    shared = entry.get(SHARED_KEY, False)
    if not isinstance(shared, bool):
        raise ValueError(
            f"{SHARED_KEY} must be true (a shared or subscribed calendar) or false "
            f"(the user's own calendar, the default), not {shared!r}"
        )
    return rest, shared
