"""Forward numbers: strict reading, the dialling policy as an allow-list, the extension plan.

Every variant from issue 7 and its siblings, through ``check_forward`` and through
both ways a forward reaches it: a ``#fwd:`` tag and a rule file's ``forward`` action.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.dialling import (
    DEFAULT_ALLOWED_PREFIXES,
    ForwardPolicy,
    NumberKind,
    as_dialled,
    canonical_prefix,
    check_forward,
    classify_number,
    normalize_number,
    parse_extension_range,
)
from rules.errors import CalrefError, InvalidActionError, RuleFileError
from rules.evaluate import EvaluationContext, evaluate_event
from rules.model import CalendarEvent, PhoneAction, Profile, User
from rules.rulefile import parse_rules
from rules.tags import TagVocabulary, read_tags

POLICY = ForwardPolicy()
TZ = ZoneInfo("Europe/Stockholm")
USER = User("u1", "Ann", "ann@example.se", "4711", (Profile("ext", "Extension"),))


def refused_why(raw: str, policy: ForwardPolicy = POLICY) -> str:
    with pytest.raises(InvalidActionError) as err:
        check_forward(raw, policy)
    assert isinstance(err.value, CalrefError)
    assert repr(raw) in str(err.value)
    return err.value.why


@pytest.mark.parametrize(
    ("raw", "dialled"),
    [
        ("4711", "4711"),
        ("2000", "2000"),
        ("8999", "8999"),
        ("0701234567", "00701234567"),
        ("070-123 45 67", "00701234567"),
        ("(08) 123 456 78", "00812345678"),
        ("08-123 456 78", "00812345678"),
        ("+46701234567", "00701234567"),
        ("+46 70 123 45 67", "00701234567"),
        ("+46-70-123-45-67", "00701234567"),
        ("  +46 70 123 45 67  ", "00701234567"),
        ("+46 (0)70 123 45 67", "00701234567"),
        ("+46(0)8 123 456 78", "00812345678"),
        ("0046701234567", "00701234567"),
        ("0046 (0)70 123 45 67", "00701234567"),
        ("090-12 34 56", "0090123456"),  # Umeå: 090 is geographic
        ("0910-123 45", "0091012345"),
        ("010-123 45 67", "00101234567"),
        ("020-123 456", "0020123456"),
        ("0731234567", "00731234567"),
        ("0761234567", "00761234567"),
        ("0791234567", "00791234567"),
        ("0721234567", "00721234567"),
    ],
)
def test_allowed_numbers_and_how_they_are_dialled(raw: str, dialled: str) -> None:
    assert check_forward(raw, POLICY) == dialled
    assert normalize_number(raw, POLICY) == dialled


def test_the_trunk_prefix_comes_from_the_policy() -> None:
    policy = ForwardPolicy(trunk_prefix="9", allow_international=True, allowed_prefixes=("07", "+"))
    assert check_forward("0701234567", policy) == "90701234567"
    assert check_forward("+4478123456789", policy) == "9004478123456789"
    assert check_forward("4711", policy) == "4711"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        # the bypasses
        ("+46046900123456", "a 0 after +46"),  # once dialled 00046900123456 = +46 900… premium
        ("+46044712345678", "a 0 after +46"),  # once dialled 00044712345678 = a UK number
        ("0٩٠٠123456", "contains '٩'"),  # Arabic-Indic digits
        ("112", "emergency or service number"),
        ("118118", "emergency or service number"),
        # the same holes, other spellings
        ("+46 0 70 123 45 67", "a 0 after +46"),
        ("0046 0900 123456", "a 0 after +46"),
        ("00046900123456", "a country code never starts with 0"),
        ("+4600701234567", "a 0 after +46"),
        ("000701234567", "a country code never starts with 0"),
        ("+0701234567", "a country code never starts with 0"),
        ("00701234567", "international number"),  # 00 7…: Russia, as dialled
        ("０７０１２３４５６７", "contains '０'"),  # full-width digits
        ("０٩٠٠123456", "contains '０'"),
        ("0۹۰۰123456", "contains '۹'"),  # Extended Arabic-Indic
        ("0९००123456", "contains '९'"),  # Devanagari
        ("0𝟗𝟎𝟎123456", "contains '𝟗'"),  # mathematical digits
        ("＋46701234567", "contains '＋'"),
        ("070\u00a0123 45 67", "contains U+00A0"),  # no-break space
        ("070\t1234567", "contains U+0009"),
        ("070\u200b1234567", "contains U+200B"),  # zero-width space
        ("070.123.45.67", "contains '.'"),
        ("070/1234567", "contains '/'"),
        ("0701234567p123", "contains 'p'"),  # pause
        ("0701234567w123", "contains 'w'"),  # wait
        ("0701234567,123", "contains ','"),
        ("*21*0701234567#", "contains '*'"),
        ("#31#0701234567", "contains '#'"),
        ("0701234567#", "contains '#'"),
        ("070ABCDEFG", "contains 'A'"),
        ("++46701234567", "a + may only come first"),
        ("46+701234567", "a + may only come first"),
        ("(070 1234567", "unbalanced parentheses"),
        ("070) 1234567", "unbalanced parentheses"),
        ("((070)) 1234567", "unbalanced parentheses"),
        ("", "empty number"),
        ("  - ", "empty number"),
        ("+", "empty number"),
        ("+123", "wrong length"),
        ("+1234567890123456", "wrong length"),
        ("012345", "too short"),
        ("07012345678901", "too long"),
    ],
)
def test_what_is_not_a_plain_number_is_refused(raw: str, why: str) -> None:
    assert refused_why(raw).startswith(why) or why in refused_why(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "0900123456",
        "0900-12 34 56",
        "(0900) 123456",
        "+46900123456",
        "+46 (0)900 123 456",
        "0046900123456",
        "0939-123456",
        "+46939123456",
        "0944123456",
        "+46944123456",
        "0991234567",
        "099-123 45",
        "+4699123456",
    ],
)
def test_premium_rate_numbers_are_refused_in_every_spelling(raw: str) -> None:
    assert refused_why(raw) == "premium-rate number"


@pytest.mark.parametrize(
    "raw",
    [
        "0711234567890",  # 071: machine-to-machine
        "0741234567",  # 074: not a mobile series
        "0751234567",  # 075: personal numbers
        "0771234567",  # 077: shared cost
        "0770-123 456",
        "0781234567",
        "0712345678",
        "0718123456",
        "0740123456",
    ],
)
def test_non_mobile_07_series_are_not_on_the_default_allow_list(raw: str) -> None:
    assert refused_why(raw) == "not on the allow-list"


@pytest.mark.parametrize(
    "raw",
    [
        "+4478123456789",
        "004478123456789",
        "+44 (0)20 7123 4567",
        "+47 22 12 34 56",  # Norway
        "+1 212 555 0100",
        "+358 9 123 4567",
        "+882 1234 5678",  # international networks
        "+881 123 456 789",  # satellite
    ],
)
def test_foreign_numbers_are_refused_by_default(raw: str) -> None:
    assert refused_why(raw) == "international number"


def test_foreign_numbers_need_both_the_switch_and_an_allowed_prefix() -> None:
    policy = ForwardPolicy(
        allow_international=True,
        allowed_prefixes=(*DEFAULT_ALLOWED_PREFIXES, "+47", "+44 20"),
        denied_prefixes=("0900", "0939", "0944", "099", "+4799"),
    )
    assert check_forward("+47 22 12 34 56", policy) == "0004722123456"
    assert check_forward("+44 (0)20 7123 4567", policy) == "000442071234567"
    assert refused_why("+4478123456789", policy) == "not on the allow-list"
    assert refused_why("+47 99 12 34 56", policy) == "denied prefix +4799"
    assert refused_why("+46 900 123 456", policy) == "premium-rate number"
    everywhere = ForwardPolicy(allow_international=True, allowed_prefixes=("+",))
    assert check_forward("+1 212 555 0100", everywhere) == "00012125550100"
    # "+" does not widen Swedish numbers: +46 is read as a national number
    assert refused_why("+46701234567", everywhere) == "not on the allow-list"


def test_a_huge_number_is_refused_before_it_is_read_or_cached() -> None:
    raw = "0" + "1" * 5_000_000
    with pytest.raises(InvalidActionError) as err:
        check_forward(raw, POLICY)
    assert err.value.why == "too long to be a phone number"
    assert len(str(err.value)) < 200
    assert check_forward("0 7 0 - 1 2 3 - 4 5 - 6 7 " + " " * 30, POLICY) == "00701234567"


def test_a_huge_fwd_tag_is_refused_and_shown_short() -> None:
    action, refused, _ = _tags("Visit #fwd:" + "0" * 1_000_000)
    assert action is None
    (only,) = refused
    assert len(only) < 200 and only.endswith("too long to be a phone number")


def test_the_longest_matching_prefix_decides() -> None:
    assert check_forward("090-123456", POLICY) == "0090123456"
    assert refused_why("0900-123456") == "premium-rate number"
    widened = ForwardPolicy(allowed_prefixes=("0", "0900123"))
    assert check_forward("0771234567", widened) == "00771234567"
    assert check_forward("0900123456", widened) == "00900123456"  # longer allow wins
    assert refused_why("0900999999", widened) == "premium-rate number"
    tie = ForwardPolicy(allowed_prefixes=("070",), denied_prefixes=("070",))
    assert refused_why("0701234567", tie) == "denied prefix 070"


def test_an_empty_allow_list_allows_extensions_only() -> None:
    policy = ForwardPolicy(allowed_prefixes=())
    assert check_forward("4711", policy) == "4711"
    assert refused_why("0701234567", policy) == "not on the allow-list"


def test_prefixes_may_be_written_with_plus_46() -> None:
    assert canonical_prefix("+4670") == "070"
    assert canonical_prefix("+46") == "0"
    assert canonical_prefix("+47") == "+47"
    assert canonical_prefix("+") == "+"
    policy = ForwardPolicy(allowed_prefixes=("+46 70",))
    assert check_forward("0701234567", policy) == "00701234567"
    for bad in ("70", "07a", "", "+4 7x", "٠٧٠", "0047", "+07", "00"):
        with pytest.raises(ValueError, match="bad prefix"):
            canonical_prefix(bad)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("112", "emergency or service number (11-series"),
        ("11414", "emergency or service number"),
        ("11313", "emergency or service number"),
        ("1177", "emergency or service number"),
        ("116000", "emergency or service number"),
        ("116111", "emergency or service number"),
        ("116117", "emergency or service number"),
        ("118118", "emergency or service number"),
        ("118100", "emergency or service number"),
        ("118800", "emergency or service number"),
        ("90000", "emergency or service number (90-series"),
        ("90200", "emergency or service number"),
        ("9500", "emergency or service number (operator prefix"),
        ("911", "emergency or service number"),
        ("999", "emergency or service number"),
        ("000", "wrong length for an international number"),
        ("1999", "not an extension"),
        ("9000", "emergency or service number (90-series"),
        ("9100", "not an extension"),
        ("471", "not an extension"),
        ("47111", "not an extension"),
        ("12345678", "not an extension"),
    ],
)
def test_short_numbers_are_extensions_only_inside_the_plan(raw: str, why: str) -> None:
    assert refused_why(raw).startswith(why)


def test_service_numbers_are_refused_even_inside_a_configured_plan() -> None:
    policy = ForwardPolicy(extensions=("100-999", "1000-1999", "11000-11999", "900000-999999"))
    assert check_forward("100", policy) == "100"
    assert check_forward("1234", policy) == "1234"
    for raw in ("112", "118", "911", "999", "1177", "11414", "116000", "118118", "999999"):
        assert refused_why(raw, policy).startswith("emergency or service number"), raw


def test_extension_plan_edges() -> None:
    policy = ForwardPolicy(extensions=("4700-4799", "5000", "200-299"))
    for raw in ("4700", "4799", "5000", "200", "299", "47 00", "4-700"):
        assert check_forward(raw, policy) == raw.replace(" ", "").replace("-", "")
    for raw in ("4699", "4800", "4999", "5001", "199", "300", "04700", "+4700", "2000"):
        with pytest.raises(InvalidActionError):
            check_forward(raw, policy)
    assert refused_why("4711", ForwardPolicy(extensions=())).startswith("not an extension")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2000-899", "same number of digits"),
        ("abc", "same number of digits"),
        ("٢٠٠٠-٨٩٩٩", "same number of digits"),
        ("0100-0199", "starts with 0"),
        ("8999-2000", "backwards"),
        ("123456789", "same number of digits"),
        ("", "same number of digits"),
    ],
)
def test_bad_extension_ranges_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_extension_range(text)


def test_a_policy_that_cannot_work_is_refused_when_made() -> None:
    with pytest.raises(ValueError, match="starts with the trunk prefix"):
        ForwardPolicy(trunk_prefix="9", extensions=("9000-9999",))
    with pytest.raises(ValueError, match="bad prefix"):
        ForwardPolicy(allowed_prefixes=("70",))
    with pytest.raises(ValueError, match="country_code"):
        ForwardPolicy(country_code="٤٦")


def test_the_check_is_made_on_the_number_as_dialled() -> None:
    assert as_dialled("00046900123456", POLICY).canonical == "0900123456"
    assert as_dialled("00044712345678", POLICY).kind is NumberKind.FOREIGN
    assert as_dialled("00701234567", POLICY).canonical == "0701234567"
    assert as_dialled("4711", POLICY).kind is NumberKind.EXTENSION
    number = classify_number("+46 (0)70 123 45 67", POLICY)
    assert (number.kind, number.canonical) == (NumberKind.NATIONAL, "0701234567")


VARIANTS = [
    "+46046900123456",
    "+46044712345678",
    "0٩٠٠123456",
    "112",
    "118118",
    "０９００１２３４５６",
    "0900-123456",
    "+46 900 123 456",
    "11414",
    "1177",
]


@pytest.mark.parametrize("raw", VARIANTS)
def test_a_fwd_tag_goes_through_the_same_check(raw: str) -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=TZ)
    subject = f"Call #fwd:{raw.replace(' ', '')}"
    event = CalendarEvent("e1", start, start + timedelta(hours=1), subject)
    out = read_tags(event, USER, TagVocabulary(), POLICY)
    assert out.start_action is None
    (refused,) = out.refused
    assert refused.why == refused_why(raw.replace(" ", ""))


@pytest.mark.parametrize("raw", VARIANTS)
def test_a_rule_file_forward_goes_through_the_same_check(raw: str) -> None:
    text = (
        "version: 1\nrules:\n  - name: fwd\n"
        f'    referral: {{reason: meeting, start: {{forward: "{raw}"}}}}\n'
    )
    if not raw.isascii():
        with pytest.raises(RuleFileError, match=r"rules\.yaml:4:40: .*forward needs a phone"):
            parse_rules(text)
        return
    rules = parse_rules(text)
    start = datetime(2026, 3, 2, 9, tzinfo=TZ)
    event = CalendarEvent("e1", start, start + timedelta(hours=1), "Budget")
    result = evaluate_event(event, USER, EvaluationContext(TZ, POLICY, rules))
    assert result.intent is not None
    assert result.intent.start_action == PhoneAction.follow_profile()
    (refused,) = result.refused
    assert refused.why == refused_why(raw)


def test_a_rule_file_forward_with_foreign_characters_is_refused_at_load() -> None:
    with pytest.raises(RuleFileError) as err:
        parse_rules(
            "version: 1\nrules:\n  - name: fwd\n"
            '    referral: {reason: meeting, start: {forward: "0٩٠٠123456"}}\n'
        )
    assert "rules.yaml:4:" in str(err.value)
    assert "forward needs a phone number" in str(err.value)


def _tags(subject: str, leading: bool = False) -> tuple[PhoneAction | None, list[str], str]:
    from rules.tags import Dialects

    start = datetime(2026, 3, 2, 9, tzinfo=TZ)
    event = CalendarEvent("e1", start, start + timedelta(hours=1), subject)
    out = read_tags(event, USER, TagVocabulary(), POLICY, Dialects(leading_symbols=leading))
    return out.start_action, [f"{r.tag}: {r.why}" for r in out.refused], out.subject


@pytest.mark.parametrize(
    ("subject", "dialled", "rest"),
    [
        ("Visit #fwd:0701234567.", "00701234567", "Visit."),
        ("Visit (#fwd:0701234567)", "00701234567", "Visit"),
        ("Visit #fwd:+46(0)701234567, back at 3", "00701234567", "Visit, back at 3"),
        ("Visit #fwd:070-1234567!", "00701234567", "Visit!"),
        ("Visit #fwd:4711", "4711", "Visit"),
    ],
)
def test_fwd_tags_take_the_whole_number(subject: str, dialled: str, rest: str) -> None:
    action, refused, text = _tags(subject)
    assert (action, refused, text) == (PhoneAction.forward(dialled), [], rest)


@pytest.mark.parametrize(
    ("subject", "refusal"),
    [
        ("Visit #fwd:0٩٠٠123456", "#fwd:0٩٠٠123456: contains '٩'"),
        ("Visit #fwd:0701234567p1", "#fwd:0701234567p1: contains 'p'"),
        ("Visit #fwd:*21*0701234567#", "#fwd:*21*0701234567#: contains '*'"),
        ("Visit #fwd:０７０１２３４５６７", "#fwd:０７０１２３４５６７: contains '０'"),
        ("Visit #fwd:+46046900123456", "#fwd:+46046900123456: a 0 after +46"),
        ("Visit #fwd:118118", "#fwd:118118: emergency or service number"),
    ],
)
def test_fwd_tags_with_foreign_characters_are_refused_whole(subject: str, refusal: str) -> None:
    action, refused, _ = _tags(subject)
    assert action is None
    (only,) = refused
    assert only.startswith(refusal), only


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (">070 123 45 67 Customer visit", "00701234567"),
        ("> +46 70 123 45 67 Customer visit", "00701234567"),
        (">4711 Desk", "4711"),
        (">0٩٠٠123456 Clinic", None),
        (">０７０１２３４５６７ Clinic", None),
        ("> +46046900123456 Clinic", None),
        (">＋46701234567 Clinic", None),
        (">112 Clinic", None),
    ],
)
def test_the_leading_forward_dialect_goes_through_the_same_check(
    subject: str, expected: str | None
) -> None:
    action, refused, _ = _tags(subject, leading=True)
    if expected is None:
        assert action is None and len(refused) == 1, (action, refused)
    else:
        assert (action, refused) == (PhoneAction.forward(expected), [])
