"""Referrals that grow by merging keep their identity, so the phone does not flap.

These tests use the real planner (rules + timeline), where overlapping meetings
form one referral.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service_fakes import T0, FakeCalendar, make_users

from connectors.clock import VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext
from rules.model import CalendarEvent, ShowAs
from rules.planner import plan_user
from rules.rulefile import default_rules
from sync.service.service import Service
from sync.service.settings import ServiceSettings
from sync.store import Store

H = timedelta(hours=1)
M = timedelta(minutes=1)
CTX = EvaluationContext(
    timezone=ZoneInfo("Europe/Stockholm"), policy=ForwardPolicy(), rules=default_rules()
)


def busy(uid: str, start: datetime, minutes: int, subject: str) -> CalendarEvent:
    return CalendarEvent(
        uid=uid, start=start, end=start + minutes * M, subject=subject, show_as=ShowAs.BUSY
    )


def service_for(
    store: Store, clock: VirtualClock, cal: FakeCalendar
) -> tuple[Service, SimulatedSwitchboard]:
    users = make_users("anna")
    sim = SimulatedSwitchboard(users, clock=clock)
    service = Service(
        store,
        sim,
        {"anna": [cal]},
        users,
        lambda user, events, window: plan_user(user, events, CTX),
        clock,
        ServiceSettings(concurrency=1),
        rng=random.Random(7),
    )
    return service, sim


def sent(sim: SimulatedSwitchboard) -> list[tuple[datetime, str]]:
    return [(r.at, r.detail) for r in sim.log() if r.op == "action" and r.error is None]


def test_an_earlier_meeting_joining_a_running_referral_keeps_the_phone_closed(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    cal = FakeCalendar("c", [busy("review", T0 + H, 60, "Review #close")])
    service, sim = service_for(sqlite_store, clock, cal)
    service.start()
    clock.set(T0 + H + 5 * M)
    service.tick()
    # While it runs, a meeting that began earlier and overlaps it is added.
    cal.put(busy("early", T0 + 30 * M, 45, "Early #close"))
    clock.set(T0 + H + 10 * M)
    service.tick()
    clock.set(T0 + 2 * H)
    service.tick()
    assert sent(sim) == [(T0 + H + 5 * M, "close"), (T0 + 2 * H, "follow_profile")]
    referrals = [r for r in sqlite_store.referrals("anna") if r.active]
    assert [(r.start, r.end) for r in referrals] == [(T0 + 30 * M, T0 + 2 * H)]
    assert [op for op in (r.op for r in sim.log()) if op != "action"] == [
        "publish_referral",
        "publish_referral",  # the same referral, updated with its new start
    ]


def test_a_referral_split_in_two_ends_the_first_part_and_starts_the_second(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    cal = FakeCalendar(
        "c",
        [busy("a", T0 + H, 60, "Part one #close"), busy("b", T0 + 2 * H, 60, "Part two #close")],
    )
    service, sim = service_for(sqlite_store, clock, cal)
    service.start()
    clock.set(T0 + H)
    service.tick()
    # The second part moves an hour later: the touching referral splits.
    cal.put(busy("b", T0 + 3 * H, 60, "Part two #close"))
    clock.set(T0 + H + 10 * M)
    service.tick()
    for hour in (2, 3, 4):
        clock.set(T0 + hour * H)
        service.tick()
    assert sent(sim) == [
        (T0 + H, "close"),
        (T0 + 2 * H, "follow_profile"),
        (T0 + 3 * H, "close"),
        (T0 + 4 * H, "follow_profile"),
    ]


def test_cancelling_the_closing_meeting_of_a_running_referral_reopens_the_phone_now(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    cal = FakeCalendar(
        "c",
        [
            busy("course", T0 + H, 60, "Course #close"),
            busy("call", T0 + H + 30 * M, 90, "Call with the bank"),
        ],
    )
    service, sim = service_for(sqlite_store, clock, cal)
    service.start()
    clock.set(T0 + H)
    service.tick()
    # The course is cancelled while it runs; the soft call that overlaps it goes on.
    cal.remove("course")
    clock.set(T0 + H + 45 * M)
    service.tick()
    clock.set(T0 + 3 * H)
    service.tick()
    assert sent(sim) == [
        (T0 + H, "close"),
        (T0 + H + 45 * M, "follow_profile"),  # the course's end action, now
    ]
    # The call alone is a soft referral: it stays shown, the phone stays open.
    [call] = [r for r in sqlite_store.referrals("anna") if r.active]
    assert (call.start, call.end, str(call.start_action)) == (T0 + H + 30 * M, T0 + 3 * H, "none")
