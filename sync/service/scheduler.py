"""Production wiring: APScheduler 3.11 (memory job store only) wakes the service.

Jobs: ``poll`` (every ``POLL_STEP``: starts the calendar syncs that are due, from
the poller's one due-queue, a heap by next poll time; the first polls after
start-up are spread over the interval; 10,000 idle sources cost one look at the
heap's top), a reconcile tick (every ``tick_interval``), and one ``wakeup`` date
job re-armed at the next due time after every change (a re-plan that leaves
referrals to publish arms it for now; armed while an execution pass runs, it
runs once that pass ends instead of being skipped as a second instance). The
jobs hold no state: the store's plan is the truth, so a lost or late timer only
delays work until the next tick. Misfire handling is explicit (no grace limit,
coalesce) because APScheduler's default grace of one second would silently drop
late runs.

With a leader lease (``Service.lease``, which ``calref run`` always gives it) the
scheduler has two roles. Leader: the jobs above plus ``lease-renew`` (every
``renew_every``). Standby: only ``lease-standby``, which tries to take the
lease every ``retry_every`` and, once it has it, starts the service (catch-up)
and switches to the leader's jobs. A leader that loses its lease (fencing in
``Service``) drops its jobs and stands by again. Hooks let ``calref run`` start
and stop what only a leader may run (push subscriptions).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sync.service.service import Service

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
#: how often the poll job looks at the due-queue (a poll runs at most this late)
POLL_STEP = timedelta(milliseconds=250)
#: how often the times of polls that found nothing changed are written to the store
FLUSH_EVERY = 1.0


class ServiceScheduler:
    """Runs a ``Service`` in the background until ``shutdown``."""

    def __init__(self, service: Service, *, workers: int = 4) -> None:
        self.service = service
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults=dict(JOB_DEFAULTS),
            timezone=UTC,
        )
        self._arm_lock = threading.Lock()
        self._flushed = time.monotonic()
        self._role_lock = threading.RLock()
        self.leading = False
        self._leader_jobs: set[str] = set()
        self._before_lead: list[Callable[[], None]] = []
        self._after_lead: list[Callable[[], None]] = []
        self._on_standby: list[Callable[[], None]] = []
        service.add_change_listener(self.arm_wakeup)
        service.add_lease_lost_listener(self._lost)

    def on_lead(
        self,
        *,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
        standby: Callable[[], None] | None = None,
    ) -> None:
        """Hooks run when this process becomes leader (``before`` the service starts,
        ``after`` its jobs are added) and when it goes back to ``standby``."""
        for hooks, hook in (
            (self._before_lead, before),
            (self._after_lead, after),
            (self._on_standby, standby),
        ):
            if hook is not None:
                hooks.append(hook)

    def start(self, *, paused: bool = False) -> None:
        """Start the service (migrate, catch up) and then the timers.

        With a lease held by another process: start the timers as a standby.
        """
        if self.service.claim_lease():
            self._lead()
        else:
            self._standby()
        self.scheduler.start(paused=paused)
        self.arm_wakeup()

    def _try_lead(self) -> None:
        """The standby's job: take the lease if it is free, then lead."""
        if not self.leading and self.service.claim_lease():
            self._lead()

    def _lead(self) -> None:
        with self._role_lock:
            for hook in self._before_lead:
                hook()
            self.service.start()
            if not self.service.started:  # lost the lease again during start-up
                self.leading = True  # so that standing by undoes the ``before`` hooks
                self._standby()
                return
            self.leading = True
            self._remove_job("lease-standby")
            self._add_leader_jobs()
            for hook in self._after_lead:
                hook()
        self.arm_wakeup()

    def _standby(self) -> None:
        with self._role_lock:
            was_leading, self.leading = self.leading, False
            for job_id in sorted(self._leader_jobs | {"wakeup"}):
                self._remove_job(job_id)
            self._leader_jobs.clear()
            if was_leading:
                for hook in self._on_standby:
                    hook()
            lease = self.service.lease
            if lease is None:
                return
            self.scheduler.add_job(
                self._guard(self._try_lead),
                IntervalTrigger(seconds=lease.retry_every.total_seconds(), timezone=UTC),
                id="lease-standby",
                name="take the store's lease when it lapses",
                replace_existing=True,
            )

    def _lost(self) -> None:
        """The service lost its lease: stop the leader's jobs and stand by."""
        log.warning("standing by: the leader's jobs are stopped")
        self._standby()

    def _remove_job(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(job_id)

    def _add_job(self, job_id: str, func: Callable[[], object], *args: Any, **kwargs: Any) -> None:
        self._leader_jobs.add(job_id)
        self.scheduler.add_job(self._guard(func), *args, id=job_id, replace_existing=True, **kwargs)

    def _add_leader_jobs(self) -> None:
        settings = self.service.settings
        now = self.service.clock.now()
        self.service.poller.spread()
        self._add_job(
            "poll",
            self._poll_due,
            IntervalTrigger(seconds=POLL_STEP.total_seconds(), timezone=UTC),
            name="start the due calendar polls",
        )
        self._add_job(
            "tick",
            self.service.tick,
            IntervalTrigger(seconds=settings.tick_interval.total_seconds(), timezone=UTC),
            name="reconcile tick",
        )
        lease = self.service.lease
        if lease is not None:
            self._add_job(
                "lease-renew",
                self.service.keep_lease,
                IntervalTrigger(seconds=lease.renew_every.total_seconds(), timezone=UTC),
                name="renew the store's lease",
                next_run_time=now + lease.renew_every,
            )
        log.info(
            "leader jobs started: %d sources polled from one due-queue, tick every %s",
            len(self.service.sources),
            settings.tick_interval,
        )

    def _poll_due(self) -> None:
        """The poll job: start every due calendar sync; write unchanged polls' times."""
        self.service.dispatch_polls()
        now = time.monotonic()
        if now - self._flushed >= FLUSH_EVERY:
            self._flushed = now
            self.service.poller.flush()

    def arm_wakeup(self) -> None:
        """(Re)set the one-shot wake-up at the next due action; called after every change."""
        if not self.scheduler.running or not self.leading or self.service.gate.closed:
            return
        with self._arm_lock:
            due = self.service.next_action_due()
            if due is None:
                if self.scheduler.get_job("wakeup") is not None:
                    self.scheduler.remove_job("wakeup")
                return
            due = max(due, self.service.clock.now()) + timedelta(milliseconds=1)
            self.scheduler.add_job(
                self._guard(self.service.execute_due),
                DateTrigger(run_date=due, timezone=UTC),
                id="wakeup",
                name="wake up for the next action",
                replace_existing=True,
                # armed while a pass runs (a re-plan meanwhile): run after it, not skipped
                max_instances=2,
            )

    def set_source_interval(self, source_id: str, interval: timedelta) -> None:
        """Poll ``source_id`` every ``interval`` from now on (push makes it a safety poll).

        Updates the service's ``source_intervals`` and, once the timers run, the
        source's place in the due-queue (next poll ``interval`` from now).
        """
        if source_id not in self.service.sources:
            raise KeyError(source_id)
        settings = self.service.settings
        if settings.interval_for(source_id) == interval:
            return
        intervals = {**settings.source_intervals, source_id: interval}
        self.service.settings = dataclasses.replace(settings, source_intervals=intervals)
        if self.scheduler.running:
            self.service.poller.reschedule(source_id, self.service.clock.now() + interval)

    def add_periodic(
        self, job_id: str, func: Callable[[], object], every: timedelta, *, name: str
    ) -> None:
        """Run ``func`` every ``every`` (first run ``every`` from now), with the job defaults.

        A leader's job: it is removed when the process stands by.
        """
        self._add_job(
            job_id,
            func,
            IntervalTrigger(seconds=every.total_seconds(), timezone=UTC),
            name=name,
            next_run_time=self.service.clock.now() + every,
        )

    def next_wakeup(self) -> datetime | None:
        job = self.scheduler.get_job("wakeup")
        return None if job is None else job.next_run_time

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the timers, letting a running job finish when ``wait``."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        log.info("scheduler stopped")

    @staticmethod
    def _guard(func: object, *args: object) -> object:
        def run() -> None:
            try:
                func(*args)  # type: ignore[operator]
            except Exception:
                log.exception("scheduled job failed; the next tick retries")

        return run
