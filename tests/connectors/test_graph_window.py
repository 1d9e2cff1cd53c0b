"""The service's sliding window on Graph: the delta link is kept and added days are read alone.

Virtual time: the test plays the service's clock (window = now - 1 day ..
now + 14 days) over days of polls against the stateful double, which lists
only events inside a delta link's range and reports changes outside it as
``@removed``, as the real service does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from graph_doubles import FakeGraph, event_json
from graph_fixture import BOX, fake_graph, graph_source

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.calendars.graph.source import GraphCalendarSource
from connectors.calendars.graph.state import max_extension, next_midnight

START = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
LOOKBACK, HORIZON = timedelta(days=1), timedelta(days=14)


def window(now: datetime) -> SyncWindow:
    return SyncWindow(now - LOOKBACK, now + HORIZON)


def at(day: int, hour: int = 9) -> tuple[str, str]:
    """Start and end (one hour) of an event on 2024-05-(6 + day) as Graph writes them."""
    start = datetime(2024, 5, 6, hour) + timedelta(days=day)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return start.strftime(fmt), (start + timedelta(hours=1)).strftime(fmt)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    yield from fake_graph()


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> GraphCalendarSource:
    return graph_source(monkeypatch, page_size=50)


class Poller:
    """The service's side: the stored events of one source, updated from each result."""

    def __init__(self, fake: FakeGraph, source: GraphCalendarSource) -> None:
        self.fake, self.source = fake, source
        self.state: str | None = None
        self.events: dict[str, str] = {}  # key -> subject

    def poll(self, now: datetime) -> tuple[SyncResult, dict[str, int]]:
        mark = len(self.fake.graph_requests)
        result = self.source.sync(window(now), self.state)
        if result.full:
            self.events = {}
        for key in result.removed:
            self.events.pop(key, None)
        self.events.update({e.key: e.subject for e in result.events})
        self.state = result.state
        return result, dict(self.fake.calls(mark))


@pytest.fixture
def poller(fake: FakeGraph, source: GraphCalendarSource) -> Poller:
    return Poller(fake, source)


def test_three_days_of_hourly_polls_never_re_read_the_window(
    fake: FakeGraph, poller: Poller
) -> None:
    fake.put(BOX, event_json("AAMkToday=", "Today", *at(0)))
    fake.put(BOX, event_json("AAMkFar=", "Far", *at(15)))  # beyond the first window
    fake.put(BOX, event_json("AAMkFarther=", "Farther", *at(16)))
    first, calls = poller.poll(START)
    assert first.full and calls == {"delta": 1}
    assert set(poller.events) == {"AAMkToday="}
    seen: list[tuple[datetime, dict[str, int]]] = []
    now = START
    for _ in range(72):
        now += timedelta(hours=1)
        result, calls = poller.poll(now)
        assert result.full is False
        if calls != {"delta": 1}:
            seen.append((now, calls))
        if now == datetime(2024, 5, 7, 1, tzinfo=UTC):
            assert "AAMkFar=" in poller.events  # its day was read once the window reached it
        if now == datetime(2024, 5, 8, 0, tzinfo=UTC):
            assert "AAMkFarther=" not in poller.events
    # one bounded read of the added day, at the first poll whose window passes a midnight
    assert seen == [
        (datetime(2024, 5, 7, 1, tzinfo=UTC), {"delta": 1, "view": 1}),
        (datetime(2024, 5, 8, 1, tzinfo=UTC), {"delta": 1, "view": 1}),
        (datetime(2024, 5, 9, 1, tzinfo=UTC), {"delta": 1, "view": 1}),
    ]
    assert set(poller.events) == {"AAMkToday=", "AAMkFar=", "AAMkFarther="}
    views = [r for r in fake.graph_requests if r.url.path.endswith("/calendarView")]
    assert [(v.url.params["startDateTime"], v.url.params["endDateTime"]) for v in views] == [
        ("2024-05-21T00:00:00Z", "2024-05-22T00:00:00Z"),
        ("2024-05-22T00:00:00Z", "2024-05-23T00:00:00Z"),
        ("2024-05-23T00:00:00Z", "2024-05-24T00:00:00Z"),
    ]


def test_edits_in_the_added_days_arrive_as_upserts_and_deletions_as_removals(
    fake: FakeGraph, poller: Poller
) -> None:
    fake.put(BOX, event_json("AAMkBase=", "Base", *at(2)))
    fake.put(BOX, event_json("AAMkExt=", "Ext", *at(15)))
    fake.put(BOX, event_json("AAMkExt2=", "Ext 2", *at(15, 13)))
    poller.poll(START)
    now = START + timedelta(days=1)
    poller.poll(now)  # reads day 15
    assert set(poller.events) == {"AAMkBase=", "AAMkExt=", "AAMkExt2="}

    fake.put(BOX, event_json("AAMkExt=", "Ext renamed", *at(15)))  # outside the delta range
    result, calls = poller.poll(now + timedelta(minutes=1))
    assert calls == {"delta": 1, "view": 1}  # the @removed made it re-read the added days
    # what the re-read found is upserted (unchanged ones too: the store sees no change)
    assert (sorted(e.subject for e in result.events), result.removed) == (
        ["Ext 2", "Ext renamed"],
        [],
    )

    fake.delete(BOX, "AAMkExt2=")
    fake.put(BOX, event_json("AAMkNew=", "New", *at(15, 15)))
    fake.put(BOX, event_json("AAMkBase=", "Base moved out", *at(15, 8)))
    result, _ = poller.poll(now + timedelta(minutes=2))
    assert result.removed == ["AAMkExt2="]
    assert poller.events == {
        "AAMkBase=": "Base moved out",
        "AAMkExt=": "Ext renamed",
        "AAMkNew=": "New",
    }
    quiet, calls = poller.poll(now + timedelta(minutes=3))
    assert (calls, quiet.events, quiet.removed) == ({"delta": 1}, [], [])


def test_a_new_delta_round_starts_only_when_the_extension_reaches_the_mailboxs_limit(
    fake: FakeGraph, poller: Poller
) -> None:
    fake.put(BOX, event_json("AAMkA=", "A", *at(0)))
    poller.poll(START)
    limit = max_extension(BOX).days
    fulls = []
    for day in range(1, 30):
        now = START + timedelta(days=day)
        result, calls = poller.poll(now)
        if result.full:
            fulls.append(day)
            assert calls == {"delta": 1}
            state = json.loads(result.state or "")
            assert state["covered"] == state["end"] == next_midnight(now + HORIZON).isoformat()
        else:
            assert calls == {"delta": 1, "view": 1}
    # a range made at 07:00 ends at the next midnight; each day adds one day to cover
    assert fulls == [limit + 1, 2 * (limit + 1)]


def test_limits_are_spread_over_mailboxes() -> None:
    limits = {max_extension(f"user{n}@example.se") for n in range(50)}
    assert len(limits) >= 5
    assert min(limits) >= timedelta(days=5) and max(limits) <= timedelta(days=11)


def test_a_window_that_moved_back_starts_a_new_round(fake: FakeGraph, poller: Poller) -> None:
    fake.put(BOX, event_json("AAMkA=", "A", *at(0)))
    poller.poll(START)
    result, _ = poller.poll(START - timedelta(hours=2))
    assert result.full is True
    assert fake.graph_requests[-1].url.params["startDateTime"] == "2024-05-05T05:00:00Z"


def test_a_broken_event_in_an_added_day_is_skipped_with_a_warning(
    fake: FakeGraph, poller: Poller
) -> None:
    fake.put(BOX, event_json("AAMkGood=", "Good", *at(15)))
    fake.put(BOX, event_json("AAMkBroken=", "Broken", *at(15, 11), categories="not a list"))
    poller.poll(START)
    result, calls = poller.poll(START + timedelta(days=1))
    assert calls == {"delta": 1, "view": 1}
    assert [e.key for e in result.events] == ["AAMkGood="]
    assert "AAMkBroken=" in result.removed
    assert len(result.warnings) == 1 and "categories is not a list" in result.warnings[0]
