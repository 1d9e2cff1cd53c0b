"""The rule file administrators edit: validating its text and compiling it into a RuleSet.

Rules are ordered and the first match wins (see docs/rules.md). Validation
reports every problem at once, each with file, line, column and the offending
value, as one ``RuleFileError``. Compilation happens once per load: regexes,
globs, durations, actions and templates are parsed here so evaluation does no
YAML or parsing work per event.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticError

from rules.conditions import (
    WEEKDAYS,
    CategoryMatches,
    Condition,
    DurationWithin,
    EventFacts,
    Flag,
    OneOf,
    StartTimeWithin,
    SubjectMatches,
    WeekdayIn,
    parse_clock,
    parse_duration,
)
from rules.dialling import ForwardPolicy, check_forward
from rules.errors import InvalidActionError, Problem, RuleFileError, ValidationError
from rules.model import PhoneAction
from rules.rulespec import DEFAULT_REASONS, RuleFileSpec, RuleSpec, When, listify
from rules.tags import Dialects, TagVocabulary
from rules.template import MessageTemplate
from rules.yamlfile import YamlDocument, load_yaml, problems_from_pydantic

_TAG_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class RuleReferral:
    """What a matching rule makes: reason, message template, phone actions and priority."""

    reason: str
    template: MessageTemplate
    start: PhoneAction
    end: PhoneAction
    priority: int


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule."""

    name: str
    conditions: tuple[Condition, ...]
    skip: str | None = None
    referral: RuleReferral | None = None

    def first_failure(self, facts: EventFacts) -> str | None:
        """None when every condition holds, else the first failing condition in words."""
        for condition in self.conditions:
            failure = condition.failure(facts)
            if failure is not None:
                return failure
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded rule file, ready for evaluation."""

    rules: tuple[Rule, ...]
    reasons: tuple[str, ...] = DEFAULT_REASONS
    private_message: str = "Busy"
    vocabulary: TagVocabulary = field(
        default_factory=lambda: TagVocabulary(reasons=DEFAULT_REASONS)
    )
    dialects: Dialects = field(default_factory=Dialects)
    source: str = ""
    version: int = 1
    forwards: tuple[tuple[str, Problem], ...] = ()

    def forward_problems(self, policy: ForwardPolicy) -> list[Problem]:
        """Each rule ``forward`` number the dialling policy refuses, at its place in the file.

        The same check as for ``#fwd:`` tags, done once when the configuration loads so
        that ``calref check`` reports it; evaluation still checks each number per user.
        """
        problems: list[Problem] = []
        for number, place in self.forwards:
            try:
                check_forward(number, policy)
            except InvalidActionError as err:
                problems.append(replace(place, message=f"{place.message}{err}"))
        return problems


def _compile_when(when: When) -> tuple[Condition, ...]:
    out: list[Condition] = []
    for key in ("show_as", "response", "organizer"):
        values = getattr(when, key)
        if values is not None:
            shown = tuple(str(v) for v in values)
            out.append(OneOf(key, frozenset(shown), shown))
    for key in ("cancelled", "private", "all_day", "reason_tagged"):
        if getattr(when, key) is not None:
            out.append(Flag(key, getattr(when, key)))
    if when.subject is not None:
        out.append(SubjectMatches(tuple(when.subject)))
    if when.category is not None:
        joined = "|".join(f"(?:{fnmatch.translate(g)})" for g in when.category)
        out.append(CategoryMatches(tuple(when.category), re.compile(joined, re.IGNORECASE)))
    if when.duration is not None:
        low, high = when.duration.min, when.duration.max
        out.append(
            DurationWithin(
                parse_duration(low) if low is not None else None,
                parse_duration(high) if high is not None else None,
            )
        )
    if when.weekdays is not None:
        out.append(WeekdayIn(frozenset(WEEKDAYS.index(d) for d in when.weekdays)))
    if when.time is not None:
        out.append(StartTimeWithin(parse_clock(when.time.start), parse_clock(when.time.end)))
    return tuple(out)


def _compile_rule(spec: RuleSpec) -> Rule:
    if spec.referral is None:
        return Rule(spec.name, _compile_when(spec.when), skip=spec.skip)
    ref = spec.referral
    end = ref.end
    if end is None:
        end = PhoneAction.follow_profile() if ref.start.changes_phone else PhoneAction.none()
    referral = RuleReferral(
        ref.reason, MessageTemplate.parse(ref.message), ref.start, end, ref.priority
    )
    return Rule(spec.name, _compile_when(spec.when), referral=referral)


def _rule_problems(doc: YamlDocument, rules: list[Any]) -> list[Problem]:
    """Each rule has one outcome; rule names are unique; the file has at least one rule."""
    problems: list[Problem] = []
    if not rules:
        problems.append(doc.problem(("rules",), "the rule file has no rules (add at least one)"))
    names = [r.get("name") for r in rules if isinstance(r, dict)]
    counts = Counter(name for name in names if isinstance(name, str))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue  # the schema reports it
        name = rule.get("name")
        shown = repr(name) if isinstance(name, str) else f"#{i + 1}"
        for key in ("skip", "referral"):
            if key in rule and rule[key] is None:
                problems.append(
                    doc.problem(
                        ("rules", i, key), f"rule {shown} has an empty {key}", at_value=False
                    )
                )
        if ("skip" in rule) == ("referral" in rule):
            what = (
                "has both skip and referral; keep one"
                if "skip" in rule
                else "needs an outcome: skip: WHY or referral: {...}"
            )
            problems.append(doc.problem(("rules", i), f"rule {shown} {what}", at_value=False))
        if isinstance(name, str) and counts[name] > 1:
            if name in seen:
                problems.append(doc.problem(("rules", i, "name"), f"duplicate rule name {name!r}"))
            seen.add(name)
    return problems


def _word_lists(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], list[Any], bool]]:
    """``(path, words, written as a list)`` of each tag-word section that holds words."""
    sections: list[tuple[tuple[str | int, ...], Any]] = []
    tags = data.get("tags")
    if isinstance(tags, dict):
        sections += [
            (("tags", kind), words) for kind, words in tags.items() if isinstance(kind, str)
        ]
    sections.append((("reasons",), data.get("reasons", [])))
    out: list[tuple[tuple[str | int, ...], list[Any], bool]] = []
    for path, words in sections:
        if isinstance(words, str):
            out.append((path, [words], False))
        elif isinstance(words, list):
            out.append((path, words, True))
    return out


def _word_problems(doc: YamlDocument) -> list[Problem]:
    """Tag words are words, each used once: by one section, and once within it."""
    problems: list[Problem] = []
    owners: dict[str, str] = {}
    for path, words, is_list in _word_lists(doc.data):
        section = str(path[-1])
        seen: set[str] = set()
        for j, word in enumerate(words):
            if not isinstance(word, str):
                continue  # the schema reports it
            where = (*path, j) if is_list else path
            if not _TAG_WORD.fullmatch(word):
                problems.append(
                    doc.problem(where, f"{word!r} cannot be a tag (letters, digits and _ only)")
                )
                continue
            key = word.casefold()
            owner = owners.setdefault(key, section)
            if owner != section:
                problems.append(doc.problem(where, f"tag word {word!r} is already used by {owner}"))
            elif key in seen:
                what = "reason" if path == ("reasons",) else "tag word"
                problems.append(doc.problem(where, f"duplicate {what} {word!r}"))
            seen.add(key)
    return problems


def _extra_problems(doc: YamlDocument) -> list[Problem]:
    """Checks across rules and sections, done on the raw data so they run even if others fail.

    Values of the wrong type are skipped here: the schema reports each of them.
    """
    data = doc.data
    problems: list[Problem] = []
    rules = data.get("rules")
    if isinstance(rules, list):
        problems += _rule_problems(doc, rules)
    elif "rules" in data and rules is None:
        problems.append(doc.problem(("rules",), "the rule file has no rules", at_value=False))
    codes, reasons = data.get("absence_codes"), listify(data.get("reasons", DEFAULT_REASONS))
    if isinstance(codes, dict) and isinstance(reasons, list):
        for code, reason in codes.items():
            if isinstance(code, str) and isinstance(reason, str) and reason not in reasons:
                problems.append(
                    doc.problem(("absence_codes", code), f"unknown reason {reason!r} for {code!r}")
                )
    return problems + _word_problems(doc)


def parse_rules(text: str, filename: str = "rules.yaml") -> RuleSet:
    """Validate and compile rule-file ``text``; RuleFileError lists every problem."""
    try:
        doc = load_yaml(text, filename)
    except ValidationError as err:
        raise RuleFileError(err.problems) from None
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else "not a mapping of keys (version:, rules:, ...)"
        raise RuleFileError([Problem(filename, 1, 1, f"the rule file is {what}")])
    reasons = doc.data.get("reasons", DEFAULT_REASONS)
    reasons = listify(reasons)
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        reasons = list(DEFAULT_REASONS)
    problems: list[Problem] = []
    spec: RuleFileSpec | None = None
    try:
        spec = RuleFileSpec.model_validate(doc.data, context={"reasons": tuple(reasons)})
    except PydanticError as err:
        problems += problems_from_pydantic(err, doc)
    problems += _extra_problems(doc)
    if problems or spec is None:
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise RuleFileError(problems)
    codes = tuple(spec.absence_codes.items())
    forwards = [
        (action.number, doc.problem(("rules", i, "referral", key), ""))
        for i, rule in enumerate(spec.rules)
        if rule.referral is not None
        for key, action in (("start", rule.referral.start), ("end", rule.referral.end))
        if action is not None and action.number is not None
    ]
    return RuleSet(
        rules=tuple(_compile_rule(r) for r in spec.rules),
        forwards=tuple(forwards),
        reasons=tuple(spec.reasons),
        private_message=spec.private_message,
        vocabulary=TagVocabulary(
            soft=tuple(spec.tags.soft),
            close=tuple(spec.tags.close),
            forward=tuple(spec.tags.forward),
            skip=tuple(spec.tags.skip),
            reasons=tuple(spec.reasons),
        ),
        dialects=Dialects(
            leading_symbols=spec.dialects.leading_symbols,
            first_words=spec.dialects.first_words,
            code_prefix=spec.dialects.code_prefix,
            absence_codes=codes,
        ),
        source=filename,
        version=spec.version,
    )


def default_rules_text() -> str:
    """The packaged default rule file, verbatim."""
    # next to this module (not importlib.resources("rules"): under pytest, the tests/rules
    # folder can shadow the package name as a namespace package)
    return Path(__file__).with_name("default_rules.yaml").read_text(encoding="utf-8")


_default: list[RuleSet] = []


def default_rules() -> RuleSet:
    """The packaged default rules, compiled (once)."""
    if not _default:
        _default.append(parse_rules(default_rules_text(), "default_rules.yaml"))
    return _default[0]


__all__ = [
    "DEFAULT_REASONS",
    "Rule",
    "RuleReferral",
    "RuleSet",
    "default_rules",
    "default_rules_text",
    "parse_rules",
]
