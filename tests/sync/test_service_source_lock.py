"""Two syncs of one calendar source never overlap (push worker vs. scheduler poll and tick).

These are real-thread tests: the first sync blocks inside the calendar until the
test releases it, while a second thread polls the same source. The calendar
counts how many syncs are inside it at once. Without the service's per-source
lock the second sync enters at once; the first sync notices that and returns,
so the test fails fast instead of hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from service_fakes import T0, FakeCalendar, build_service, make_users, meeting

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.service.service import Service
from sync.store import Store

SOURCE = "anna-cal"
OVERLAP_GRACE = 1.0  # seconds a second sync gets to show up inside the first (real time)
JOIN = 10.0


class BlockingCalendar(FakeCalendar):
    """A calendar whose armed sync waits for ``release``; records overlapping syncs."""

    def __init__(self, source_id: str) -> None:
        super().__init__(source_id, [meeting("m1", T0 + timedelta(hours=1), 30)])
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.overlap = threading.Event()
        self._guard = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        with self._guard:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            if self.inside > 1:
                self.overlap.set()
            block, self.armed = self.armed, False
        try:
            if block:
                self.entered.set()
                # until released, or until a second sync shows up inside (the bug)
                while not self.release.wait(0.01) and not self.overlap.is_set():
                    pass
            return super().sync(window, state)
        finally:
            with self._guard:
                self.inside -= 1


def _service(store: Store, clock: VirtualClock) -> tuple[Service, BlockingCalendar]:
    users = make_users("anna")
    cal = BlockingCalendar(SOURCE)
    service = build_service(
        store, SimulatedSwitchboard(users, clock=clock), clock, {"anna": [cal]}, users
    )
    service.start()
    return service, cal


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(fn()), daemon=True)
    thread.start()
    return thread, results


def _block_first_sync(cal: BlockingCalendar, first: Callable[[], object]) -> threading.Thread:
    cal.armed = True
    thread, _ = _in_thread(first)
    assert cal.entered.wait(JOIN), "the first sync never started"
    return thread


def test_push_poll_waits_for_a_running_sync_of_the_source_then_syncs_again(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    service, cal = _service(sqlite_store, clock)
    first = _block_first_sync(cal, lambda: service.poll_source(SOURCE))

    second, results = _in_thread(lambda: service.poll_source(SOURCE))
    overlapped = cal.overlap.wait(OVERLAP_GRACE)
    cal.release.set()
    first.join(JOIN)
    second.join(JOIN)

    assert not overlapped
    assert cal.most_inside == 1
    assert not first.is_alive() and not second.is_alive()
    assert results == [False]  # it did sync (after the first), and nothing changed
    # start, the blocked sync, then the waiting one, from the state the blocked one stored
    assert cal.calls == [None, "token-1", "token-2"]


def test_tick_skips_a_source_whose_sync_just_finished_in_another_thread(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    service, cal = _service(sqlite_store, clock)
    clock.advance(service.settings.poll_interval * 2)  # the source is due for the tick
    first = _block_first_sync(cal, lambda: service.poll_source(SOURCE))

    second, results = _in_thread(service.poll_sources)
    overlapped = cal.overlap.wait(OVERLAP_GRACE)
    cal.release.set()
    first.join(JOIN)
    second.join(JOIN)

    assert not overlapped
    assert cal.most_inside == 1
    assert not first.is_alive() and not second.is_alive()
    assert results == [set()]
    assert cal.calls == [None, "token-1"]  # start, the push sync; then the tick found it not due
