"""The ready-made rule files in examples/rules/ reproduce the behaviours they claim.

Each recipe mimics one known product's documented behaviour (see
docs/rule-recipes.md). Every file must load and pass ``calref rules check``;
then a table of realistic calendar entries runs through the whole core
(``plan_user``: rules, tags, dialects, timeline) and each entry must give the
referral (reason, message, start and end action) or the ignored why that the
mimicked product's documentation gives, plus calref's documented improvements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext
from rules.model import (
    CalendarEvent,
    OrganizerKind,
    PhoneAction,
    Plan,
    Profile,
    Response,
    ShowAs,
    User,
)
from rules.planner import plan_user
from rules.rulefile import RuleSet, default_rules, parse_rules
from sync.cli.main import app

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "rules"
TZ = ZoneInfo("Europe/Stockholm")
ANN = User(
    "ann",
    "Ann Andersson",
    "ann@example.se",
    "4711",
    (
        Profile("ext", "Extension", tags=("ext", "desk")),
        Profile("mobile", "Mobile", "0701234567", ("mobile", "mobil")),
    ),
)
BO = User("bo", "Bo Berg", "bo@example.se", "4712", (Profile("ext", "Extension"),))
MONDAY = date(2026, 11, 30)  # a working week; 2026-12-04 is the Friday

NONE = PhoneAction.none()
CLOSE = PhoneAction.close()
FOLLOW = PhoneAction.follow_profile()


@dataclass(frozen=True)
class Ref:
    """An expected referral."""

    reason: str
    message: str
    start: PhoneAction
    end: PhoneAction


@dataclass(frozen=True)
class Skip:
    """An expected ignored event."""

    why: str


Expected = Ref | Skip


def timed(
    key: str, subject: str, day: int, at: str = "09:00", hours: float = 1, **kw: object
) -> CalendarEvent:
    """A timed entry ``day`` days after Monday 30 November 2026, local time."""
    hh, mm = (int(p) for p in at.split(":"))
    local = datetime(MONDAY.year, MONDAY.month, MONDAY.day, hh, mm, tzinfo=TZ)
    start = local + timedelta(days=day)
    return CalendarEvent(key, start, start + timedelta(hours=hours), subject, **kw)  # type: ignore[arg-type]


def all_day(key: str, subject: str, day: int, days: int = 1, **kw: object) -> CalendarEvent:
    """An all-day entry of ``days`` days (end exclusive, as in iCalendar)."""
    first = MONDAY + timedelta(days=day)
    return CalendarEvent(key, first, first + timedelta(days=days), subject, **kw)  # type: ignore[arg-type]


def context(rules: RuleSet) -> EvaluationContext:
    return EvaluationContext(timezone=TZ, policy=ForwardPolicy(), rules=rules)


def recipe(name: str) -> RuleSet:
    path = RECIPES / name
    return parse_rules(path.read_text(encoding="utf-8"), str(path))


def outcome(plan: Plan, key: str) -> Expected:
    """What ``plan`` made of event ``key``: its referral or its ignored why."""
    refs = [r for r in plan.referrals if key in r.events]
    skips = [i for i in plan.ignored if i.event == key]
    assert len(refs) + len(skips) == 1, (key, refs, skips)
    if skips:
        return Skip(skips[0].why)
    ref = refs[0]
    assert ref.events == (key,), f"{key} was merged with {ref.events}"
    return Ref(ref.reason, ref.message, ref.start_action, ref.end_action)


def check_table(
    rules: RuleSet, rows: list[tuple[CalendarEvent, Expected]], user: User = ANN
) -> None:
    """Every row alone, then the whole table in one plan, gives the expected outcome."""
    ctx = context(rules)
    for event, expected in rows:
        assert outcome(plan_user(user, [event], ctx), event.key) == expected, event.subject
    week = plan_user(user, [event for event, _ in rows], ctx)
    got = {event.key: outcome(week, event.key) for event, _ in rows}
    assert got == {event.key: expected for event, expected in rows}


def keys_unique(rows: list[tuple[CalendarEvent, Expected]]) -> bool:
    return len({e.key for e, _ in rows}) == len(rows)


# --- every file is a valid rule file ---------------------------------------------------------

ALL_FILES = sorted(p.name for p in RECIPES.glob("*.yaml"))


def test_the_four_documented_recipes_are_there() -> None:
    assert {
        "tellus-style.yaml",
        "trio-style.yaml",
        "municipal-outlook.yaml",
        "calref-recommended.yaml",
    } <= set(ALL_FILES)


@pytest.mark.parametrize("name", ALL_FILES)
def test_recipe_parses_and_passes_rules_check(name: str) -> None:
    path = RECIPES / name
    rules = parse_rules(path.read_text(encoding="utf-8"), name)
    assert rules.rules and rules.source == name
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert f"ok ({len(rules.rules)} rules)" in result.output


@pytest.mark.parametrize("name", ALL_FILES)
def test_recipe_is_documented_in_the_recipes_page(name: str) -> None:
    page = (RECIPES.parents[1] / "docs" / "rule-recipes.md").read_text(encoding="utf-8")
    assert f"examples/rules/{name}" in page


# --- tellus-style: every entry is an absence; "." "-" ">NUMBER"; first-two-word codes ---------

TELLUS = [
    (timed("t-plain", "Budget review", 0), Ref("meeting", "Budget review", CLOSE, FOLLOW)),
    # "." stops what is shown
    (
        timed("t-dot", "Dentist. Root canal, Dr Nyberg", 0, "14:00"),
        Ref("meeting", "Dentist", CLOSE, FOLLOW),
    ),
    # "-" keeps the phone open, the absence is still visible
    (timed("t-soft", "-Team meeting", 1), Ref("meeting", "Team meeting", NONE, FOLLOW)),
    # ">" and a number forwards the phone during the entry, and puts it back after
    (
        timed("t-fwd", ">070 123 45 67 Customer visit", 1, "13:00", 2),
        Ref("meeting", "Customer visit", PhoneAction.forward("00701234567"), FOLLOW),
    ),
    # first two words against the company's codes
    (timed("t-lunch", "Lunch with Bo", 2, "11:30"), Ref("lunch", "Lunch with Bo", CLOSE, FOLLOW)),
    (timed("t-code2", "2 Bo and Cia", 2, "15:00"), Ref("lunch", "2 Bo and Cia", CLOSE, FOLLOW)),
    (
        timed("t-second-word", "Christmas Holiday", 3),
        Ref("out_of_office", "Christmas Holiday", CLOSE, FOLLOW),
    ),
    (
        timed("t-third-word", "Call with lunch guests", 3, "13:00"),
        Ref("meeting", "Call with lunch guests", CLOSE, FOLLOW),
    ),
    (
        timed("t-vacation", "Vacation Crete", 4, "08:00", 8),
        Ref("out_of_office", "Vacation Crete", CLOSE, FOLLOW),
    ),
    # every entry, whatever it shows as
    (
        timed("t-free", "Focus time", 5, show_as=ShowAs.FREE),
        Ref("meeting", "Focus time", CLOSE, FOLLOW),
    ),
    (
        timed("t-tentative", "Maybe: vendor demo", 5, "13:00", show_as=ShowAs.TENTATIVE),
        Ref("meeting", "Maybe: vendor demo", CLOSE, FOLLOW),
    ),
    (
        timed("t-oof", "Doctor", 6, show_as=ShowAs.OOF),
        Ref("out_of_office", "Doctor", CLOSE, FOLLOW),
    ),
    # calref does better: private entries never show their subject
    (
        timed("t-private", "Lunch. Lawyer about the divorce", 7, "11:30", private=True),
        Ref("lunch", "Busy", CLOSE, FOLLOW),
    ),
    # gone from the calendar
    (timed("t-cancelled", "Steering group", 8, cancelled=True), Skip("cancelled")),
    (timed("t-declined", "All hands", 8, "13:00", response=Response.DECLINED), Skip("declined")),
]


def test_tellus_style_table() -> None:
    assert keys_unique(TELLUS)
    check_table(recipe("tellus-style.yaml"), TELLUS)


def test_tellus_style_forward_to_a_premium_number_is_refused_and_the_phone_closes() -> None:
    ctx = context(recipe("tellus-style.yaml"))
    plan = plan_user(ANN, [timed("t-premium", ">0900 123 456 Quiz", 0)], ctx)
    assert [r.why for r in plan.refused] == ["premium-rate number"]
    assert outcome(plan, "t-premium") == Ref("meeting", "Quiz", CLOSE, FOLLOW)


def test_tellus_style_an_external_organizer_cannot_forward_the_phone() -> None:
    ctx = context(recipe("tellus-style.yaml"))
    event = timed(
        "t-ext",
        ">0701234567 Partner call",
        0,
        organizer_kind=OrganizerKind.EXTERNAL,
        organizer="eve@partner.example",
    )
    plan = plan_user(ANN, [event], ctx)
    assert [r.why for r in plan.refused] == ["external organizer"]
    assert outcome(plan, "t-ext") == Ref("meeting", "Partner call", CLOSE, FOLLOW)


def test_tellus_style_all_day_vacation_covers_whole_local_days() -> None:
    ctx = context(recipe("tellus-style.yaml"))
    plan = plan_user(ANN, [all_day("t-week", "Semester Gotland", 0, 5, show_as=ShowAs.OOF)], ctx)
    (ref,) = plan.referrals
    assert (ref.reason, ref.message) == ("out_of_office", "Semester Gotland")
    assert ref.start == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    assert ref.end == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)


# --- trio-style: "ABC:" refers, "ABC;" informs, uncoded/private/all-day not referred -----------

TRIO = [
    # the code sets the reason; operators see only code, start and end
    (timed("r-lunch", "LUN: with Bo at Kebabkungen", 0, "11:30"), Ref("lunch", "", CLOSE, FOLLOW)),
    (timed("r-meeting", "MÖT: budget 2027", 0, "13:00", 2), Ref("meeting", "", CLOSE, FOLLOW)),
    (
        timed("r-course", "KUR: Excel for beginners", 1, "08:00", 8),
        Ref("course", "", CLOSE, FOLLOW),
    ),
    (timed("r-lowercase", "sjk: fever", 2, "08:00", 8), Ref("sick", "", CLOSE, FOLLOW)),
    # ";" is information only: the phone stays open
    (timed("r-info", "MÖT; weekly team sync", 3), Ref("meeting", "", NONE, FOLLOW)),
    # no code first in the subject: no referral
    (timed("r-uncoded", "Budget review", 3, "13:00"), Skip("uncoded")),
    (timed("r-not-first", "Budget LUN: later", 3, "15:00"), Skip("uncoded")),
    (timed("r-unknown-code", "ABC: something", 4), Skip("uncoded")),
    (timed("r-no-colon", "LUN with Bo", 4, "11:30"), Skip("uncoded")),
    # private entries are not referred, even with a code
    (timed("r-private", "SJK: doctor", 4, "14:00", private=True), Skip("private")),
    # all-day entries are not referred (the mimicked integration breaks on them)
    (all_day("r-all-day", "SEM: Crete", 7, 5, show_as=ShowAs.OOF), Skip("all_day")),
    (timed("r-cancelled", "MÖT: steering group", 5, cancelled=True), Skip("cancelled")),
    (
        timed("r-declined", "MÖT: all hands", 5, "13:00", response=Response.DECLINED),
        Skip("declined"),
    ),
    # calref does better: a #reason tag refers an entry too
    (timed("r-tag", "Dentist #sick", 6), Ref("sick", "", CLOSE, FOLLOW)),
]


def test_trio_style_table() -> None:
    assert keys_unique(TRIO)
    check_table(recipe("trio-style.yaml"), TRIO)


def test_trio_style_without_its_all_day_rule_refers_multi_day_absences() -> None:
    text = (RECIPES / "trio-style.yaml").read_text(encoding="utf-8")
    block = "  - name: all day\n    when: {all_day: true}\n    skip: all_day\n"
    assert block in text
    rules = parse_rules(text.replace(block, ""), "trio-without-all-day.yaml")
    plan = plan_user(
        ANN, [all_day("r-week", "SEM: Crete", 7, 5, show_as=ShowAs.OOF)], context(rules)
    )
    (ref,) = plan.referrals
    assert (ref.reason, ref.start_action, ref.end_action) == ("out_of_office", CLOSE, FOLLOW)
    assert ref.end - ref.start == timedelta(days=5)


# --- municipal-outlook: Busy and Out of office refer; Free, Tentative, Working elsewhere not ---

MUNICIPAL = [
    (timed("m-busy", "Budget review", 0), Ref("meeting", "Budget review", CLOSE, FOLLOW)),
    (
        timed("m-oof", "Dentist", 0, "14:00", show_as=ShowAs.OOF),
        Ref("out_of_office", "Dentist", CLOSE, FOLLOW),
    ),
    (timed("m-free", "Read the report", 1, show_as=ShowAs.FREE), Skip("free")),
    (timed("m-tentative", "Vendor demo", 1, "13:00", show_as=ShowAs.TENTATIVE), Skip("tentative")),
    (
        timed("m-elsewhere", "At the town hall", 2, show_as=ShowAs.WORKING_ELSEWHERE),
        Skip("working_elsewhere"),
    ),
    (
        timed("m-answered-maybe", "Council", 2, "13:00", response=Response.TENTATIVE),
        Skip("tentative"),
    ),
    (timed("m-cancelled", "Steering group", 3, cancelled=True), Skip("cancelled")),
    (timed("m-declined", "All hands", 3, "13:00", response=Response.DECLINED), Skip("declined")),
    (
        timed(
            "m-accepted",
            "Council",
            4,
            response=Response.ACCEPTED,
            organizer_kind=OrganizerKind.INTERNAL,
        ),
        Ref("meeting", "Council", CLOSE, FOLLOW),
    ),
    # calref does better: a private entry shows "Busy", never its subject
    (
        timed("m-private", "Job interview", 4, "13:00", private=True),
        Ref("meeting", "Busy", CLOSE, FOLLOW),
    ),
    # calref does better: the user can keep the phone open for one entry
    (timed("m-soft", "Workshop #soft", 5), Ref("meeting", "Workshop", NONE, FOLLOW)),
    # all-day entries: Outlook makes them Free by default, so they stay quiet
    (all_day("m-birthday", "Bo's birthday", 7, show_as=ShowAs.FREE), Skip("free")),
    (
        all_day("m-vacation", "Vacation", 8, 3, show_as=ShowAs.OOF),
        Ref("out_of_office", "Vacation", CLOSE, FOLLOW),
    ),
]


def test_municipal_outlook_table() -> None:
    assert keys_unique(MUNICIPAL)
    check_table(recipe("municipal-outlook.yaml"), MUNICIPAL)


def test_municipal_outlook_refers_the_same_entries_as_the_defaults_but_closes_the_phone() -> None:
    municipal, defaults = context(recipe("municipal-outlook.yaml")), context(default_rules())
    events = [event for event, _ in MUNICIPAL]
    mine, theirs = plan_user(ANN, events, municipal), plan_user(ANN, events, defaults)
    assert {i.event: i.why for i in mine.ignored} == {i.event: i.why for i in theirs.ignored}
    busy = outcome(theirs, "m-busy")
    assert isinstance(busy, Ref) and busy.start == NONE  # the defaults: soft
    assert outcome(mine, "m-busy") == Ref("meeting", "Budget review", CLOSE, FOLLOW)


# --- calref-recommended: the defaults plus lunch, sick, travel, course and all-day absences ---

MOBILE = PhoneAction.profile_switch("mobile")
RECOMMENDED = [
    # the defaults
    (timed("c-busy", "Budget review", 0), Ref("meeting", "Budget review", NONE, NONE)),
    (
        timed("c-oof", "Dentist", 0, "14:00", show_as=ShowAs.OOF),
        Ref("out_of_office", "Dentist", CLOSE, FOLLOW),
    ),
    (timed("c-free", "Read the report", 0, "16:00", show_as=ShowAs.FREE), Skip("free")),
    (timed("c-tentative", "Demo", 1, "08:00", show_as=ShowAs.TENTATIVE), Skip("tentative")),
    (
        timed("c-elsewhere", "Home office", 1, "09:30", show_as=ShowAs.WORKING_ELSEWHERE),
        Skip("working_elsewhere"),
    ),
    (timed("c-maybe", "Council", 1, "15:00", response=Response.TENTATIVE), Skip("tentative")),
    (timed("c-cancelled", "Steering group", 1, "17:00", cancelled=True), Skip("cancelled")),
    (timed("c-declined", "All hands", 2, "08:00", response=Response.DECLINED), Skip("declined")),
    # lunch by subject
    (timed("c-lunch", "Lunch with Bo", 2, "11:30"), Ref("lunch", "Lunch with Bo", CLOSE, FOLLOW)),
    (timed("c-lunch-case", "LUNCH", 3, "12:00"), Ref("lunch", "LUNCH", CLOSE, FOLLOW)),
    (
        timed("c-lunch-seminar", "Lunch seminar and workshop", 3, "13:30", 4),
        Ref("meeting", "Lunch seminar and workshop", NONE, NONE),
    ),
    (
        timed("c-not-lunch", "Plan the lunch", 4, "08:00"),
        Ref("meeting", "Plan the lunch", NONE, NONE),
    ),
    (
        timed("c-lunch-private", "Lunch with my lawyer", 4, "11:30", private=True),
        Ref("lunch", "Busy", CLOSE, FOLLOW),
    ),
    # sick and course by subject
    (timed("c-vab", "VAB", 5, "08:00", 8), Ref("sick", "VAB", CLOSE, FOLLOW)),
    (
        timed("c-course", "Kurs i arbetsmiljö", 6, "08:00", 8),
        Ref("course", "Kurs i arbetsmiljö", CLOSE, FOLLOW),
    ),
    # travel by category or subject rings the mobile
    (
        timed("c-travel-cat", "Göteborg, customer", 7, "07:00", 3, categories=("Travel",)),
        Ref("travel", "Göteborg, customer", MOBILE, FOLLOW),
    ),
    (
        timed("c-train", "Train to Malmö", 7, "15:00", 4, show_as=ShowAs.OOF),
        Ref("travel", "Train to Malmö", MOBILE, FOLLOW),
    ),
    # all-day and multi-day absences say their last day
    (
        all_day("c-vacation", "Vacation", 14, 5, show_as=ShowAs.OOF),
        Ref("out_of_office", "Vacation (through 2026-12-18)", CLOSE, FOLLOW),
    ),
    (
        all_day("c-fair", "Trade fair Elmia", 21, 2),
        Ref("meeting", "Trade fair Elmia (through 2026-12-22)", NONE, NONE),
    ),
    (all_day("c-birthday", "Bo's birthday", 24, show_as=ShowAs.FREE), Skip("free")),
    # tags still work
    (
        timed("c-tag", "Board meeting #close #mobile", 8),
        Ref("meeting", "Board meeting", CLOSE, MOBILE),
    ),
    (timed("c-noref", "Lunch #noref", 8, "11:30"), Skip("tagged")),
]


def test_calref_recommended_table() -> None:
    assert keys_unique(RECOMMENDED)
    check_table(recipe("calref-recommended.yaml"), RECOMMENDED)


def test_calref_recommended_travel_without_a_mobile_profile_is_reported_and_follows_profile() -> (
    None
):
    ctx = context(recipe("calref-recommended.yaml"))
    plan = plan_user(BO, [timed("c-flight", "Flight to Luleå", 0, "07:00", 3)], ctx)
    assert [(r.tag, r.event) for r in plan.refused] == [("travel by subject", "c-flight")]
    assert outcome(plan, "c-flight") == Ref("travel", "Flight to Luleå", FOLLOW, FOLLOW)


def test_calref_recommended_keeps_every_default_rule_in_the_same_order() -> None:
    recommended = [r.name for r in recipe("calref-recommended.yaml").rules]
    defaults = [r.name for r in default_rules().rules]
    assert [n for n in recommended if n in defaults] == defaults


def test_calref_recommended_a_lunch_inside_a_long_meeting_shows_lunch_and_closes_the_phone() -> (
    None
):
    ctx = context(recipe("calref-recommended.yaml"))
    events = [timed("c-day", "Workshop", 0, "09:00", 6), timed("c-l", "Lunch", 0, "12:00", 1)]
    plan = plan_user(ANN, events, ctx)
    (ref,) = plan.referrals
    assert set(ref.events) == {"c-day", "c-l"}
    assert ref.reason == "lunch"  # the higher priority leads the merged referral
    at_noon = [a for a in plan.actions if a.at == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)]
    assert [a.action for a in at_noon] == [CLOSE]
