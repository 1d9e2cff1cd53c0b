"""Evaluating one event: default rules, each condition kind, tags over rules, privacy, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext, evaluate_event, explain_event
from rules.model import (
    CalendarEvent,
    Intent,
    OrganizerKind,
    PhoneAction,
    Profile,
    Refused,
    Response,
    ShowAs,
    User,
)
from rules.rulefile import default_rules, parse_rules

TZ = ZoneInfo("Europe/Stockholm")
CTX = EvaluationContext(TZ, ForwardPolicy(), default_rules())
USER = User(
    "u1",
    "Ann",
    "ann@example.se",
    "4711",
    (Profile("ext", "Extension"), Profile("mob", "Mobile", "0701234567", ("mobile", "mobil"))),
)
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)


def ev(
    subject: str = "Budget", hours: float = 1, start: datetime = MONDAY_9, **kw: object
) -> CalendarEvent:
    return CalendarEvent("e1", start, start + timedelta(hours=hours), subject, **kw)  # type: ignore[arg-type]


def intent_of(event: CalendarEvent, ctx: EvaluationContext = CTX) -> Intent:
    result = evaluate_event(event, USER, ctx)
    assert result.intent is not None, result.ignored
    assert result.ignored is None
    return result.intent


def why_ignored(event: CalendarEvent, ctx: EvaluationContext = CTX) -> tuple[str, str]:
    result = evaluate_event(event, USER, ctx)
    assert result.intent is None
    assert result.ignored is not None
    return result.ignored.why, result.ignored.rule


def with_rules(text: str) -> EvaluationContext:
    return EvaluationContext(TZ, ForwardPolicy(), parse_rules("version: 1\n" + text))


# --- the default rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "why", "rule"),
    [
        ({"cancelled": True}, "cancelled", "cancelled"),
        ({"response": Response.DECLINED}, "declined", "declined"),
        ({"response": Response.TENTATIVE}, "tentative", "tentative response"),
        ({"show_as": ShowAs.FREE}, "free", "free"),
        ({"show_as": ShowAs.TENTATIVE}, "tentative", "tentative"),
        ({"show_as": ShowAs.WORKING_ELSEWHERE}, "working_elsewhere", "working elsewhere"),
        ({"show_as": ShowAs.OOF, "cancelled": True}, "cancelled", "cancelled"),
    ],
)
def test_default_rules_skip(fields: dict[str, object], why: str, rule: str) -> None:
    assert why_ignored(ev(**fields)) == (why, rule)


def test_default_busy_is_a_soft_meeting_referral() -> None:
    intent = intent_of(ev("Budget review", response=Response.ACCEPTED))
    assert intent == Intent(
        event="e1",
        start=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
        end=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        reason="meeting",
        message="Budget review",
        start_action=PhoneAction.none(),
        end_action=PhoneAction.none(),
        priority=10,
        rule="busy",
        end_action_explicit=False,
    )
    assert intent.start.tzinfo is UTC


def test_default_out_of_office_closes_and_follows_profile() -> None:
    intent = intent_of(ev("Conference", show_as=ShowAs.OOF))
    assert (intent.reason, intent.message, intent.priority) == ("out_of_office", "Conference", 50)
    assert intent.start_action == PhoneAction.close()
    assert intent.end_action == PhoneAction.follow_profile()


def test_event_no_rule_matches_is_ignored_as_no_rule() -> None:
    ctx = with_rules("rules:\n  - name: only oof\n    when: {show_as: oof}\n    skip: x\n")
    assert why_ignored(ev(), ctx) == ("no_rule", "")


@pytest.mark.parametrize("hours", [0, -1])
def test_zero_length_and_negative_events_are_empty(hours: float) -> None:
    assert why_ignored(ev(hours=hours)) == ("empty", "")


def test_naive_times_are_ignored_not_crashed_on() -> None:
    naive = CalendarEvent("e1", datetime(2026, 3, 2, 9), datetime(2026, 3, 2, 10), "x")
    assert why_ignored(naive)[0] == "invalid time: naive datetime"


# --- all-day events and DST ---------------------------------------------------------------------


def all_day(day: date, days: int = 1) -> CalendarEvent:
    return CalendarEvent("d1", day, day + timedelta(days=days), "Away", show_as=ShowAs.OOF)


def test_all_day_on_spring_dst_day_is_23_hours() -> None:
    intent = intent_of(all_day(date(2026, 3, 29)))
    assert intent.end - intent.start == timedelta(hours=23)
    assert intent.start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert intent.end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)


def test_all_day_on_autumn_dst_day_is_25_hours() -> None:
    intent = intent_of(all_day(date(2026, 10, 25)))
    assert intent.end - intent.start == timedelta(hours=25)
    assert intent.start == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)


def test_multi_day_all_day_spans_local_midnights() -> None:
    intent = intent_of(all_day(date(2026, 7, 6), days=5))
    assert intent.start.astimezone(TZ) == datetime(2026, 7, 6, tzinfo=TZ)
    assert intent.end.astimezone(TZ) == datetime(2026, 7, 11, tzinfo=TZ)


# --- each condition kind ----------------------------------------------------------------------


CONDITIONS = """\
rules:
  - name: hit
    when: {WHEN}
    referral: {reason: meeting}
"""


@pytest.mark.parametrize(
    ("when", "matching", "failing"),
    [
        ("{show_as: [busy, oof]}", {}, {"show_as": ShowAs.FREE}),
        ("{response: accepted}", {"response": Response.ACCEPTED}, {}),
        ("{organizer: [internal]}", {"organizer_kind": OrganizerKind.INTERNAL}, {}),
        ("{cancelled: false}", {}, {"cancelled": True}),
        ("{private: true}", {"private": True}, {}),
        (
            "{subject: ['^lunch\\b', 'dentist']}",
            {"subject": "Lunch with Bo"},
            {"subject": "Brunch"},
        ),
        ("{subject: [visit$]}", {"subject": "Site visit #mobile"}, {"subject": "visit later"}),
        (
            "{category: ['Travel*']}",
            {"categories": ("x", "travel - train")},
            {"categories": ("y",)},
        ),
        ("{duration: {min: 30m, max: 2h}}", {"hours": 2}, {"hours": 2.5}),
        ("{duration: {min: 1h30m}}", {"hours": 1.5}, {"hours": 1.25}),
        ("{weekdays: [mon, fri]}", {}, {"start": MONDAY_9 + timedelta(days=1)}),
        ("{time: {from: '08:00', to: '09:30'}}", {}, {"start": MONDAY_9.replace(hour=7)}),
        ("{time: {from: '22:00', to: '06:00'}}", {"start": MONDAY_9.replace(hour=23)}, {}),
        ("{reason_tagged: true}", {"subject": "#lunch"}, {}),
    ],
)
def test_each_condition_kind(
    when: str, matching: dict[str, object], failing: dict[str, object]
) -> None:
    ctx = with_rules(CONDITIONS.replace("{WHEN}", when))
    assert intent_of(ev(**matching), ctx).rule == "hit"
    assert why_ignored(ev(**failing), ctx) == ("no_rule", "")


def test_all_day_condition() -> None:
    ctx = with_rules(CONDITIONS.replace("{WHEN}", "{all_day: true}"))
    assert intent_of(all_day(date(2026, 3, 2)), ctx).rule == "hit"
    assert why_ignored(ev(), ctx)[0] == "no_rule"


def test_conditions_are_anded_and_first_match_wins() -> None:
    ctx = with_rules(
        "rules:\n"
        "  - name: long busy\n    when: {show_as: busy, duration: {min: 3h}}\n"
        "    referral: {reason: course, priority: 5}\n"
        "  - name: busy\n    when: {show_as: busy}\n    referral: {reason: meeting}\n"
        "  - name: also busy\n    when: {show_as: busy}\n    skip: never\n"
    )
    assert intent_of(ev(hours=4), ctx).reason == "course"
    assert intent_of(ev(hours=1), ctx).rule == "busy"


def test_time_condition_uses_local_time() -> None:
    ctx = with_rules(CONDITIONS.replace("{WHEN}", "{time: {from: '09:00', to: '10:00'}}"))
    utc_start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Stockholm
    assert intent_of(ev(start=utc_start), ctx).rule == "hit"


# --- tags over rules ---------------------------------------------------------------------------


def test_profile_tag_sets_explicit_end_action_and_is_removed_from_message() -> None:
    intent = intent_of(ev("Budget #mobile"))
    assert intent.end_action == PhoneAction.profile_switch("mob")
    assert intent.end_action_explicit
    assert intent.message == "Budget"


def test_phone_changing_start_tag_gets_follow_profile_end() -> None:
    intent = intent_of(ev("Workshop #close"))
    assert intent.start_action == PhoneAction.close()
    assert intent.end_action == PhoneAction.follow_profile()
    assert not intent.end_action_explicit


def test_forward_tag_with_profile_tag() -> None:
    intent = intent_of(ev("Visit #fwd:0701234567 #mobil"))
    assert intent.start_action == PhoneAction.forward("00701234567")
    assert intent.end_action == PhoneAction.profile_switch("mob")


def test_soft_tag_on_out_of_office_keeps_the_phone_open() -> None:
    intent = intent_of(ev("Offsite #soft", show_as=ShowAs.OOF))
    assert intent.start_action == PhoneAction.none()
    assert intent.end_action == PhoneAction.follow_profile()


def test_reason_tag_overrides_the_rule_reason() -> None:
    assert intent_of(ev("#lunch Bo")).reason == "lunch"


def test_noref_tag_skips_even_a_busy_event() -> None:
    assert why_ignored(ev("Budget #noref")) == ("tagged", "")


def test_tags_do_not_revive_a_skipped_event() -> None:
    assert why_ignored(ev("x #close", show_as=ShowAs.FREE)) == ("free", "free")


def test_external_organizer_forward_is_refused_and_not_applied() -> None:
    event = ev("Pitch #fwd:0701234567 #mobile", organizer_kind=OrganizerKind.EXTERNAL)
    result = evaluate_event(event, USER, CTX)
    assert result.intent is not None
    assert result.intent.start_action == PhoneAction.none()
    assert result.intent.end_action == PhoneAction.none()
    assert [r.why for r in result.refused] == ["external organizer", "external organizer"]


def test_premium_rate_forward_tag_is_refused() -> None:
    result = evaluate_event(ev("x #fwd:0900123456"), USER, CTX)
    assert result.refused == (Refused("e1", "#fwd:0900123456", "premium-rate number"),)
    assert result.intent is not None and result.intent.start_action == PhoneAction.none()


def test_refused_tags_are_reported_even_when_the_event_is_skipped() -> None:
    result = evaluate_event(ev("x #fwd:0900123456", show_as=ShowAs.FREE), USER, CTX)
    assert result.ignored is not None and len(result.refused) == 1


def test_rule_profile_switch_to_a_missing_profile_is_refused_and_follows_profile() -> None:
    ctx = with_rules(
        "rules:\n  - name: to desk\n    referral: {reason: meeting, end: 'profile_switch:desk'}\n"
    )
    result = evaluate_event(ev(), USER, ctx)
    assert result.intent is not None
    assert result.intent.end_action == PhoneAction.follow_profile()
    assert result.refused == (Refused("e1", "to desk", "unknown profile 'desk'"),)


def test_rule_profile_switch_by_tag_name_resolves_to_the_profile_id() -> None:
    ctx = with_rules(
        "rules:\n  - name: m\n    referral: {reason: meeting, end: 'profile_switch:mobil'}\n"
    )
    assert intent_of(ev(), ctx).end_action == PhoneAction.profile_switch("mob")


def test_rule_forward_is_normalised_and_checked() -> None:
    ctx = with_rules(
        "rules:\n  - name: f\n    referral: {reason: travel, start: 'forward:070-123 45 67'}\n"
    )
    intent = intent_of(ev(), ctx)
    assert intent.start_action == PhoneAction.forward("00701234567")
    assert intent.end_action == PhoneAction.follow_profile()


# --- messages and privacy ---------------------------------------------------------------------


def test_message_template_fields_are_local() -> None:
    ctx = with_rules(
        "rules:\n  - name: t\n    referral:\n      reason: meeting\n"
        "      message: '{reason}: {subject} {start_time}-{end_time} until {end_date}'\n"
    )
    assert intent_of(ev("Budget #mobile", hours=1.5), ctx).message == (
        "meeting: Budget 09:00-10:30 until 2026-03-02"
    )


def test_end_date_of_an_all_day_event_is_its_last_day() -> None:
    ctx = with_rules(
        "rules:\n  - name: t\n    referral: {reason: travel, message: 'back after {end_date}'}\n"
    )
    assert intent_of(all_day(date(2026, 7, 6), days=5), ctx).message == "back after 2026-07-10"


def test_private_event_shows_the_private_message() -> None:
    intent = intent_of(ev("Doctor: oncology #mobile", private=True))
    assert intent.message == "Busy"
    assert intent.end_action == PhoneAction.profile_switch("mob")


def test_private_message_is_configurable() -> None:
    ctx = with_rules(
        "private_message: Upptagen\nrules:\n  - name: a\n"
        "    referral: {reason: meeting, message: '{reason} {subject}'}\n"
    )
    assert intent_of(ev("Secret", private=True), ctx).message == "Upptagen"


WORD = st.text(alphabet=st.characters(categories=("L", "N")), min_size=2, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(WORD, min_size=1, max_size=8),
    template=st.sampled_from(
        [
            "{subject}",
            "{reason}: {subject}",
            "{subject} until {end_time}",
            "{subject} {end_date}",
        ]
    ),
)
def test_private_subjects_never_leak_into_the_message(words: list[str], template: str) -> None:
    ctx = with_rules(
        "private_message: Busy\nrules:\n  - name: a\n"
        f"    referral: {{reason: meeting, message: '{template}'}}\n"
    )
    subject = " ".join(words)
    for show_as in (ShowAs.BUSY, ShowAs.OOF):
        intent = intent_of(ev(subject, private=True, show_as=show_as), ctx)
        assert intent.message == "Busy"
        for word in words:
            if word.casefold() != "busy":
                assert word not in intent.message


# --- explain ---------------------------------------------------------------------------------


def test_explain_says_why_each_earlier_rule_failed() -> None:
    verdicts = explain_event(ev("Lunch #mobile", show_as=ShowAs.FREE), USER, CTX)
    rules = [(v.name, v.matched, v.detail) for v in verdicts if v.kind == "rule"]
    assert rules == [
        ("cancelled", False, "cancelled is false; rule wants true"),
        ("declined", False, "response is none; rule wants declined"),
        ("tentative response", False, "response is none; rule wants tentative"),
        ("free", True, "all conditions hold"),
    ]
    assert any(v.kind == "tag" and "#mobile" in v.name for v in verdicts)
    assert verdicts[-1].kind == "outcome" and verdicts[-1].detail == "free"


def test_explain_describes_the_referral_and_refusals() -> None:
    verdicts = explain_event(ev("x #fwd:0900123456"), USER, CTX)
    assert [v.detail for v in verdicts if v.kind == "refused"] == ["premium-rate number"]
    outcome = verdicts[-1]
    assert outcome.matched and outcome.name == "referral"
    assert "reason meeting" in outcome.detail and "start none" in outcome.detail
    assert str(outcome).startswith("✓ outcome referral")


def test_explain_condition_words_for_duration_weekday_time_subject() -> None:
    ctx = with_rules(
        "rules:\n"
        "  - name: d\n    when: {duration: {min: 2h}}\n    skip: x\n"
        "  - name: w\n    when: {weekdays: [sat, sun]}\n    skip: x\n"
        "  - name: t\n    when: {time: {from: '12:00', to: '13:00'}}\n    skip: x\n"
        "  - name: s\n    when: {subject: [lunch]}\n    skip: x\n"
        "  - name: c\n    when: {category: [Out*]}\n    skip: x\n"
    )
    details = [v.detail for v in explain_event(ev(), USER, ctx) if v.kind == "rule"]
    assert details == [
        "duration is 1h; rule wants at least 2h",
        "weekday is mon; rule wants sat, sun",
        "starts at 09:00; rule wants 12:00-13:00",
        "subject matches none of lunch",
        "categories are no categories; rule wants Out*",
    ]
    assert explain_event(ev(), USER, ctx)[-1].detail == "no_rule"


def test_explain_of_an_empty_event() -> None:
    (verdict,) = explain_event(ev(hours=0), USER, CTX)
    assert (verdict.kind, verdict.detail) == ("outcome", "empty")
