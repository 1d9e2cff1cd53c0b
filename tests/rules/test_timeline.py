"""Worked examples of the timeline: intents in, referrals and planned phone actions out.

Each test is one situation an administrator will recognise (a soft meeting, a
day out of office with meetings inside, ``#mobile``...). The same examples are
the tables in docs/timeline.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rules.errors import CalrefError, ValidationError
from rules.model import Intent, PhoneAction, PlannedAction
from rules.timeline import build_timeline

DAY = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
NONE = PhoneAction.none()
FOLLOW = PhoneAction.follow_profile()
OPEN = PhoneAction.open()
CLOSE = PhoneAction.close()
MOBILE = PhoneAction.profile_switch("mobile")


def at(hhmm: str, day: datetime = DAY) -> datetime:
    hours, minutes = hhmm.split(":")
    return day + timedelta(hours=int(hours), minutes=int(minutes))


def intent(
    event: str,
    start: str,
    end: str,
    *,
    reason: str = "meeting",
    start_action: PhoneAction = NONE,
    end_action: PhoneAction = NONE,
    priority: int = 0,
    explicit: bool = False,
) -> Intent:
    return Intent(
        event=event,
        start=at(start),
        end=at(end),
        reason=reason,
        message=f"{event} message",
        start_action=start_action,
        end_action=end_action,
        priority=priority,
        rule=f"rule-{event}",
        end_action_explicit=explicit,
    )


def steps(actions: list[PlannedAction]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The actions as (time, moment, action, events) rows, easy to compare with a table."""
    return [(a.at.strftime("%H:%M"), a.moment, str(a.action), a.events) for a in actions]


def test_no_intents_give_no_referrals_and_no_actions() -> None:
    assert build_timeline("u1", []) == ([], [])


def test_soft_meeting_makes_a_referral_without_phone_actions() -> None:
    referrals, actions = build_timeline("u1", [intent("m1", "09:00", "10:00")])

    assert len(referrals) == 1
    ref = referrals[0]
    assert (ref.user, ref.start, ref.end) == ("u1", at("09:00"), at("10:00"))
    assert (ref.reason, ref.message, ref.events) == ("meeting", "m1 message", ("m1",))
    assert ref.start_action == NONE and ref.end_action == NONE
    assert actions == []


def test_soft_meeting_with_an_end_action_plans_only_the_end() -> None:
    _, actions = build_timeline("u1", [intent("m1", "09:00", "10:00", end_action=OPEN)])

    assert steps(actions) == [("10:00", "end", "open", ("m1",))]
    assert actions[0].referral_start == at("09:00") and actions[0].rule == "rule-m1"


def test_closed_all_day_absence_ignores_the_meetings_inside_it() -> None:
    oof = intent(
        "oof", "00:00", "23:59", reason="away", start_action=CLOSE, end_action=FOLLOW, priority=10
    )
    meetings = [
        intent("m1", "09:00", "10:00"),
        intent("m2", "10:00", "11:00", start_action=CLOSE, end_action=OPEN),
        intent("m3", "13:00", "14:00", start_action=PhoneAction.forward("0701")),
    ]

    referrals, actions = build_timeline("u1", [oof, *meetings])

    assert len(referrals) == 1
    ref = referrals[0]
    assert ref.reason == "away" and ref.message == "oof message"
    assert ref.events == ("oof", "m1", "m2", "m3")
    assert ref.start_action == CLOSE and ref.end_action == FOLLOW
    assert steps(actions) == [
        ("00:00", "start", "close", ("oof",)),
        ("23:59", "end", "follow_profile", ("oof",)),
    ]


def test_back_to_back_close_meetings_close_once_and_end_once() -> None:
    first = intent("m1", "09:00", "10:00", start_action=CLOSE, end_action=FOLLOW)
    second = intent("m2", "10:00", "11:00", start_action=CLOSE, end_action=OPEN)

    referrals, actions = build_timeline("u1", [second, first])

    assert [(r.start, r.end, r.events) for r in referrals] == [
        (at("09:00"), at("11:00"), ("m1", "m2"))
    ]
    assert steps(actions) == [
        ("09:00", "start", "close", ("m1",)),
        ("11:00", "end", "open", ("m2",)),
    ]


def test_meetings_with_a_gap_make_separate_referrals() -> None:
    first = intent("m1", "09:00", "10:00", start_action=CLOSE, end_action=FOLLOW)
    second = intent("m2", "10:01", "11:00", start_action=CLOSE, end_action=FOLLOW)

    referrals, actions = build_timeline("u1", [second, first])

    assert [(r.start, r.end) for r in referrals] == [
        (at("09:00"), at("10:00")),
        (at("10:01"), at("11:00")),
    ]
    assert steps(actions) == [
        ("09:00", "start", "close", ("m1",)),
        ("10:00", "end", "follow_profile", ("m1",)),
        ("10:01", "start", "close", ("m2",)),
        ("11:00", "end", "follow_profile", ("m2",)),
    ]
    assert [a.referral_start for a in actions] == [at("09:00")] * 2 + [at("10:01")] * 2


def test_mobile_tag_of_an_earlier_meeting_carries_to_the_referral_end() -> None:
    tagged = intent("m1", "09:00", "10:00", end_action=MOBILE, explicit=True)
    later = intent("m2", "09:30", "11:00", end_action=FOLLOW)

    referrals, actions = build_timeline("u1", [tagged, later])

    assert referrals[0].end_action == MOBILE
    assert steps(actions) == [("11:00", "end", "profile_switch mobile", ("m1",))]


def test_later_ending_explicit_end_action_wins_over_an_earlier_tag() -> None:
    tagged = intent("m1", "09:00", "10:00", end_action=MOBILE, explicit=True)
    later = intent("m2", "09:30", "11:00", end_action=OPEN, explicit=True)

    referrals, actions = build_timeline("u1", [tagged, later])

    assert referrals[0].end_action == OPEN
    assert steps(actions) == [("11:00", "end", "open", ("m2",))]


def test_forward_inside_a_soft_meeting_changes_and_releases_the_phone() -> None:
    meeting = intent("m1", "09:00", "12:00")
    forward = intent(
        "fw", "10:00", "11:00", start_action=PhoneAction.forward("0701"), end_action=FOLLOW
    )

    referrals, actions = build_timeline("u1", [meeting, forward])

    assert referrals[0].start_action == NONE  # soft at its start
    assert referrals[0].end_action == NONE
    assert steps(actions) == [
        ("10:00", "change", "forward 0701", ("fw",)),
        ("11:00", "change", "follow_profile", ("fw",)),
    ]


def test_explicit_end_action_of_a_released_forward_waits_for_the_referral_end() -> None:
    meeting = intent("m1", "09:00", "12:00")
    forward = intent(
        "fw",
        "10:00",
        "11:00",
        start_action=PhoneAction.forward("0701"),
        end_action=MOBILE,
        explicit=True,
    )

    referrals, actions = build_timeline("u1", [meeting, forward])

    assert referrals[0].end_action == MOBILE
    assert steps(actions) == [
        ("10:00", "change", "forward 0701", ("fw",)),
        ("11:00", "change", "follow_profile", ("fw",)),
        ("12:00", "end", "profile_switch mobile", ("fw",)),
    ]


def test_release_with_end_action_none_plans_nothing_at_that_moment() -> None:
    meeting = intent("m1", "09:00", "12:00", end_action=OPEN)
    close = intent("c1", "10:00", "11:00", start_action=CLOSE, end_action=NONE)

    _, actions = build_timeline("u1", [meeting, close])

    assert steps(actions) == [
        ("10:00", "change", "close", ("c1",)),
        ("12:00", "end", "open", ("m1",)),
    ]


def test_meeting_overlapping_the_start_of_an_absence() -> None:
    meeting = intent("m1", "11:00", "13:00", end_action=OPEN)
    oof = intent(
        "oof", "12:00", "17:00", reason="away", start_action=CLOSE, end_action=FOLLOW, priority=5
    )

    referrals, actions = build_timeline("u1", [oof, meeting])

    ref = referrals[0]
    assert (ref.start, ref.end, ref.reason) == (at("11:00"), at("17:00"), "away")
    assert ref.events == ("m1", "oof")
    assert ref.start_action == NONE and ref.end_action == FOLLOW
    assert steps(actions) == [
        ("12:00", "change", "close", ("oof",)),
        ("17:00", "end", "follow_profile", ("oof",)),
    ]


def test_forward_takes_over_when_a_higher_priority_close_ends() -> None:
    forward = intent(
        "fw", "09:00", "17:00", start_action=PhoneAction.forward("0701"), end_action=FOLLOW
    )
    close = intent("c1", "10:00", "11:00", start_action=CLOSE, end_action=OPEN, priority=3)

    _, actions = build_timeline("u1", [forward, close])

    assert steps(actions) == [
        ("09:00", "start", "forward 0701", ("fw",)),
        ("10:00", "change", "close", ("c1",)),
        ("11:00", "change", "forward 0701", ("fw",)),
        ("17:00", "end", "follow_profile", ("fw",)),
    ]


def test_later_starting_intent_governs_at_equal_priority() -> None:
    first = intent("a", "09:00", "12:00", start_action=PhoneAction.forward("100"))
    second = intent("b", "10:00", "11:00", start_action=PhoneAction.forward("200"))

    _, actions = build_timeline("u1", [second, first])

    assert steps(actions) == [
        ("09:00", "start", "forward 100", ("a",)),
        ("10:00", "change", "forward 200", ("b",)),
        ("11:00", "change", "forward 100", ("a",)),
    ]


def test_lower_priority_intent_inside_does_not_take_the_phone() -> None:
    close = intent("c1", "09:00", "12:00", start_action=CLOSE, end_action=FOLLOW, priority=2)
    forward = intent("fw", "10:00", "11:00", start_action=PhoneAction.forward("200"))

    _, actions = build_timeline("u1", [close, forward])

    assert steps(actions) == [
        ("09:00", "start", "close", ("c1",)),
        ("12:00", "end", "follow_profile", ("c1",)),
    ]


def test_phone_still_governed_at_the_end_is_released_by_the_governing_intent() -> None:
    close = intent("c1", "09:00", "10:00", start_action=CLOSE, end_action=FOLLOW)
    soft = intent("m1", "09:00", "10:00", reason="board", end_action=NONE, priority=5)

    referrals, actions = build_timeline("u1", [close, soft])

    assert referrals[0].reason == "board"
    assert referrals[0].end_action == FOLLOW
    assert steps(actions) == [
        ("09:00", "start", "close", ("c1",)),
        ("10:00", "end", "follow_profile", ("c1",)),
    ]


def test_tagged_none_at_the_end_still_releases_a_governed_phone() -> None:
    forward = intent(
        "fw", "09:00", "10:00", start_action=PhoneAction.forward("0701"), end_action=FOLLOW
    )
    tagged = intent("m1", "09:00", "10:00", end_action=NONE, explicit=True)

    referrals, actions = build_timeline("u1", [forward, tagged])

    assert referrals[0].end_action == FOLLOW
    assert steps(actions) == [
        ("09:00", "start", "forward 0701", ("fw",)),
        ("10:00", "end", "follow_profile", ("fw",)),
    ]


def test_reason_ties_go_to_the_earlier_then_the_longer_intent() -> None:
    early = intent("a", "09:00", "10:00", reason="early")
    late = intent("b", "09:30", "12:00", reason="late")
    longer = intent("c", "09:00", "11:00", reason="longer")

    assert build_timeline("u", [late, early])[0][0].reason == "early"
    assert build_timeline("u", [late, early, longer])[0][0].reason == "longer"


def test_repeated_event_key_is_listed_once() -> None:
    first = intent("m1", "09:00", "10:00")
    second = intent("m1", "09:30", "10:30")

    referrals, _ = build_timeline("u1", [first, second])

    assert referrals[0].events == ("m1",)


def test_intents_ending_at_or_before_their_start_are_dropped() -> None:
    empty = intent("z", "09:00", "09:00", start_action=CLOSE, end_action=OPEN)
    backwards = intent("b", "10:00", "09:30", start_action=CLOSE, end_action=OPEN)

    assert build_timeline("u1", [empty, backwards]) == ([], [])


def test_all_day_absences_across_the_dst_change_merge_into_one_referral() -> None:
    # Europe/Stockholm: 2026-03-29 is 23 hours long (02:00 CET -> 03:00 CEST).
    def all_day(event: str, start: datetime, end: datetime) -> Intent:
        return Intent(event, start, end, "away", "", CLOSE, FOLLOW, priority=10)

    sunday = all_day(
        "sun", datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)
    )
    monday = all_day(
        "mon", datetime(2026, 3, 29, 22, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC)
    )

    referrals, actions = build_timeline("u1", [monday, sunday])

    assert sunday.end - sunday.start == timedelta(hours=23)
    assert [(r.start, r.end, r.events) for r in referrals] == [
        (sunday.start, monday.end, ("sun", "mon"))
    ]
    assert [(a.at, a.moment, a.action) for a in actions] == [
        (sunday.start, "start", CLOSE),
        (monday.end, "end", FOLLOW),
    ]


def test_aware_times_in_other_zones_come_out_in_utc() -> None:
    cest = timezone(timedelta(hours=2))
    local = Intent(
        "m1",
        datetime(2026, 5, 4, 11, tzinfo=cest),
        datetime(2026, 5, 4, 12, tzinfo=cest),
        "meeting",
        "",
        CLOSE,
        OPEN,
    )

    referrals, actions = build_timeline("u1", [local])

    assert referrals[0].start == at("09:00") and referrals[0].start.tzinfo is UTC
    assert [a.at.tzinfo for a in actions] == [UTC, UTC]
    assert [a.at for a in actions] == [at("09:00"), at("10:00")]


def test_naive_times_are_refused_with_the_user_and_event_named() -> None:
    naive = Intent("m1", datetime(2026, 5, 4, 9), at("10:00"), "meeting", "", NONE, NONE)

    with pytest.raises(ValidationError) as caught:
        build_timeline("u1", [naive])

    message = str(caught.value)
    assert "'u1'" in message and "'m1'" in message and "no time zone" in message
    assert isinstance(caught.value, CalrefError)
    assert len(caught.value.problems) == 1


def test_every_bad_intent_is_reported_at_once() -> None:
    bad = [
        Intent("a", datetime(2026, 5, 4, 9), datetime(2026, 5, 4, 10), "m", "", NONE, NONE),
        "not an intent",
    ]

    with pytest.raises(ValidationError) as caught:
        build_timeline("u1", bad)  # type: ignore[list-item]

    assert len(caught.value.problems) == 3
    assert "expected an Intent, got str" in str(caught.value)
