"""Hostile and broken rule files: wrong types, no rules, duplicates, regexes that backtrack,
messages that are too long. Every problem is a located RuleFileError, never a traceback."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.dialling import ForwardPolicy
from rules.errors import RuleFileError
from rules.evaluate import EvaluationContext, evaluate_event
from rules.model import CalendarEvent, User
from rules.patterns import MAX_PATTERN_CHARS, compile_pattern
from rules.rulefile import parse_rules
from rules.template import ELLIPSIS, MESSAGE_MAX_CHARS, cap_message

TZ = ZoneInfo("Europe/Stockholm")
USER = User("u1", "Ann", "ann@example.se", "4711")
RULES = "rules: [{name: all, referral: {reason: meeting}}]\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as err:
        parse_rules(text, "rules.yaml")
    return [str(p) for p in err.value.problems]


def evaluate(rules_text: str, subject: str, private: bool = False) -> str:
    rules = parse_rules(rules_text)
    start = datetime(2026, 3, 2, 9, tzinfo=TZ)
    event = CalendarEvent("e1", start, start + timedelta(hours=1), subject, private=private)
    result = evaluate_event(event, USER, EvaluationContext(TZ, ForwardPolicy(), rules))
    assert result.intent is not None
    return result.intent.message


V = "version: 1\n"
W = "version: 1\nrules: [{name: a, skip: x, when: "
F = "version: 1\nrules: [{name: a, referral: "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (V + "reasons: 5\n" + RULES, "2:10: reasons: Input should be a valid list"),
        (V + "tags: {soft: 3}\n" + RULES, "2:14: tags.soft: Input should be a valid list"),
        (V + "tags: {close: true}\n" + RULES, "2:15: tags.close"),
        (V + "tags: {forward: {a: 1}}\n" + RULES, "2:17: tags.forward"),
        (V + "tags: {skip: [1]}\n" + RULES, "2:15: tags.skip[0]"),
        (V + "tags: 5\n" + RULES, "2:7: tags"),
        (V + "reasons: true\n" + RULES, "2:10: reasons"),
        (V + "reasons: [meeting, 3]\n" + RULES, "2:20: reasons[1]"),
        (V + "reasons: 5\nabsence_codes: {LUN: lunch}\n" + RULES, "2:10: reasons"),
        (V + "absence_codes: {LUN: 5}\n" + RULES, "2:22: absence_codes.LUN"),
        (V + "absence_codes: 5\n" + RULES, "2:16: absence_codes"),
        (V + "dialects: {first_words: yes please}\n" + RULES, "2:25: dialects.first_words"),
        (V + "private_message: 5\n" + RULES, "2:18: private_message"),
        ("version: 1.0\n" + RULES, "1:10: version: must be the number 1"),
        ("version: true\n" + RULES, "1:10: version: must be the number 1"),
        (V + "rules: 5\n", "2:8: rules"),
        (V + "rules: [5]\n", "2:9: rules[0]"),
        (V + "rules: [{name: [1], skip: x}]\n", "2:16: rules[0].name"),
        (W + "{subject: 5}}]\n", "2:44: rules[0].when.subject"),
        (W + "{subject: [5]}}]\n", "2:45: rules[0].when.subject[0]: a subject pattern is text"),
        (W + "{category: [5]}}]\n", "2:46: rules[0].when.category[0]"),
        (W + "{weekdays: [5]}}]\n", "2:46: rules[0].when.weekdays[0]"),
        (W + "{time: {from: 8, to: 9}}}]\n", "2:48: rules[0].when.time.from"),
        (W + "{time: {from: '٠٨:00', to: '09:00'}}}]\n", "bad time of day"),
        (W + "{duration: {min: '１５m'}}}]\n", "bad duration"),
        (W + "{duration: {max: 99999999999d}}}]\n", "bad duration"),
        (W + "{duration: {max: 9999999d}}}]\n", "longer than"),
        (F + "{reason: meeting, priority: 1e9}}]\n", "2:57: rules[0].referral.priority"),
        (F + "{reason: meeting, priority: 99999999999999999999}}]\n", "less than or equal to"),
        (F + "{reason: meeting, message: [1]}}]\n", "2:56: rules[0].referral.message"),
        (F + "{reason: [1]}}]\n", "2:38: rules[0].referral.reason"),
        (F + "{reason: meeting, start: {forward: [1]}}}]\n", "2:54: rules[0].referral.start"),
        (F + "5}]\n", "2:29: rules[0].referral"),
    ],
)  # fmt: skip
def test_every_wrong_type_is_a_located_problem(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(f"rules.yaml:{expected}" in p or expected in p for p in problems), problems


@pytest.mark.parametrize("rules", ["rules: []", "rules: [  ]", "rules:\n"])
def test_a_rule_file_without_rules_is_refused(rules: str) -> None:
    problems = problems_of(f"version: 1\n{rules}\n")
    assert any(p.startswith("rules.yaml:2:") and "rules" in p for p in problems), problems
    assert problems_of("version: 1\nrules: []\n") == [
        "rules.yaml:2:8: rules: the rule file has no rules (add at least one)"
    ]


def test_duplicate_reasons_are_refused_where_they_repeat() -> None:
    problems = problems_of("version: 1\nreasons: [meeting, lunch, Meeting]\n" + RULES)
    assert problems == ["rules.yaml:2:27: reasons[2]: duplicate reason 'Meeting'"]
    lunch = "rules: [{name: all, referral: {reason: lunch}}]\n"
    problems = problems_of("version: 1\nreasons:\n  - lunch\n  - lunch\n" + lunch)
    assert problems == ["rules.yaml:4:5: reasons[1]: duplicate reason 'lunch'"]


def test_duplicate_words_in_a_tag_list_are_refused() -> None:
    problems = problems_of("version: 1\ntags: {soft: [soft, mjuk, soft]}\n" + RULES)
    assert problems == ["rules.yaml:2:27: tags.soft[2]: duplicate tag word 'soft'"]


# --- regular expressions --------------------------------------------------------------------

CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(a*)*b", "(x+x+)+y", "^(\\w+\\s?)*$", "(.*a){12}"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_backtracking_patterns_match_in_linear_time(pattern: str) -> None:
    # Python's re needs 34 s for (a+)+$ on 28 characters and doubles with each one more;
    # 50 000 characters would never finish. RE2 answers in milliseconds.
    compiled = compile_pattern(pattern)
    subject = "a" * 50_000 + "!"
    began = time.perf_counter()
    for _ in range(10):
        compiled.search(subject)
    assert time.perf_counter() - began < 5


@pytest.mark.timeout(60)
def test_patterns_see_a_bounded_part_of_a_huge_subject() -> None:
    # this automaton outgrows RE2's memory cap, so RE2 falls back to its slower (still
    # linear) engine: about 1.4 s per megabyte here, 7 s for a 5 MB subject
    compiled = compile_pattern("(a|b)*a(a|b){20}$")
    subject = "ab" * 2_500_000
    began = time.perf_counter()
    assert compiled.search(subject) is False
    assert time.perf_counter() - began < 2
    assert compile_pattern("^x").search("x" + subject)
    assert not compile_pattern("z").search(subject + "z")  # beyond the part matched


@pytest.mark.timeout(30)
def test_a_rule_with_a_backtracking_pattern_does_not_stall_evaluation() -> None:
    rules = (
        "version: 1\nrules:\n"
        "  - {name: evil, when: {subject: ['(a+)+$']}, skip: never}\n"
        "  - {name: all, referral: {reason: meeting}}\n"
    )
    began = time.perf_counter()
    assert evaluate(rules, "a" * 28 + "!") == "a" * 28 + "!"
    assert time.perf_counter() - began < 5


@pytest.mark.timeout(30)
def test_category_globs_do_not_backtrack() -> None:
    rules = parse_rules(
        "version: 1\nrules:\n  - {name: g, when: {category: ['*a*a*a*a*a*a*a*a*b']}, skip: x}\n"
    )
    start = datetime(2026, 3, 2, 9, tzinfo=TZ)
    event = CalendarEvent(
        "e1", start, start + timedelta(hours=1), "x", categories=("a" * 20_000,) * 20
    )
    began = time.perf_counter()
    result = evaluate_event(event, USER, EvaluationContext(TZ, ForwardPolicy(), rules))
    assert result.ignored is not None and result.ignored.why == "no_rule"
    assert time.perf_counter() - began < 5


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a)\\1", "backreferences and look-around"),
        ("(?=a)b", "backreferences and look-around"),
        ("(?<!a)b", "backreferences and look-around"),
        ("(?P<x>a)(?P=x)", "bad regular expression"),
        ("a{1001}", "bad regular expression"),
        ("((a{100}){100}){100}", "bad regular expression"),
        ("(unclosed", "bad regular expression"),
        ("end\\Z", "write \\z for the end"),
        ("x" * (MAX_PATTERN_CHARS + 1), f"at most {MAX_PATTERN_CHARS}"),
    ],
)
def test_patterns_that_cannot_be_bounded_are_refused_at_load(pattern: str, why: str) -> None:
    text = f"version: 1\nrules:\n  - name: a\n    when: {{subject: ['{pattern}']}}\n    skip: x\n"
    (problem,) = problems_of(text)
    assert problem.startswith("rules.yaml:4:22: rules[0].when.subject[0]: "), problem
    assert why in problem


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("^lunch\\b", "LUNCH with Bo", True),
        ("^lunch\\b", "Lunchmöte", False),
        ("tåg", "TÅG till Umeå", True),
        ("^\\w+$", "Tågresa", True),
        ("^[\\w ]+$", "Tåg till Umeå", True),
        ("^\\W", "Tåg", False),
        ("^\\W", "-x", True),
        ("[]a]", "]", True),
        ("[^]a]", "a", False),
        ("visit$", "Site visit", True),
    ],
)
def test_patterns_keep_their_meaning(pattern: str, subject: str, matches: bool) -> None:
    assert compile_pattern(pattern).search(subject) is matches


# --- message length -------------------------------------------------------------------------


def test_a_huge_subject_becomes_a_capped_message() -> None:
    message = evaluate("version: 1\n" + RULES, "Budget " + "x" * 5_000_000)
    assert len(message) == MESSAGE_MAX_CHARS
    assert message.startswith("Budget x") and message.endswith(ELLIPSIS)


def test_the_template_text_counts_toward_the_cap() -> None:
    rules = (
        "version: 1\nrules: [{name: a, referral: {reason: meeting, message: 'Away: {subject}'}}]\n"
    )
    assert len(evaluate(rules, "y" * 500)) == MESSAGE_MAX_CHARS
    assert evaluate(rules, "Budget") == "Away: Budget"


def test_a_long_private_message_is_refused_at_load() -> None:
    long = "x" * (MESSAGE_MAX_CHARS + 1)
    (problem,) = problems_of(f"version: 1\nprivate_message: {long}\n" + RULES)
    assert problem.startswith("rules.yaml:2:18: private_message:")


@pytest.mark.parametrize(
    "piece",
    [
        "e\u0301",  # e + combining acute
        "👍🏽",  # thumbs up + skin tone
        "👩\u200d💻",  # ZWJ sequence
        "🇸🇪",  # flag: two regional indicators
        "❤\ufe0f",  # variation selector
        "å",
    ],
)
@pytest.mark.parametrize("offset", range(6))
def test_the_cut_never_splits_a_character(piece: str, offset: int) -> None:
    text = "x" * offset + piece * 200
    capped = cap_message(text, 50)
    assert len(capped) <= 50 and capped.endswith(ELLIPSIS)
    body = capped.removesuffix(ELLIPSIS)[offset:]
    assert body == piece * (len(body) // len(piece)), (piece, offset, capped)


def test_short_messages_are_kept_as_they_are() -> None:
    assert cap_message("x" * MESSAGE_MAX_CHARS) == "x" * MESSAGE_MAX_CHARS
    assert cap_message("") == ""


@pytest.mark.parametrize("key", ["skip", "referral"])
def test_an_empty_outcome_is_refused_at_its_key(key: str) -> None:
    with pytest.raises(RuleFileError) as err:
        parse_rules(f"version: 1\nrules:\n  - name: a\n    {key}:\n", "rules.yaml")
    assert f"rules.yaml:4:5: rules[0].{key}: rule 'a' has an empty {key}" in str(err.value)
