"""Test doubles for the service tests: a scriptable calendar source and a small planner.

The switchboard is the real in-memory ``SimulatedSwitchboard``; these cover the
two other inputs: calendars (events the test edits, failures it injects) and the
planner (each busy event becomes one referral whose actions come from its subject,
``"close|open"``, ``"forward 0701234567|switch mobile"``).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.errors import CalendarError, CalendarUnavailable, SyncStateExpired, ThrottledError
from rules.model import (
    CalendarEvent,
    Moment,
    PhoneAction,
    Plan,
    PlannedAction,
    Profile,
    Referral,
    ShowAs,
    User,
)
from sync.service.lease import LeaderLease
from sync.service.service import Service
from sync.service.settings import ServiceSettings
from sync.store import Store

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday, 08:00 in Stockholm


class FakeCalendar:
    """A calendar the test edits; answers full syncs, or fails as told."""

    def __init__(self, source_id: str, events: list[CalendarEvent] | None = None) -> None:
        self._id = source_id
        self.events: dict[str, CalendarEvent] = {e.key: e for e in events or []}
        self.fail_with: Exception | None = None
        self.expire_next = False
        self.calls: list[str | None] = []

    @property
    def id(self) -> str:
        return self._id

    def put(self, event: CalendarEvent) -> None:
        self.events[event.key] = event

    def remove(self, key: str) -> None:
        del self.events[key]

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        self.calls.append(state)
        if self.fail_with is not None:
            raise self.fail_with
        if self.expire_next and state is not None:
            self.expire_next = False
            raise SyncStateExpired(self._id, "sync token expired")
        inside = [e for e in self.events.values() if _overlaps(e, window)]
        return SyncResult(events=inside, full=True, state=f"token-{len(self.calls)}")


def _overlaps(event: CalendarEvent, window: SyncWindow) -> bool:
    start, end = event.start, event.end
    assert isinstance(start, datetime) and isinstance(end, datetime)
    return start < window.end and end > window.start


def meeting(uid: str, start: datetime, minutes: int, subject: str = "close|open") -> CalendarEvent:
    return CalendarEvent(
        uid=uid, start=start, end=start + timedelta(minutes=minutes), subject=subject
    )


def parse_action(text: str) -> PhoneAction:
    word, _, arg = text.strip().partition(" ")
    if word == "forward":
        return PhoneAction.forward(arg)
    if word == "switch":
        return PhoneAction.profile_switch(arg)
    simple = {
        "none": PhoneAction.none(),
        "open": PhoneAction.open(),
        "close": PhoneAction.close(),
        "follow_profile": PhoneAction.follow_profile(),
    }
    return simple[word]


def subject_planner(user: User, events: list[CalendarEvent], window: SyncWindow) -> Plan:
    """Each busy timed event in the window: one referral, actions from ``"start|end"``."""
    referrals: list[Referral] = []
    actions: list[PlannedAction] = []
    for event in sorted(events, key=lambda e: (e.start, e.key)):
        if event.cancelled or event.show_as not in (ShowAs.BUSY, ShowAs.OOF):
            continue
        if not _overlaps(event, window):
            continue
        assert isinstance(event.start, datetime) and isinstance(event.end, datetime)
        start_text, _, end_text = event.subject.partition("|")
        start_action, end_action = parse_action(start_text), parse_action(end_text or "open")
        referral = Referral(
            user=user.id,
            start=event.start,
            end=event.end,
            reason="meeting",
            message=event.subject,
            start_action=start_action,
            end_action=end_action,
            events=(event.key,),
        )
        referrals.append(referral)
        for moment, at, action in (
            (Moment.START, event.start, start_action),
            (Moment.END, event.end, end_action),
        ):
            actions.append(
                PlannedAction(
                    user=user.id,
                    at=at,
                    action=action,
                    events=(event.key,),
                    moment=moment,
                    referral_start=event.start,
                    rule="test",
                )
            )
    return Plan(user=user.id, referrals=tuple(referrals), actions=tuple(actions))


def make_users(*ids: str) -> list[User]:
    return [
        User(
            id=uid,
            name=uid.title(),
            email=f"{uid}@example.com",
            extension=f"10{n}",
            profiles=(
                Profile("extension", "Extension", f"10{n}"),
                Profile("mobile", "Mobile", "0701"),
            ),
        )
        for n, uid in enumerate(ids)
    ]


def calendar_error(source: str) -> CalendarError:
    return CalendarUnavailable(source, "HTTP 500 from the calendar server")


def throttled(source: str, seconds: float) -> ThrottledError:
    return ThrottledError(source, "too many requests", retry_after=seconds)


def phone_commands(sim: SimulatedSwitchboard, user: str) -> list[tuple[str, str, bool]]:
    """The phone actions the switchboard received for ``user``: (detail, key, replayed)."""
    return [
        (r.detail, r.idempotency_key, r.replayed)
        for r in sim.log()
        if r.user == user and r.op == "action" and r.error is None
    ]


def build_service(
    store: Store,
    sim: object,
    clock: VirtualClock,
    calendars: dict[str, list[FakeCalendar]],
    users: list[User],
    *,
    lease: LeaderLease | None = None,
    **settings: object,
) -> Service:
    """A service with the subject planner, one worker (deterministic) and a seeded rng."""
    options: dict[str, object] = {"concurrency": 1}
    options.update(settings)
    return Service(
        store,
        sim,  # type: ignore[arg-type]
        calendars,
        users,
        subject_planner,
        clock,
        ServiceSettings(**options),  # type: ignore[arg-type]
        rng=random.Random(7),
        lease=lease,
    )


class Crash(BaseException):
    """Stands for the process dying: not an ``Exception``, so nothing in calref catches it."""


class CrashAfterApply:
    """A switchboard that applies the next action and then 'crashes' before answering."""

    def __init__(self, inner: SimulatedSwitchboard) -> None:
        self.inner = inner
        self.armed = True

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def apply_action(self, user_id: str, action: PhoneAction, idempotency_key: str) -> object:
        state = self.inner.apply_action(user_id, action, idempotency_key)
        if self.armed:
            self.armed = False
            raise Crash("process killed between the switchboard call and recording it")
        return state
