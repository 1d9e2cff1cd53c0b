"""Tags in subjects (#mobile, #soft, #close, #fwd:NUMBER, #noref, #reason) and the dialects."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from rules.actions import ForwardPolicy
from rules.model import CalendarEvent, OrganizerKind, PhoneAction, Profile, Refused, User
from rules.rulefile import DEFAULT_REASONS
from rules.tags import Dialects, TagOutcome, TagVocabulary, read_tags

TZ = ZoneInfo("Europe/Stockholm")
POLICY = ForwardPolicy()
VOCAB = TagVocabulary(reasons=DEFAULT_REASONS)
USER = User(
    "u1",
    "Ann",
    "ann@example.se",
    "4711",
    (Profile("ext", "Extension"), Profile("mob", "Mobile", "0701234567", ("mobile", "mobil"))),
)
CODES = (("LUN", "lunch"), ("MÖT", "meeting"), ("SEM", "out_of_office"))


def event(subject: str, organizer: OrganizerKind = OrganizerKind.SELF) -> CalendarEvent:
    return CalendarEvent(
        "e1",
        datetime(2026, 3, 2, 9, tzinfo=TZ),
        datetime(2026, 3, 2, 10, tzinfo=TZ),
        subject,
        organizer_kind=organizer,
    )


def tags(
    subject: str,
    organizer: OrganizerKind = OrganizerKind.SELF,
    dialects: Dialects | None = None,
    policy: ForwardPolicy = POLICY,
) -> TagOutcome:
    return read_tags(event(subject, organizer), USER, VOCAB, policy, dialects)


def test_no_tags_leaves_everything_unset() -> None:
    out = tags("Budget review")
    assert out == TagOutcome(subject="Budget review", shown="Budget review")


@pytest.mark.parametrize("written", ["#mobile", "#MOBIL", "#Mobile"])
def test_profile_tag_sets_an_explicit_end_profile_switch(written: str) -> None:
    out = tags(f"Budget {written} review")
    assert out.end_action == PhoneAction.profile_switch("mob")
    assert out.start_action is None
    assert out.subject == "Budget review"


@pytest.mark.parametrize(
    ("written", "action"),
    [
        ("#soft", PhoneAction.none()),
        ("#mjuk", PhoneAction.none()),
        ("#close", PhoneAction.close()),
        ("#STÄNG", PhoneAction.close()),
    ],
)
def test_soft_and_close_tags_set_the_start_action(written: str, action: PhoneAction) -> None:
    out = tags(f"{written} Planning")
    assert out.start_action == action
    assert out.subject == "Planning"


@pytest.mark.parametrize(
    "written", ["#fwd:0701234567", "#medflytta:+46701234567", "#FWD:070-1234567"]
)
def test_forward_tag_normalises_the_number(written: str) -> None:
    out = tags(f"Site visit {written}")
    assert out.start_action == PhoneAction.forward("00701234567")
    assert out.subject == "Site visit"
    assert out.refused == ()


def test_forward_tag_to_an_extension() -> None:
    assert tags("x #fwd:4712").start_action == PhoneAction.forward("4712")


def test_noref_skips() -> None:
    out = tags("Private stuff #noref")
    assert out.skip
    assert out.subject == "Private stuff"


def test_reason_tag_sets_the_reason() -> None:
    out = tags("#lunch with Bo")
    assert out.reason == "lunch"
    assert out.subject == "with Bo"


def test_unknown_hash_words_stay_in_the_text() -> None:
    out = tags("Release #1 of #project, room #4")
    assert out.subject == "Release #1 of #project, room #4"
    assert out == TagOutcome(subject=out.subject, shown=out.subject)


def test_tags_inside_words_or_urls_are_not_tags() -> None:
    assert tags("see a#mobile and &#close").end_action is None


def test_external_organizer_cannot_forward_or_switch_profile() -> None:
    out = tags("Sales pitch #fwd:0701234567 #mobile #close", OrganizerKind.EXTERNAL)
    assert out.start_action == PhoneAction.close()
    assert out.end_action is None
    assert out.refused == (
        Refused("e1", "#fwd:0701234567", "external organizer"),
        Refused("e1", "#mobile", "external organizer"),
    )
    assert "0701234567" not in out.subject


def test_internal_organizer_may_forward() -> None:
    out = tags("x #fwd:0701234567", OrganizerKind.INTERNAL)
    assert out.start_action == PhoneAction.forward("00701234567")


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("0900123456", "premium-rate number"),
        ("+4478123456789", "international number"),
        ("12345678", "not an extension"),
        ("112", "emergency or service number"),
        ("0٩٠٠123456", "contains"),
        ("+46046900123456", "a 0 after +46"),
    ],
)
def test_forward_numbers_failing_the_policy_are_refused(number: str, why: str) -> None:
    out = tags(f"Call #fwd:{number}")
    assert out.start_action is None
    (refused,) = out.refused
    assert refused.tag == f"#fwd:{number}"
    assert refused.why.startswith(why)
    assert out.subject == "Call"


def test_forward_tag_without_number_is_refused() -> None:
    out = tags("Call #fwd")
    assert out.refused == (Refused("e1", "#fwd", "missing number"),)


def test_allow_list_policy_applies_to_tags() -> None:
    out = tags("x #fwd:0311234567", policy=ForwardPolicy(allowed_prefixes=("070",)))
    assert out.refused[0].why == "not on the allow-list"


def test_conflicting_start_tags_keep_the_first_and_refuse_the_rest() -> None:
    out = tags("#soft #close meeting")
    assert out.start_action == PhoneAction.none()
    assert out.refused == (Refused("e1", "#close", "the start action is already none"),)


def test_repeating_the_same_tag_is_not_a_conflict() -> None:
    out = tags("#close #CLOSE x")
    assert out.start_action == PhoneAction.close()
    assert out.refused == ()


def test_custom_vocabulary_replaces_the_defaults() -> None:
    vocab = TagVocabulary(soft=("info",), close=(), forward=("vidare",), skip=("ej",))
    out = read_tags(event("#info #soft #vidare:4712"), USER, vocab, POLICY)
    assert out.start_action == PhoneAction.none()
    assert out.refused[0].tag == "#vidare:4712"  # conflicts with #info
    assert out.subject == "#soft"


# --- dialects -----------------------------------------------------------------------------


LEADING = Dialects(leading_symbols=True)


def test_dialects_are_off_by_default() -> None:
    out = tags("-Meeting. secret >0701234567")
    assert out.start_action is None
    assert out.shown == "-Meeting. secret >0701234567"


def test_leading_dash_makes_a_soft_referral() -> None:
    out = tags("-Team meeting", dialects=LEADING)
    assert out.start_action == PhoneAction.none()
    assert out.subject == "Team meeting"


def test_leading_greater_than_forwards() -> None:
    out = tags(">070-123 45 67 Customer visit", dialects=LEADING)
    assert out.start_action == PhoneAction.forward("00701234567")
    assert out.subject == "Customer visit"


def test_leading_greater_than_respects_external_organizer_and_policy() -> None:
    out = tags(">0701234567 Pitch", OrganizerKind.EXTERNAL, dialects=LEADING)
    assert out.start_action is None
    assert out.refused[0].why == "external organizer"
    out = tags(">0900123456 Pitch", dialects=LEADING)
    assert out.refused[0].why == "premium-rate number"
    assert "0900" not in out.shown


def test_period_ends_what_operators_see_but_not_what_rules_see() -> None:
    out = tags("Dentist. Root canal, left side", dialects=LEADING)
    assert out.shown == "Dentist"
    assert out.subject == "Dentist. Root canal, left side"


def test_first_words_match_absence_codes() -> None:
    dialects = Dialects(first_words=True, absence_codes=CODES)
    assert tags("Lun with Bo", dialects=dialects).reason == "lunch"
    assert tags("Planning: möt Bo", dialects=dialects).reason == "meeting"
    assert tags("Planning with MÖT", dialects=dialects).reason is None
    assert tags("lun", dialects=dialects).subject == "lun"


def test_code_prefix_colon_sets_reason_and_keeps_the_rules_phone_action() -> None:
    dialects = Dialects(code_prefix=True, absence_codes=CODES)
    out = tags("SEM: Crete", dialects=dialects)
    assert (out.reason, out.start_action, out.subject) == ("out_of_office", None, "Crete")


def test_code_prefix_semicolon_is_information_only() -> None:
    dialects = Dialects(code_prefix=True, absence_codes=CODES)
    out = tags("möt; Board", dialects=dialects)
    assert (out.reason, out.start_action, out.subject) == ("meeting", PhoneAction.none(), "Board")


def test_unknown_code_prefix_is_left_alone() -> None:
    dialects = Dialects(code_prefix=True, absence_codes=CODES)
    out = tags("Re: budget", dialects=dialects)
    assert (out.reason, out.subject) == (None, "Re: budget")


def test_explicit_reason_tag_and_code_conflict_keeps_the_code() -> None:
    dialects = Dialects(code_prefix=True, absence_codes=CODES)
    out = tags("LUN: #travel Bo", dialects=dialects)
    assert out.reason == "lunch"
    assert out.refused[0].tag == "#travel"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("Budget (#mobile)", "Budget"),
        ("Budget #mobile, then lunch", "Budget, then lunch"),
        ("Budget #MOBILE!", "Budget!"),
        ("Budget [#close] review", "Budget review"),
        ("#soft, Budget", "Budget"),
    ],
)
def test_removing_a_tag_leaves_no_stray_brackets_or_spaced_punctuation(
    written: str, shown: str
) -> None:
    out = tags(written)
    assert out.subject == shown
    assert out.shown == shown


def test_a_refused_forward_in_a_private_event_does_not_reveal_the_number() -> None:
    private = CalendarEvent(
        "e1",
        datetime(2026, 3, 2, 9, tzinfo=TZ),
        datetime(2026, 3, 2, 10, tzinfo=TZ),
        "Clinic #fwd:0900123456",
        private=True,
    )
    lead = Dialects(leading_symbols=True)
    out = read_tags(private, USER, VOCAB, POLICY)
    assert [(r.tag, r.why) for r in out.refused] == [("#fwd:…", "premium-rate number")]
    private_lead = CalendarEvent(
        "e1", private.start, private.end, ">0900123456 Clinic", private=True
    )
    out = read_tags(private_lead, USER, VOCAB, POLICY, lead)
    assert [(r.tag, r.why) for r in out.refused] == [(">…", "premium-rate number")]
