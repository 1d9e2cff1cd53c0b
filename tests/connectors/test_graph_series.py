"""Series in calendarView delta: sparse occurrences take the master's fields, read once and cached.

The double sends occurrences in the sparse shape the real service sends and
counts calls by kind, so each test states what one sync costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from graph_doubles import SPARSE_FIELDS, FakeGraph, event_json, series_json
from graph_fixture import BOX, fake_graph, graph_source

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.calendars.graph.series import INHERITED_FIELDS, MasterCache
from connectors.calendars.graph.source import GraphCalendarSource
from rules.model import ShowAs

WINDOW = SyncWindow(datetime(2024, 5, 6, tzinfo=UTC), datetime(2024, 5, 20, tzinfo=UTC))
MASTER = "AAMkStandupMaster="


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    yield from fake_graph()


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> GraphCalendarSource:
    return graph_source(monkeypatch, page_size=50)


def sync(fake: FakeGraph, source: GraphCalendarSource, state: str | None):
    """One sync and the Graph calls it cost, by kind."""
    mark = len(fake.graph_requests)
    result: SyncResult = source.sync(WINDOW, state)
    return result, dict(fake.calls(mark))


def test_double_sends_occurrences_sparse_and_never_the_master(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    fake.put_all(BOX, series_json(MASTER, count=3))
    source.sync(WINDOW, None)
    assert fake.graph_requests[0].url.path.endswith("/calendarView/delta")
    page = fake.graph_responses[0].json()
    assert [set(item) for item in page["value"]] == [set(SPARSE_FIELDS)] * 3
    assert all(item["type"] == "occurrence" for item in page["value"])


def test_first_sync_of_fourteen_daily_occurrences_reads_the_master_once(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    fake.put_all(BOX, series_json(MASTER, "Standup", count=14, showAs="oof"))
    result, calls = sync(fake, source, None)
    assert calls == {"delta": 1, "get": 1}  # was 1 + 14 with a GET per occurrence
    assert fake.graph_requests[1].url.path == f"/v1.0/users/{BOX}/events/{MASTER}"
    assert "subject" in fake.graph_requests[1].url.params["$select"].split(",")
    assert len(result.events) == 14
    assert {(e.subject, e.uid, e.show_as) for e in result.events} == {
        ("Standup", MASTER, ShowAs.OOF)
    }
    starts = sorted(e.start for e in result.events)
    assert starts[0] == datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    assert starts[-1] == datetime(2024, 5, 19, 8, 0, tzinfo=UTC)
    assert {e.recurrence_id for e in result.events} == {s.isoformat() for s in starts}


def test_a_private_series_gives_private_occurrences(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    fake.put_all(BOX, series_json(MASTER, "Therapy", count=2, sensitivity="private"))
    result, _ = sync(fake, source, None)
    assert [e.private for e in result.events] == [True, True]


def test_quiet_poll_costs_one_call_and_a_series_edit_one_master_read(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    fake.put_all(BOX, series_json(MASTER, "Standup", count=14))
    first, _ = sync(fake, source, None)
    quiet, calls = sync(fake, source, first.state)
    assert (calls, quiet.events, quiet.removed) == ({"delta": 1}, [], [])
    fake.edit_series(BOX, MASTER, subject="Daily sync", showAs="tentative")
    edited, calls = sync(fake, source, quiet.state)
    assert calls == {"delta": 1, "get": 1}
    assert len(edited.events) == 14
    assert {(e.subject, e.show_as) for e in edited.events} == {("Daily sync", ShowAs.TENTATIVE)}


def test_cached_master_serves_a_full_resync_until_the_series_changes(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    fake.put_all(BOX, series_json(MASTER, "Standup", count=14))
    first, _ = sync(fake, source, None)
    fake.evict_tokens()
    resync, calls = sync(fake, source, first.state)
    assert resync.full and len(resync.events) == 14
    assert calls == {"delta": 2}  # the 410, then the new round; the master is cached
    fake.edit_series(BOX, MASTER, subject="Moved to Teams")
    fake.evict_tokens()
    again, calls = sync(fake, source, resync.state)
    assert calls == {"delta": 2, "get": 1}  # the occurrences' ETags changed
    assert {e.subject for e in again.events} == {"Moved to Teams"}


def test_replayed_occurrence_with_its_old_etag_uses_the_cache(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    items = series_json(MASTER, count=2)
    fake.put_all(BOX, items)
    first, _ = sync(fake, source, None)
    fake.put(BOX, items[1])  # the same occurrence again, unchanged (a replay)
    replay, calls = sync(fake, source, first.state)
    assert calls == {"delta": 1}
    assert [e.key for e in replay.events] == [items[1]["id"]]


def test_occurrence_without_an_etag_is_never_served_from_the_cache(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    items = series_json(MASTER, count=2)
    for item in items:
        item.pop("@odata.etag")
    fake.put_all(BOX, items)
    first, _ = sync(fake, source, None)
    fake.put(BOX, items[1])
    _, calls = sync(fake, source, first.state)
    assert calls == {"delta": 1, "get": 1}


def test_two_series_cost_one_master_read_each(fake: FakeGraph, source: GraphCalendarSource) -> None:
    fake.put_all(BOX, series_json(MASTER, "Standup", count=5))
    fake.put_all(BOX, series_json("AAMkLunchMaster=", "Lunch", count=5, showAs="free"))
    fake.put(BOX, event_json("AAMkSingle=", "One-off"))
    result, calls = sync(fake, source, None)
    assert calls == {"delta": 1, "get": 2}
    subjects = sorted(e.subject for e in result.events)
    assert subjects == ["Lunch"] * 5 + ["One-off"] + ["Standup"] * 5


def test_exception_is_taken_as_sent_or_fetched_alone_when_sparse(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    items = series_json(MASTER, "Standup", count=3)
    moved = dict(
        items[2],
        type="exception",
        subject="Standup (moved)",
        start={"dateTime": "2024-05-08T10:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2024-05-08T10:15:00.0000000", "timeZone": "UTC"},
    )
    fake.put_all(BOX, [*items[:2], items[3], moved])
    result, calls = sync(fake, source, None)
    assert calls == {"delta": 1, "get": 1}  # the master; the exception came in full
    by_key = {e.key: e for e in result.events}
    assert by_key[moved["id"]].subject == "Standup (moved)"
    assert by_key[moved["id"]].recurrence_id == "2024-05-07T08:00:00+00:00"

    fake.sparse_exceptions = True
    fake.evict_tokens()
    source.masters.forget(MASTER)
    again, calls = sync(fake, source, result.state)
    assert calls == {"delta": 2, "get": 2}  # the master, and the exception by itself
    assert {e.key: e.subject for e in again.events}[moved["id"]] == "Standup (moved)"


def test_deleted_series_is_removed_and_forgotten(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    items = series_json(MASTER, count=3)
    fake.put_all(BOX, items)
    first, _ = sync(fake, source, None)
    assert len(source.masters) == 1
    for item in items:
        fake.delete(BOX, item["id"])
    gone, calls = sync(fake, source, first.state)
    assert calls == {"delta": 1}
    assert gone.removed == sorted(i["id"] for i in items)
    assert len(source.masters) == 0


def test_occurrences_whose_master_is_gone_are_removed(
    fake: FakeGraph, source: GraphCalendarSource
) -> None:
    items = series_json(MASTER, count=2)
    fake.put_all(BOX, items[1:])  # the master was deleted between the round and the read
    result, calls = sync(fake, source, None)
    assert calls == {"delta": 1, "get": 1}
    assert result.events == []


def test_master_cache_drops_the_least_recently_used_beyond_its_limit() -> None:
    cache = MasterCache(limit=2)
    occurrence = {"id": "occ", "@odata.etag": 'W/"1"'}
    for master_id in ("a", "b"):
        cache.store(master_id, {"@odata.etag": 'W/"1"'}, [occurrence])
    assert cache.lookup("a", [occurrence]) is not None  # "a" is now the most recent
    cache.store("c", {"@odata.etag": 'W/"1"'}, [occurrence])
    assert len(cache) == 2
    assert cache.lookup("b", [occurrence]) is None
    assert cache.lookup("a", [occurrence]) is not None


def test_a_delta_entry_for_a_master_refreshes_a_complete_copy_and_drops_a_partial_one() -> None:
    cache = MasterCache()
    occurrence = {"id": "occ", "@odata.etag": 'W/"2"'}
    complete = {name: f"x-{name}" for name in INHERITED_FIELDS}
    cache.note_master({**complete, "id": MASTER, "@odata.etag": 'W/"2"'})
    assert cache.lookup(MASTER, [occurrence]) == {**complete, "id": MASTER, "@odata.etag": 'W/"2"'}
    cache.note_master({"id": MASTER, "subject": "only the changed field"})
    assert cache.lookup(MASTER, [occurrence]) is None and len(cache) == 0
