"""Property-based fuzzing: the rule-file loader and the forward-number reader.

Bounded (``max_examples``, no per-example deadline beyond a generous one) so each
suite runs in seconds. The loader may only answer with a RuleSet or the project's
own RuleFileError, and a loaded rule set evaluates any event without an exception.
The number reader may only refuse with InvalidActionError, and whatever it accepts
is, as dialled, ASCII digits with an allowed prefix and no denied longer prefix,
checked here by an independent reading of the dialled string.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.dialling import (
    DEFAULT_ALLOWED_PREFIXES,
    PREMIUM_PREFIXES,
    SERVICE_NUMBERS,
    ForwardPolicy,
    check_forward,
)
from rules.errors import InvalidActionError, RuleFileError
from rules.evaluate import EvaluationContext, evaluate_event, explain_event
from rules.model import CalendarEvent, OrganizerKind, Profile, ShowAs, User
from rules.rulefile import RuleSet, parse_rules

TZ = ZoneInfo("Europe/Stockholm")
USER = User(
    "u1", "Ann", "ann@example.se", "4711", (Profile("mob", "Mobile", "0701234567", ("mobile",)),)
)
FUZZ = settings(
    max_examples=250,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- the rule-file loader ---------------------------------------------------------------------

KEYS = [
    "version", "reasons", "tags", "rules", "dialects", "absence_codes", "private_message",
    "name", "when", "skip", "referral", "reason", "message", "start", "end", "priority",
    "show_as", "response", "organizer", "cancelled", "private", "all_day", "reason_tagged",
    "subject", "category", "duration", "weekdays", "time", "min", "max", "from", "to",
    "soft", "close", "forward", "profile_switch", "leading_symbols", "first_words",
    "code_prefix", "LUN",
]  # fmt: skip
WORDS = [
    "meeting", "lunch", "busy", "free", "close", "open", "none", "follow_profile",
    "forward:0701234567", "forward:0900123456", "profile_switch:mobile", "mon", "15m", "8h",
    "08:00", "24:00", "{subject}", "{reason} until {end_time}", "{bad}", "(a+)+$", "(a)\\1",
    "(?=x)", "^lunch\\b", "\\w+", "[", "Travel*", "٠٩:00", "１５m", "0٩٠٠123456", "",
    "x" * 300,
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
rule = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["a", "b", "a"]), values),
        "when": st.one_of(st.dictionaries(st.sampled_from(KEYS[15:]), values, max_size=4), values),
        "skip": values,
        "referral": st.one_of(
            st.dictionaries(st.sampled_from(KEYS[9:15]), values, max_size=5), values
        ),
    },
)
rule_file = st.fixed_dictionaries(
    {
        "version": st.one_of(st.just(1), values),
        "rules": st.one_of(st.lists(rule, max_size=4), values),
    },
    optional={key: values for key in KEYS[1:7] if key != "rules"},
)


def _events() -> list[CalendarEvent]:
    start = datetime(2026, 3, 2, 9, tzinfo=TZ)
    return [
        CalendarEvent("e1", start, start + timedelta(hours=1), "Lunch #mobile #fwd:0701234567"),
        CalendarEvent(
            "e2",
            start,
            start + timedelta(days=2),
            "a" * 40 + "!",
            show_as=ShowAs.OOF,
            private=True,
            organizer_kind=OrganizerKind.EXTERNAL,
            categories=("Travel - train",),
        ),
    ]


def _loads_or_refuses(text: str) -> None:
    try:
        rules = parse_rules(text, "fuzz.yaml")
    except RuleFileError as err:
        assert err.problems
        assert all(p.file == "fuzz.yaml" for p in err.problems)
        return
    assert isinstance(rules, RuleSet)
    ctx = EvaluationContext(TZ, ForwardPolicy(), rules)
    for event in _events():
        evaluate_event(event, USER, ctx)
        explain_event(event, USER, ctx)


@FUZZ
@given(rule_file)
def test_rule_file_structures_load_or_give_located_problems(data: dict[str, Any]) -> None:
    _loads_or_refuses(json.dumps(data, ensure_ascii=False))


YAML_BITS = st.sampled_from(
    [
        "version: 1\n", "rules:\n", "  - name: a\n", "    skip: x\n", "    referral: ",
        "{reason: meeting}", "reasons: ", "tags: ", "{soft: 3}", "5", "[a, a]", "[]", "{}",
        "- ", ": ", "? ", "&a ", "*a", "!!str ", "!!int ", "!!binary ", "!!python/object ",
        "|\n  x\n", "'", '"', "#", "\t", "\n", "  ", "---\n", "...\n", "%YAML 1.2\n", "<<: *a\n",
        "\x00", "\ufeff", "é", "٩", "when: {subject: ['(a+)+$']}", "null", "~", "1e400",
    ]
)  # fmt: skip


@FUZZ
@given(st.lists(st.one_of(YAML_BITS, st.text(max_size=6)), max_size=30))
def test_yaml_ish_text_loads_or_gives_located_problems(bits: list[str]) -> None:
    _loads_or_refuses("".join(bits))


# --- the forward-number reader ----------------------------------------------------------------

POLICIES = [
    ForwardPolicy(),
    ForwardPolicy(trunk_prefix="9", extensions=("100-899", "4700-4799")),
    ForwardPolicy(
        allow_international=True,
        allowed_prefixes=(*DEFAULT_ALLOWED_PREFIXES, "+47", "+44 20", "+"),
        denied_prefixes=(*PREMIUM_PREFIXES, "+4799", "+881", "077"),
    ),
    ForwardPolicy(
        trunk_prefix="",
        allowed_prefixes=("0",),
        extensions=("1-9", "10-99", "100-999", "1000-9999"),
    ),
]
CHARS = st.sampled_from([*"0123456789" * 3, *"+ -()()+.*#pw,/", "٩", "０", "۹", "९", "\u00a0"])
PIECES = st.sampled_from(
    ["+46", "+46 ", "0046", "00", "0", "+", "(0)", "+46 (0)", "+44", "+47 ", "900", "939",
     "944", "99", "90", "118", "112", "11", "70", "46", "044", "-", " ", "(", ")"]
)  # fmt: skip
shaped = st.tuples(
    st.sampled_from(["", "+46", "0046", "+46 ", "00", "+", "+44", "0", "+47", "(0)", "0 "]),
    st.sampled_from(["", "0", "(0)", "00", "46", "0046", "044", "046", " (0) ", "-"]),
    st.sampled_from(
        ["70", "8", "90", "900", "939", "944", "99", "771", "71", "20", "10", "0900", "070",
         "112", "118", "11414", "46900", "4470", "47", ""]
    ),
    st.text(st.sampled_from("0123456789"), max_size=9),
    st.sampled_from(["", " ", "-", "#", "p1", ")"]),
).map("".join)  # fmt: skip
numbers = st.one_of(
    shaped,
    st.text(CHARS, max_size=20),
    st.lists(st.one_of(PIECES, st.text(st.sampled_from("0123456789"), max_size=6)), max_size=8).map(
        "".join
    ),
    st.text(max_size=16),
)


def _independent_reading(dial: str, policy: ForwardPolicy) -> tuple[str, str]:
    """``(kind, canonical)`` of ``dial`` as a network would read it, written out afresh."""
    rest = dial[len(policy.trunk_prefix) :] if dial.startswith(policy.trunk_prefix) else None
    if rest is None or not rest.startswith("0"):
        return "extension", dial
    if rest.startswith("00"):
        international = rest[2:]
        if international.startswith("46"):
            return "national", "0" + international[2:]
        return "foreign", "+" + international
    return "national", rest


def _prefix_form(prefix: str) -> str:
    text = prefix.replace(" ", "")
    if text.startswith("+46") and text != "+":
        return "0" + text[3:]
    return text


@settings(FUZZ, max_examples=1500)
@given(numbers, st.sampled_from(POLICIES))
def test_accepted_numbers_are_allowed_as_dialled(raw: str, policy: ForwardPolicy) -> None:
    try:
        dial = check_forward(raw, policy)
    except InvalidActionError as err:
        assert err.why
        return
    assert dial and dial.isascii() and dial.isdigit(), dial
    kind, canonical = _independent_reading(dial, policy)
    if kind == "extension":
        assert not any(dial.startswith(p) for p, _ in SERVICE_NUMBERS), dial
        assert (
            any(
                len(dial) == len(low) and low <= dial <= high
                for low, _, high in (r.partition("-") for r in policy.extensions)
            )
            or dial in policy.extensions
        ), dial
        return
    if kind == "foreign":
        assert policy.allow_international, dial
    allowed = [_prefix_form(p) for p in policy.allowed_prefixes]
    denied = [_prefix_form(p) for p in policy.denied_prefixes]
    best = max((p for p in allowed if canonical.startswith(p)), key=len, default=None)
    assert best is not None, (raw, dial, canonical)
    assert not any(canonical.startswith(d) and len(d) >= len(best) for d in denied), (raw, dial)
    if kind == "national":
        assert canonical[1] != "0", dial  # one national prefix, never an international one
        if policy.denied_prefixes == PREMIUM_PREFIXES or "0900" in policy.denied_prefixes:
            assert not canonical.startswith(PREMIUM_PREFIXES), dial
