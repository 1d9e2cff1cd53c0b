"""Production wiring: APScheduler 3.11 (memory job store only) wakes the service.

Jobs: one poll job per calendar source (its interval), a reconcile tick (every
``tick_interval``), and one ``wakeup`` date job re-armed at the next due time
after every change. The jobs hold no state: the store's plan is the truth, so a
lost or late timer only delays work until the next tick. Misfire handling is
explicit (no grace limit, coalesce) because APScheduler's default grace of one
second would silently drop late runs.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sync.service import Service

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}


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
        service.add_change_listener(self.arm_wakeup)

    def start(self, *, paused: bool = False) -> None:
        """Start the service (migrate, catch up) and then the timers."""
        self.service.start()
        settings = self.service.settings
        now = self.service.clock.now()
        for source_id in self.service.sources:
            self.scheduler.add_job(
                self._guard(self.service.poll_source, source_id),
                IntervalTrigger(
                    seconds=settings.interval_for(source_id).total_seconds(), timezone=UTC
                ),
                id=f"poll:{source_id}",
                name=f"poll {source_id}",
                next_run_time=now + settings.interval_for(source_id),
                replace_existing=True,
            )
        self.scheduler.add_job(
            self._guard(self.service.tick),
            IntervalTrigger(seconds=settings.tick_interval.total_seconds(), timezone=UTC),
            id="tick",
            name="reconcile tick",
            replace_existing=True,
        )
        self.scheduler.start(paused=paused)
        self.arm_wakeup()
        log.info(
            "scheduler started: %d poll jobs, tick every %s",
            len(self.service.sources),
            settings.tick_interval,
        )

    def arm_wakeup(self) -> None:
        """(Re)set the one-shot wake-up at the next due action; called after every change."""
        if not self.scheduler.running:
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
            )

    def set_source_interval(self, source_id: str, interval: timedelta) -> None:
        """Poll ``source_id`` every ``interval`` from now on (push makes it a safety poll).

        Updates the service's ``source_intervals`` (used by the tick) and, once
        the timers run, the source's poll job (next run ``interval`` from now).
        """
        if source_id not in self.service.sources:
            raise KeyError(source_id)
        settings = self.service.settings
        if settings.interval_for(source_id) == interval:
            return
        intervals = {**settings.source_intervals, source_id: interval}
        self.service.settings = dataclasses.replace(settings, source_intervals=intervals)
        job = self.scheduler.get_job(f"poll:{source_id}")
        if job is not None:
            job.reschedule(
                IntervalTrigger(
                    seconds=interval.total_seconds(),
                    start_date=self.service.clock.now() + interval,
                    timezone=UTC,
                )
            )

    def add_periodic(
        self, job_id: str, func: Callable[[], object], every: timedelta, *, name: str
    ) -> None:
        """Run ``func`` every ``every`` (first run ``every`` from now), with the job defaults."""
        self.scheduler.add_job(
            self._guard(func),
            IntervalTrigger(seconds=every.total_seconds(), timezone=UTC),
            id=job_id,
            name=name,
            next_run_time=self.service.clock.now() + every,
            replace_existing=True,
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
