"""The service object: polls calendars, re-plans, publishes referrals and carries out the plan.

Tests and the accelerated demo drive it directly and deterministically
(``start``, ``poll_sources``, ``execute_due``, ``tick``, ``run_virtual``);
production wraps it in ``sync.service.scheduler.ServiceScheduler``, whose timers only
wake the process: the store's plan is the truth.

With a ``LeaderLease`` (``calref run`` always has one) the service acts only
while it holds the store's lease: ``start`` and ``tick`` of a standby only try
to take it (and start, with catch-up, once they do); ``execute_due``, ``tick``
and ``poll_source`` first renew it (fencing) and do nothing when it was lost.
Without one (the tests' default) nothing is checked.

The service holds the parts that do the work, each given what it needs:
``poller`` (``sync.service.polling.Poller``: calendar polling and per-source
backoff; every sync runs in the background, see ``sync.service.source_runner``,
so one slow or hung calendar never holds up start-up, the tick or another
user), ``leases`` (``sync.service.lease.LeaseKeeper``: the lease, and the watch
that stops the service for good when its store's file is deleted or replaced),
``outbox`` (``sync.service.outbox.Outbox``: referrals to the switchboard) and
``executor`` (``sync.service.executor.Executor``: due phone actions). The
tunables are ``sync.service.settings.ServiceSettings``.
``stop`` makes the service start no new call or sync (``calref run`` on SIGTERM).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from connectors.calendars.base import CalendarSource, SyncWindow
from connectors.clock import Clock, VirtualClock, as_utc
from connectors.switchboard.base import Switchboard
from rules.errors import CalrefError, ConfigError, Problem, StoreError, StoreLost
from rules.model import CalendarEvent, Plan, User
from rules.wording import plural
from sync.service.call_gate import CallGate, SwitchboardCalls
from sync.service.executor import ActionEvent, ActionListener, Executor
from sync.service.lease import LeaderLease, LeaseKeeper
from sync.service.outbox import Outbox
from sync.service.polling import Poller
from sync.service.replan import diff_plan
from sync.service.retries import CallRetries
from sync.service.settings import ServiceSettings
from sync.service.startup import StartupReader
from sync.store import Store
from sync.store.changes import PlanDiff
from sync.store.records import AuditKind, Outcome

__all__ = ["Planner", "Service"]

log = logging.getLogger(__name__)

Planner = Callable[[User, list[CalendarEvent], SyncWindow], Plan]


class Service:
    """One calref process: the store, the switchboard, each user's calendar sources."""

    def __init__(
        self,
        store: Store,
        switchboard: Switchboard,
        sources: Mapping[str, Sequence[CalendarSource]],
        users: Sequence[User],
        planner: Planner,
        clock: Clock,
        settings: ServiceSettings | None = None,
        *,
        rng: random.Random | None = None,
        lease: LeaderLease | None = None,
    ) -> None:
        self.store = store
        self.switchboard = switchboard
        self.users = {u.id: u for u in users}
        unknown = sorted(set(sources) - set(self.users))
        if unknown:
            raise ConfigError(
                [
                    Problem("sources", None, None, f"calendar sources for unknown user {u!r}")
                    for u in unknown
                ]
            )
        #: source id -> (user id, source)
        self.sources: dict[str, tuple[str, CalendarSource]] = {}
        for user_id, user_sources in sources.items():
            for source in user_sources:
                if source.id in self.sources:
                    raise ConfigError(
                        [Problem("sources", None, None, f"source id {source.id!r} is used twice")]
                    )
                self.sources[source.id] = (user_id, source)
        self.planner = planner
        self.clock = clock
        settings = settings or ServiceSettings()
        self.rng = rng or random.Random()
        #: every switchboard call passes it; closed by ``stop``
        self.gate = CallGate()
        retries = CallRetries(
            settings.retry_backoff,
            settings.retry_attempts,
            settings.unknown_user_backoff,
            self.rng,
        )
        calls = SwitchboardCalls(
            store, switchboard, clock, self.gate, retries, concurrency=settings.concurrency
        )
        self.outbox = Outbox(calls, check_every=settings.referral_check_interval)
        self.executor = Executor(calls, late_after=settings.late_after)
        self.poller = Poller(
            store,
            clock,
            self.sources,
            settings,
            rng=self.rng,
            on_late_change=self._changed_late,
        )
        self.leases = LeaseKeeper(store, clock, lease)
        self.leases.add_fatal_listener(self._stopped_for_good)
        self.leases.add_lost_listener(self._stood_down)
        self._settings = settings
        self._change_listeners: list[Callable[[], None]] = []
        self._exec_lock = threading.Lock()
        self._plan_lock = threading.Lock()
        self.started = False
        #: the start-up's calendar reading, once ``start`` began it
        self.startup: StartupReader | None = None

    @property
    def settings(self) -> ServiceSettings:
        """The tunables; the scheduler replaces them when push changes a poll interval."""
        return self._settings

    @settings.setter
    def settings(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self.poller.settings = settings

    @property
    def lease(self) -> LeaderLease | None:
        """The leader lease; None: this service assumes it is the only one on its store."""
        return self.leases.lease

    @property
    def fatal(self) -> StoreLost | None:
        """Why the service stopped acting for good (its store was lost); None while fine."""
        return self.leases.fatal

    # -- hooks -------------------------------------------------------------------------------

    def add_action_listener(self, listener: ActionListener) -> None:
        """Call ``listener`` for every action carried out (or missed, kept, failed)."""
        self.executor.listeners.append(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after anything that may move the next wake-up (the scheduler)."""
        self._change_listeners.append(listener)

    def add_lease_lost_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when the service loses its lease (it then stands by)."""
        self.leases.add_lost_listener(listener)

    def add_fatal_listener(self, listener: Callable[[StoreLost], None]) -> None:
        """Call ``listener`` once when the service stops for good (its store was lost)."""
        self.leases.add_fatal_listener(listener)

    def _changed(self) -> None:
        for listener in list(self._change_listeners):
            listener()

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> list[ActionEvent]:
        """Migrate the store, register users and sources, then read calendars and catch up.

        With a lease, only once it is taken: a standby returns ``[]`` having done
        nothing but migrate and try (``tick`` tries again). Calendars are read by a
        ``StartupReader`` (``sync/service/startup.py``): the users with the soonest
        stored work first, each batch re-planned and its due actions sent as soon as
        it is read. This waits for it at most ``settings.startup_sync_wait``, then
        catches up from the stored plan (unless the reader is still at it: then its
        thread does, and the rest is read behind the running service).
        Actions parked because the switchboard did not know their user are tried
        again now (the directory or the config may have changed).
        """
        if self.gate.closed or not self.claim_lease():
            return []
        try:
            self.store.upsert_users(list(self.users.values()))
            self.store.ensure_sources([(sid, uid) for sid, (uid, _src) in self.sources.items()])
            self.store.unpark_actions(self.clock.now())
        except SQLAlchemyError as err:
            raise StoreError(f"store: cannot write the database: {_db_reason(err)}") from None
        self.started = True
        reader = StartupReader(self, on_done=self._read_at_startup)
        self.startup = reader
        reader.start()
        read_all = reader.wait(self.settings.startup_sync_wait.total_seconds())
        if not read_all:
            log.info(
                "start-up: %s of %s read so far; the rest is read behind the running service",
                reader.read_users,
                plural(len(self.users), "user"),
            )
        log.info(
            "service started: %s, %s",
            plural(len(self.users), "user"),
            plural(len(self.sources), "source"),
        )
        if not read_all:  # the reader's thread sends what is due: the timers start now
            return reader.take_events()
        events = reader.take_events()
        return events + self.execute_due()

    def _read_at_startup(self) -> None:
        """Every calendar was read once (``StartupReader``)."""
        if self.startup is not None and not self.gate.closed:
            log.info("start-up: every calendar read (%s)", plural(len(self.users), "user"))
        self._changed()

    def stop(self) -> None:
        """Start no new switchboard call and no new calendar sync (shutting down)."""
        self.gate.close()
        self.poller.close()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no switchboard call is in flight."""
        return self.gate.wait_idle(timeout)

    def window(self, now: datetime | None = None) -> SyncWindow:
        """The planning window at ``now`` (calendars are read for a wider one, see
        ``ServiceSettings.sync_window``; re-planning drops the events outside this one)."""
        return self.settings.window(self.clock.now() if now is None else now)

    # -- the lease ---------------------------------------------------------------------------

    def claim_lease(self) -> bool:
        """Take (or keep) the store's lease; True without a lease. Migrates the store first.

        False means standby: another live process holds the store (logged).
        """
        return self.leases.claim()

    def keep_lease(self) -> bool:
        """Renew the lease before acting (fencing); False, and standby, when it was lost."""
        return self.leases.keep()

    def release_lease(self) -> None:
        """Give up the lease (clean shutdown) so that a standby takes over at once."""
        if self.leases.release():
            self.started = False

    def _stood_down(self) -> None:
        """The lease was lost: act no more until it is taken again (``start``)."""
        self.started = False
        self.poller.forget()

    def _stopped_for_good(self, err: StoreLost) -> None:
        """The store was lost: start nothing ever again."""
        self.started = False
        self.stop()

    # -- polling -----------------------------------------------------------------------------

    def poll_sources(self, *, force: bool = False, wait: float | None = None) -> set[str]:
        """Poll every source whose interval has passed (all with ``force``); re-plan changes.

        Waits at most ``wait`` seconds (default ``settings.sync_wait``) for the syncs
        it started (``Poller.poll_due``) and re-plans the users whose calendars
        changed meanwhile; a later sync re-plans its user when it ends. The users
        re-planned.
        """
        changed = self.poller.poll_due(force=force, wait=wait)
        self.replan_users(sorted(changed))
        if changed:
            self._changed()
        return changed

    def poll_source(self, source_id: str, *, wait: bool = True) -> bool:
        """Poll one source now (unless backing off) and re-plan its user if events changed.

        With a lease, only while it is held. ``Poller.poll_now`` says how long this
        waits (at most ``settings.sync_wait``; not at all without ``wait``, the
        scheduler's poll job): False when the result is not in by then, and the
        sync re-plans in the background when it ends.
        """
        user_id, _source = self.sources[source_id]
        if not self.leases.leading_now() or not self.leases.store_intact():
            return False
        if not self.poller.poll_now(source_id, wait=wait):
            return False
        self.replan(user_id)
        self._changed()
        return True

    def dispatch_polls(self) -> int:
        """Start every source sync that is due (the scheduler's poll job), without waiting:
        each re-plans its user when it ends with a change. With a lease, only while held.
        The number started."""
        if not self.started or not self.leases.leading_now() or not self.leases.store_intact():
            return 0
        return self.poller.dispatch_due()

    def _changed_late(self, user_id: str) -> None:
        """A sync that outlasted its caller's wait changed ``user_id``'s events: re-plan."""
        if not self.leases.leading_now() or not self.started:
            return
        self.replan(user_id)
        self._changed()

    # -- planning ----------------------------------------------------------------------------

    def replan(self, user_id: str) -> PlanDiff | None:
        """Re-plan one user from their stored events and write the diff (None if it failed)."""
        return self.replan_users([user_id])[user_id]

    def replan_users(self, user_ids: Sequence[str]) -> dict[str, PlanDiff | None]:
        """``replan`` many users: a few queries and one transaction per batch of users.

        Each user's re-plan is still all or nothing; a user whose planning fails
        keeps the previous plan (None in the result) and does not hold up the others.
        """
        out: dict[str, PlanDiff | None] = {}
        for start in range(0, len(user_ids), self.REPLAN_BATCH):
            out.update(self._replan_batch(user_ids[start : start + self.REPLAN_BATCH]))
        return out

    #: users re-planned per transaction (the plan lock is held for one batch at a time)
    REPLAN_BATCH = 200

    def _replan_batch(self, user_ids: Sequence[str]) -> dict[str, PlanDiff | None]:
        out: dict[str, PlanDiff | None] = {}
        with self._plan_lock:
            now = self.clock.now()
            window = self.window(now)
            events = self.store.events_for_users(user_ids)
            plans: dict[str, Plan] = {}
            for user_id in user_ids:
                try:
                    planned = [e for e in events[user_id] if in_window(e, window)]
                    plan = self.planner(self.users[user_id], planned, window)
                    _check_plan(plan, user_id)
                except CalrefError as err:
                    log.error(
                        "user %s: planning failed, keeping the previous plan: %s", user_id, err
                    )
                    self.store.audit(now, user_id, AuditKind.PLAN, Outcome.ERROR, str(err))
                    out[user_id] = None
                    continue
                plans[user_id] = plan
            states = self.store.plan_states(list(plans))
            diffs = [
                diff_plan(plan, *states[user_id], now, window) for user_id, plan in plans.items()
            ]
            self.store.apply_diffs(diffs, now)
            out.update({d.user: d for d in diffs})
        return {u: out[u] for u in user_ids}

    def replan_stale(self) -> list[str]:
        """Re-plan users whose plan is older than ``replan_interval`` (the window moves on)."""
        now = self.clock.now()
        planned = self.store.planned_times()
        stale = []
        for user_id in self.users:
            at = planned.get(user_id)
            if at is None or at + self.settings.replan_interval <= now:
                stale.append(user_id)
        self.replan_users(stale)
        if stale:
            self._changed()
        return stale

    # -- execution ---------------------------------------------------------------------------

    def execute_due(self) -> list[ActionEvent]:
        """Carry out everything due now (publications first); never runs twice at once.

        With a lease, only after renewing it: a process that lost it sends nothing.
        """
        with self._exec_lock:
            if not self.keep_lease():
                return []
            try:
                events = self._execution_pass()
            except StoreLost as err:
                self.leases.store_lost(err)
                return []
        self._changed()
        return events

    def tick(self) -> list[ActionEvent]:
        """The reconcile tick: poll due sources, re-plan stale users, execute what is due.

        A standby (lease configured, not held) instead tries to take the lease,
        and on success starts (with catch-up).
        """
        if self.lease is not None and not self.lease.held:
            return self.start()
        if not self.keep_lease():
            return []
        try:
            self.poll_sources()
            self.replan_stale()
            self.check_referrals()
        except StoreLost as err:
            self.leases.store_lost(err)
            return []
        return self.execute_due()

    def check_referrals(self, *, force: bool = False) -> list[str]:
        """Publish again what the switchboard lost (a gateway restart); the referral ids.

        Every ``settings.referral_check_interval``, and with ``force``: see
        ``Outbox.check_lost``.
        """
        return self.outbox.check_lost(force=force)

    def _execution_pass(self) -> list[ActionEvent]:
        """Publish what the switchboard should show first (the outbox), then carry out the
        due actions; nothing once stopping. ``StoreLost`` when the store's file is gone."""
        if self.gate.closed:
            return []
        self.store.verify()
        self.outbox.publish_pending()
        return self.executor.run_due()

    def next_action_due(self) -> datetime | None:
        """When the next planned action, retry or publication is due (now: a re-plan's
        referrals wait to be published); what the wake-up timer is set to."""
        return self.store.next_due(self.clock.now())

    def next_wakeup(self) -> datetime | None:
        """The earliest of: next action, next source poll, next re-plan."""
        times = [t for t in (self.next_action_due(), self.poller.next_poll()) if t is not None]
        planned = self.store.planned_times()
        for user_id in self.users:
            at = planned.get(user_id)
            times.append(self.clock.now() if at is None else at + self.settings.replan_interval)
        return min(times) if times else None

    def run_virtual(
        self, until: datetime, step: timedelta = timedelta(minutes=1)
    ) -> list[ActionEvent]:
        """Accelerated time: jump the virtual clock from wake-up to wake-up up to ``until``.

        Never jumps more than ``step`` at once, so polls happen at least that often.
        """
        if not isinstance(self.clock, VirtualClock):
            raise CalrefError("run_virtual needs the service to run on a VirtualClock")
        until = as_utc(until, "run_virtual until")
        if not self.started:
            self.start()
        events: list[ActionEvent] = []
        while True:
            events.extend(self.tick())
            now = self.clock.now()
            if now >= until:
                return events
            wake = self.next_wakeup() or until
            target = min(max(wake, now + timedelta(seconds=1)), now + step, until)
            self.clock.set(target)


def in_window(event: CalendarEvent, window: SyncWindow) -> bool:
    """Whether ``event`` overlaps ``window`` (the store holds the wider sync window's events).

    An all-day event's dates are read as UTC days widened by a day each way, so no time
    zone can make one that the source returned for the planning window drop out here.
    """
    start, end = event.start, event.end
    if isinstance(start, datetime) and isinstance(end, datetime):
        return start < window.end and (end > window.start or start >= window.start)
    first = window.start.astimezone(UTC).date() - timedelta(days=1)
    last = window.end.astimezone(UTC).date() + timedelta(days=1)
    return _as_date(start) <= last and _as_date(end) >= first


def _as_date(value: datetime | date) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _db_reason(err: SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    return str(orig if orig is not None else err).splitlines()[0]


def _check_plan(plan: Plan, user_id: str) -> None:
    if plan.user != user_id:
        raise CalrefError(f"planner returned a plan for {plan.user!r} when asked for {user_id!r}")
    for action in plan.actions:
        if action.at.tzinfo is None or action.at.utcoffset() is None:
            raise CalrefError(f"planner: action for {user_id} has a naive time {action.at}")
    for referral in plan.referrals:
        if referral.end <= referral.start:
            raise CalrefError(
                f"planner: referral for {user_id} at {referral.start.isoformat()} "
                "does not end after it starts"
            )
