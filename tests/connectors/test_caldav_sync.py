"""CalDAV source against a real Radicale server: what sync-token increments send, the modes.

What every source does (first sync, an edit, a removed occurrence, an expired
token, an unreadable state) is in ``test_caldav_contract``; these are the
CalDAV cases on top: creates, moves, cancellations and deletions, overrides,
shortened series, several changes in one increment, and the ctag and window
modes. Each test gets its own calendar collection on one shared Radicale
server. After every change the incremental result, applied to what the caller
already knew, must equal what a fresh full window sync reports.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from caldav_ics import single, vcalendar, vevent, weekly
from radicale_server import CalendarWriter, RadicaleServer

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.caldav.source import CalDAVSource
from rules.model import CalendarEvent

WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC))
MAILBOX = Mailbox(user_id="alice", email="alice@example.se", org_domains=("example.se",))
MAR2 = "series/2026-03-02T09:00:00+00:00"
MAR9 = "series/2026-03-09T09:00:00+00:00"
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[RadicaleServer]:
    with RadicaleServer() as srv:
        yield srv


@pytest.fixture
def calendar(server: RadicaleServer) -> CalendarWriter:
    return CalendarWriter(server, f"/alice/cal{next(_names)}/").create()


def source_for(calendar: CalendarWriter, **kw: object) -> CalDAVSource:
    return CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX, **kw)  # type: ignore[arg-type]


def apply(store: dict[str, CalendarEvent], result: SyncResult) -> dict[str, CalendarEvent]:
    """What a caller knows after applying ``result``."""
    known = {} if result.full else dict(store)
    for key in result.removed:
        known.pop(key, None)
    known.update({e.key: e for e in result.events})
    return known


class Follower:
    """Keeps the caller's view in step and checks it against a fresh full sync."""

    def __init__(self, calendar: CalendarWriter) -> None:
        self.calendar = calendar
        self.source = source_for(calendar)
        first = self.source.sync(WINDOW, None)
        assert first.full
        self.state = first.state
        self.known = apply({}, first)

    def step(self) -> SyncResult:
        result = self.source.sync(WINDOW, self.state)
        assert not result.full
        self.state = result.state
        self.known = apply(self.known, result)
        fresh = source_for(self.calendar).sync(WINDOW, None)
        assert self.known == {e.key: e for e in fresh.events}
        return result


def test_no_change_gives_empty_increment_with_one_request(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    follower = Follower(calendar)
    server.reset_count()
    result = follower.source.sync(WINDOW, follower.state)
    assert server.requests == [("REPORT", calendar.path)]
    assert (result.events, result.removed, result.full) == ([], [], False)


def test_created_moved_cancelled_and_deleted_events_follow(calendar: CalendarWriter) -> None:
    follower = Follower(calendar)
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    created = follower.step()
    assert [e.key for e in created.events] == ["a"] and created.removed == []

    calendar.put("a.ics", single("a", "20260304T080000Z", "20260304T090000Z"))
    moved = follower.step()
    assert [(e.key, e.start) for e in moved.events] == [("a", datetime(2026, 3, 4, 8, tzinfo=UTC))]
    assert moved.removed == []

    calendar.put(
        "a.ics", single("a", "20260304T080000Z", "20260304T090000Z", extra="STATUS:CANCELLED\n")
    )
    cancelled = follower.step()
    assert [(e.key, e.cancelled) for e in cancelled.events] == [("a", True)]

    calendar.delete("a.ics")
    deleted = follower.step()
    assert (deleted.events, deleted.removed) == ([], ["a"])
    assert follower.known == {}


def test_event_moved_out_of_the_window_is_removed(calendar: CalendarWriter) -> None:
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    follower = Follower(calendar)
    calendar.put("a.ics", single("a", "20260403T130000Z", "20260403T140000Z"))
    result = follower.step()
    assert (result.events, result.removed) == ([], ["a"])


def test_moved_override_is_an_upsert_of_the_same_occurrence(calendar: CalendarWriter) -> None:
    calendar.put("series.ics", weekly("series"))
    follower = Follower(calendar)
    moved = vevent(
        "series", "20260310T150000Z", "20260310T160000Z", "Moved", recurrence_id="20260309T090000Z"
    )
    calendar.put("series.ics", weekly("series", overrides=(moved,)))
    result = follower.step()
    assert result.removed == []
    new = {e.key: e for e in result.events}[MAR9]
    assert (new.start, new.subject) == (datetime(2026, 3, 10, 15, tzinfo=UTC), "Moved")

    moved_again = vevent(
        "series", "20260311T070000Z", "20260311T080000Z", "Moved", recurrence_id="20260309T090000Z"
    )
    calendar.put("series.ics", weekly("series", overrides=(moved_again,)))
    again = {e.key: e for e in follower.step().events}[MAR9]
    assert again.start == datetime(2026, 3, 11, 7, tzinfo=UTC)


def test_cancelled_override_and_removed_override_follow(calendar: CalendarWriter) -> None:
    calendar.put("series.ics", weekly("series"))
    follower = Follower(calendar)
    cancelled = vevent(
        "series",
        "20260302T090000Z",
        "20260302T100000Z",
        "Weekly",
        extra="STATUS:CANCELLED\n",
        recurrence_id="20260302T090000Z",
    )
    calendar.put("series.ics", weekly("series", overrides=(cancelled,)))
    result = follower.step()
    assert {e.key: e.cancelled for e in result.events} == {MAR2: True, MAR9: False}

    calendar.put("series.ics", weekly("series"))  # the override is dropped again
    restored = follower.step()
    assert {e.key: e.cancelled for e in restored.events} == {MAR2: False, MAR9: False}


def test_series_shortened_and_then_deleted(calendar: CalendarWriter) -> None:
    calendar.put("series.ics", weekly("series"))
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    follower = Follower(calendar)
    calendar.put("series.ics", weekly("series", count=2))  # Feb 23 and Mar 2 only
    shortened = follower.step()
    assert shortened.removed == [MAR9]
    calendar.delete("series.ics")
    deleted = follower.step()
    assert (deleted.events, deleted.removed) == ([], [MAR2])
    assert set(follower.known) == {"a"}


def test_several_changes_between_polls_come_in_one_increment(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    calendar.put("b.ics", single("b", "20260305T130000Z", "20260305T140000Z"))
    follower = Follower(calendar)
    calendar.put("c.ics", single("c", "20260306T130000Z", "20260306T140000Z"))
    calendar.put("a.ics", single("a", "20260303T150000Z", "20260303T160000Z"))
    calendar.delete("b.ics")
    calendar.put("d.ics", single("d", "20260306T130000Z", "20260306T140000Z"))
    calendar.delete("d.ics")
    server.reset_count()
    result = follower.step()
    assert sorted(e.key for e in result.events) == ["a", "c"]
    assert result.removed == ["b"]
    # sync-collection + one multiget; the rest are the checking full sync (PROPFIND + REPORT)
    assert server.requests[:2] == [("REPORT", calendar.path), ("REPORT", calendar.path)]
    assert len(server.requests) == 4


def test_state_for_another_day_gives_a_full_window_sync(calendar: CalendarWriter) -> None:
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    calendar.put("b.ics", single("b", "20260316T130000Z", "20260316T140000Z"))
    source = source_for(calendar)
    state = source.sync(WINDOW, None).state
    later_same_day = SyncWindow(datetime(2026, 3, 2, 6, tzinfo=UTC), WINDOW.end)
    assert source.sync(later_same_day, state).full is False
    next_day = SyncWindow(datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 17, tzinfo=UTC))
    result = source.sync(next_day, state)
    assert result.full
    assert sorted(e.key for e in result.events) == ["a", "b"]


def test_ctag_mode_reads_nothing_more_when_unchanged_and_the_window_when_changed(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    source = source_for(calendar, mode="ctag")
    state = source.sync(WINDOW, None).state
    server.reset_count()
    unchanged = source.sync(WINDOW, state)
    assert server.requests == [("PROPFIND", calendar.path)]
    assert (unchanged.full, unchanged.events, unchanged.state) == (False, [], state)
    calendar.delete("a.ics")
    calendar.put("b.ics", single("b", "20260305T130000Z", "20260305T140000Z"))
    server.reset_count()
    changed = source.sync(WINDOW, state)
    assert changed.full and [e.key for e in changed.events] == ["b"]
    assert server.requests == [("PROPFIND", calendar.path), ("REPORT", calendar.path)]


def test_window_mode_rereads_the_window_every_time(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    calendar.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    source = source_for(calendar, mode="window")
    first = source.sync(WINDOW, None)
    calendar.put("b.ics", single("b", "20260305T130000Z", "20260305T140000Z"))
    server.reset_count()
    second = source.sync(WINDOW, first.state)
    assert server.requests == [("REPORT", calendar.path)]
    assert second.full and sorted(e.key for e in second.events) == ["a", "b"]


def test_every_field_survives_the_trip_through_the_server(calendar: CalendarWriter) -> None:
    extra = (
        "ORGANIZER:mailto:boss@partner.example.com\n"
        "ATTENDEE;PARTSTAT=TENTATIVE:mailto:alice@example.se\n"
        "CLASS:PRIVATE\nCATEGORIES:Customer,Travel\n"
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF\n"
    )
    calendar.put("f.ics", single("f", "20260304T100000Z", "20260304T113000Z", "Visit", extra))
    calendar.put(
        "d.ics",
        vcalendar(
            "BEGIN:VEVENT\nUID:d\nDTSTAMP:20260101T000000Z\nDTSTART;VALUE=DATE:20260305\n"
            "DTEND;VALUE=DATE:20260307\nSUMMARY:Conference\nTRANSP:TRANSPARENT\nEND:VEVENT\n"
        ),
    )
    events = {e.key: e for e in source_for(calendar).sync(WINDOW, None).events}
    f = events["f"]
    assert (f.subject, f.private, f.categories) == ("Visit", True, ("Customer", "Travel"))
    assert (f.show_as.value, f.response.value) == ("oof", "tentative")
    assert (f.organizer, f.organizer_kind.value) == ("boss@partner.example.com", "external")
    assert f.end == datetime(2026, 3, 4, 11, 30, tzinfo=UTC)
    d = events["d"]
    assert d.all_day and (str(d.start), str(d.end)) == ("2026-03-05", "2026-03-07")
    assert d.show_as.value == "free"


def test_a_missing_organizer_is_the_users_own_only_on_their_own_calendar(
    calendar: CalendarWriter,
) -> None:
    from dataclasses import replace

    from rules.model import OrganizerKind

    calendar.put("own.ics", single("own", "20260303T130000Z", "20260303T140000Z", "Gym #mobile"))
    calendar.put(
        "org.ics",
        single("org", "20260304T130000Z", "20260304T140000Z", extra="ORGANIZER:mailto:\n"),
    )
    calendar.put(
        "evil.ics",
        single(
            "evil",
            "20260305T130000Z",
            "20260305T140000Z",
            extra="ORGANIZER:mailto:evil@vendor.com@example.se\n",
        ),
    )

    def kinds(mailbox: Mailbox) -> dict[str, OrganizerKind]:
        source = CalDAVSource(calendar_url=calendar.url, mailbox=mailbox)
        return {e.uid: e.organizer_kind for e in source.sync(WINDOW, None).events}

    own = kinds(MAILBOX)
    assert own == {
        "own": OrganizerKind.SELF,
        "org": OrganizerKind.SELF,
        "evil": OrganizerKind.EXTERNAL,
    }
    shared = kinds(replace(MAILBOX, own_calendar=False))
    assert set(shared.values()) == {OrganizerKind.EXTERNAL}
