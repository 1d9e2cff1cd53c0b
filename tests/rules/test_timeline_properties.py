"""Properties of the timeline that hold for any set of intents (Hypothesis).

Intents are drawn on a coarse 10-minute grid so that touching, nested and
identical intervals and equal priorities are common. Where a property needs an
oracle, it is computed by brute force over the grid, independently of the
sweep in rules.timeline_phone.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.model import ActionKind, Intent, PhoneAction, PlannedAction, Referral
from rules.timeline import build_timeline

BASE = datetime(2026, 3, 29, tzinfo=UTC)
STEP = timedelta(minutes=10)
SLOTS = 40

ALL_ACTIONS = [
    PhoneAction.none(),
    PhoneAction.follow_profile(),
    PhoneAction.open(),
    PhoneAction.close(),
    PhoneAction.forward("100"),
    PhoneAction.forward("200"),
    PhoneAction.profile_switch("mobile"),
]
actions = st.sampled_from(ALL_ACTIONS)


@st.composite
def intents_(
    draw: st.DrawFn,
    start_actions: st.SearchStrategy[PhoneAction] = actions,
    end_actions: st.SearchStrategy[PhoneAction] = actions,
    slots: int = SLOTS,
) -> Intent:
    start = draw(st.integers(0, slots))
    length = draw(st.integers(-2, min(12, slots)))
    return Intent(
        event=draw(st.sampled_from("abcdefgh")),
        start=BASE + start * STEP,
        end=BASE + (start + length) * STEP,
        reason=draw(st.sampled_from(["meeting", "away", "lunch", "travel"])),
        message=draw(st.sampled_from(["", "x", "y"])),
        start_action=draw(start_actions),
        end_action=draw(end_actions),
        priority=draw(st.integers(0, 3)),
        rule=draw(st.sampled_from(["r1", "r2"])),
        end_action_explicit=draw(st.booleans()),
    )


intent_lists = st.lists(intents_(), max_size=12)


def valid(intents: list[Intent]) -> list[Intent]:
    return [i for i in intents if i.end > i.start]


def grid_midpoints() -> list[datetime]:
    return [BASE + (k * 2 + 1) * STEP / 2 for k in range(-2, SLOTS + 14)]


def referral_of(referrals: list[Referral], action: PlannedAction) -> Referral:
    (found,) = [r for r in referrals if r.start == action.referral_start]
    return found


def demands(intents: list[Intent], t: datetime) -> set[PhoneAction]:
    """Brute force: the start actions of the governing candidates at ``t`` (empty: released).

    The governing intent is the active phone-changing one with the highest
    priority, then the later start, then the later end; if several remain, any
    of their actions is accepted.
    """
    active = [i for i in intents if i.start <= t < i.end and i.start_action.changes_phone]
    if not active:
        return set()
    best = max((i.priority, i.start, i.end) for i in active)
    return {i.start_action for i in active if (i.priority, i.start, i.end) == best}


@given(intent_lists)
def test_referrals_are_sorted_and_never_overlap_or_touch(intents: list[Intent]) -> None:
    referrals, _ = build_timeline("u", intents)

    for ref in referrals:
        assert ref.start < ref.end and ref.user == "u"
    for left, right in pairwise(referrals):
        assert left.end < right.start


@given(intent_lists)
def test_actions_are_in_time_order_inside_their_referral_and_never_none(
    intents: list[Intent],
) -> None:
    referrals, planned = build_timeline("u", intents)

    assert [a.at for a in planned] == sorted(a.at for a in planned)
    for action in planned:
        ref = referral_of(referrals, action)
        assert action.action.kind is not ActionKind.NONE
        assert action.user == "u"
        assert set(action.events) <= set(ref.events)
        assert action.at.tzinfo is UTC
        if action.moment == "start":
            assert action.at == ref.start
        elif action.moment == "end":
            assert action.at == ref.end and action.action == ref.end_action
        else:
            assert action.moment == "change" and ref.start < action.at < ref.end


@given(intent_lists)
def test_no_action_repeats_the_previous_one_without_an_end_between(
    intents: list[Intent],
) -> None:
    _, planned = build_timeline("u", intents)

    inside = [a for a in planned if a.moment != "end"]
    for before, after in pairwise(inside):
        if before.referral_start == after.referral_start:
            assert before.action != after.action
            assert before.at < after.at


@given(intent_lists)
def test_every_intent_lies_in_exactly_one_referral(intents: list[Intent]) -> None:
    referrals, _ = build_timeline("u", intents)

    for item in valid(intents):
        holders = [r for r in referrals if r.start <= item.start and item.end <= r.end]
        assert len(holders) == 1
        assert item.event in holders[0].events
    for ref in referrals:
        inside = {i.event for i in valid(intents) if ref.start <= i.start < ref.end}
        assert set(ref.events) == inside
        assert len(ref.events) == len(set(ref.events))


@given(intent_lists)
def test_referrals_cover_exactly_the_union_of_the_intents(intents: list[Intent]) -> None:
    referrals, _ = build_timeline("u", intents)

    for t in grid_midpoints():
        by_intent = any(i.start <= t < i.end for i in intents)
        by_referral = any(r.start <= t < r.end for r in referrals)
        assert by_intent == by_referral, t
    starts = {i.start for i in valid(intents)}
    ends = {i.end for i in valid(intents)}
    assert all(r.start in starts and r.end in ends for r in referrals)


@given(intent_lists)
def test_reason_and_message_come_from_a_highest_priority_intent(intents: list[Intent]) -> None:
    referrals, _ = build_timeline("u", intents)

    for ref in referrals:
        inside = [i for i in valid(intents) if ref.start <= i.start < ref.end]
        top = max(i.priority for i in inside)
        earliest = min(i.start for i in inside if i.priority == top)
        leads = [i for i in inside if i.priority == top and i.start == earliest]
        longest = max(i.end for i in leads)
        assert (ref.reason, ref.message) in {
            (i.reason, i.message) for i in leads if i.end == longest
        }


@given(intent_lists)
def test_while_governed_the_last_planned_action_is_the_governing_demand(
    intents: list[Intent],
) -> None:
    referrals, planned = build_timeline("u", intents)

    for ref in referrals:
        mine = [a for a in planned if a.referral_start == ref.start]
        assert ref.start_action in (demands(intents, ref.start) or {PhoneAction.none()})
        for t in grid_midpoints():
            if not ref.start <= t < ref.end:
                continue
            wanted = demands(intents, t)
            sent = [a for a in mine if a.at <= t and a.moment != "end"]
            if wanted:
                assert sent and sent[-1].action in wanted, t


@given(intent_lists)
def test_an_explicit_end_action_of_the_referral_reaches_its_end(intents: list[Intent]) -> None:
    referrals, _ = build_timeline("u", intents)

    for ref in referrals:
        tagged = [
            i for i in valid(intents) if ref.start <= i.start < ref.end and i.end_action_explicit
        ]
        if tagged:
            last = max(i.end for i in tagged)
            chosen = {i.end_action for i in tagged if i.end == last}
            if ref.end_action not in chosen:
                # Only a tagged "none" gives way: to the release of a still governed phone.
                assert PhoneAction.none() in chosen and ref.end_action.changes_phone


soft_end_actions = st.sampled_from(
    [PhoneAction.none(), PhoneAction.follow_profile(), PhoneAction.open()]
)


@st.composite
def polite_intents(draw: st.DrawFn) -> Intent:
    """An intent that never itself asks to leave the phone closed or forwarded.

    A short grid makes equal ends (the tricky case) common.
    """
    item = draw(intents_(end_actions=soft_end_actions, slots=6))
    if item.start_action.changes_phone:
        return replace(item, end_action=PhoneAction.follow_profile())
    return item


@settings(max_examples=300)
@given(st.lists(polite_intents(), max_size=8))
def test_the_phone_is_never_left_closed_or_forwarded(intents: list[Intent]) -> None:
    referrals, planned = build_timeline("u", intents)

    for ref in referrals:
        mine = [a for a in planned if a.referral_start == ref.start]
        if mine:
            kind = mine[-1].action.kind
            assert kind not in (ActionKind.CLOSE, ActionKind.FORWARD), mine


@settings(max_examples=50)
@given(intent_lists, st.randoms(use_true_random=False))
def test_input_order_and_duplicates_do_not_change_the_output(
    intents: list[Intent], rnd: random.Random
) -> None:
    expected = build_timeline("u", intents)
    shuffled = list(intents)
    rnd.shuffle(shuffled)

    assert build_timeline("u", shuffled) == expected
    assert build_timeline("u", shuffled + intents) == expected
