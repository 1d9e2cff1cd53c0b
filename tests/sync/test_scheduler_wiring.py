"""APScheduler wiring: memory store only, explicit misfire handling, wake-up re-armed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from service_fakes import T0, FakeCalendar, build_service, make_users, meeting

from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from sync.service.scheduler import ServiceScheduler
from sync.store import Store


@pytest.fixture
def scheduler(sqlite_store: Store, clock: VirtualClock):  # type: ignore[no-untyped-def]
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    cal = FakeCalendar("anna-cal", [meeting("m1", T0 + timedelta(hours=1), 30)])
    service = build_service(
        sqlite_store,
        sim,
        clock,
        {"anna": [cal]},
        users,
        source_intervals={"anna-cal": timedelta(seconds=90)},
    )
    wrapped = ServiceScheduler(service)
    wrapped.start(paused=True)  # timers armed but not firing: the test inspects them
    yield wrapped, service, cal
    wrapped.shutdown(wait=False)


def test_jobs_use_memory_store_and_never_drop_late_runs(scheduler) -> None:  # type: ignore[no-untyped-def]
    wrapped, _service, _cal = scheduler
    jobs = {job.id: job for job in wrapped.scheduler.get_jobs()}
    assert set(jobs) == {"poll", "tick", "wakeup"}
    for job in jobs.values():
        assert job.misfire_grace_time is None
        assert job.coalesce is True
    assert isinstance(wrapped.scheduler._jobstores["default"], MemoryJobStore)
    assert list(wrapped.scheduler._jobstores) == ["default"]
    assert jobs["poll"].trigger.interval == timedelta(milliseconds=250)  # the due-queue's look
    # the source's own interval is its place in the due-queue
    due = _service.poller.next_poll()
    assert due is not None and due <= _service.clock.now() + timedelta(seconds=90)
    assert jobs["tick"].trigger.interval == timedelta(seconds=30)


def test_wakeup_is_armed_at_the_next_due_action_and_moves_with_the_plan(scheduler) -> None:  # type: ignore[no-untyped-def]
    wrapped, service, cal = scheduler
    wake = wrapped.next_wakeup()
    assert wake is not None
    assert abs(wake - (T0 + timedelta(hours=1))) < timedelta(seconds=1)
    cal.put(meeting("m1", T0 + timedelta(minutes=20), 30))
    service.clock.advance(timedelta(minutes=5))
    service.poll_source("anna-cal")
    # the re-plan changed the referral: it is published at once, not at the next tick
    wake = wrapped.next_wakeup()
    assert wake is not None
    assert abs(wake - service.clock.now()) < timedelta(seconds=1)
    service.execute_due()  # what the wake-up job runs
    wake = wrapped.next_wakeup()
    assert wake is not None
    assert abs(wake - (T0 + timedelta(minutes=20))) < timedelta(seconds=1)
    cal.remove("m1")
    service.poll_source("anna-cal")
    assert abs(wrapped.next_wakeup() - service.clock.now()) < timedelta(seconds=1)  # withdraw
    service.execute_due()
    assert wrapped.next_wakeup() is None


def test_a_wakeup_armed_while_a_pass_runs_is_not_skipped(scheduler) -> None:  # type: ignore[no-untyped-def]
    wrapped, _service, _cal = scheduler
    job = wrapped.scheduler.get_job("wakeup")
    assert job is not None
    assert job.max_instances == 2  # APScheduler drops a date job's run when an instance runs


def test_shutdown_stops_the_scheduler(scheduler) -> None:  # type: ignore[no-untyped-def]
    wrapped, _service, _cal = scheduler
    wrapped.shutdown(wait=True)
    assert not wrapped.scheduler.running
