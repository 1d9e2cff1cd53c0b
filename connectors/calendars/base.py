"""The interface every calendar source implements, and helpers they share.

A source does an initial window sync (``state`` is None: every event in the
window, ``full=True``) and later incremental syncs from the opaque ``state``
it returned (changed events plus removed keys, ``full=False``). A source that
cannot do incremental sync simply answers every call with a full result.
Errors are ``rules.errors.CalendarError`` (``SyncStateExpired`` asks the caller
to retry with ``state=None``; ``ThrottledError`` carries ``retry_after``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.errors import CalendarError
from rules.model import CalendarEvent, OrganizerKind


@dataclass(frozen=True)
class Mailbox:
    """Whose calendar a source reads, and what it needs to classify organizers."""

    user_id: str
    email: str
    org_domains: tuple[str, ...] = ()
    timezone: str = "Europe/Stockholm"

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


def classify_organizer(
    organizer: str | None, owner_email: str, org_domains: tuple[str, ...]
) -> OrganizerKind:
    """Self for the owner (or no organizer), internal on an org domain, else external."""
    if not organizer:
        return OrganizerKind.SELF
    address = organizer.strip().lower().removeprefix("mailto:")
    if address == owner_email.strip().lower():
        return OrganizerKind.SELF
    domain = address.rpartition("@")[2]
    domains = {d.lower() for d in org_domains}
    owner_domain = owner_email.strip().lower().rpartition("@")[2]
    if owner_domain:
        domains.add(owner_domain)
    if domain in domains or any(domain.endswith("." + d) for d in domains):
        return OrganizerKind.INTERNAL
    return OrganizerKind.EXTERNAL
