"""From one calendar event to an Intent (a wanted referral) or an Ignored, and why.

Order: times (all-day dates become local midnights, so a DST day is 23 or 25
hours; an empty event is ignored) → tags (``#noref`` skips) → rules, first
match wins (conditions see the subject with tags removed) → the Intent, with
tags overriding the rule's reason and actions. ``explain_event`` tells the same
story in words for people asking "why did (or didn't) this become a referral?".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rules.actions import validate_for_user
from rules.conditions import EventFacts, format_duration
from rules.dialling import ForwardPolicy
from rules.errors import InvalidActionError
from rules.model import ActionKind, CalendarEvent, Ignored, Intent, PhoneAction, Refused, User
from rules.rulefile import Rule, RuleReferral, RuleSet
from rules.tags import TagOutcome, read_tags
from rules.template import cap_message

_NEEDS_USER = (ActionKind.FORWARD, ActionKind.PROFILE_SWITCH)


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """What evaluation needs besides the event and user: local zone, dialling policy, rules."""

    timezone: ZoneInfo
    policy: ForwardPolicy
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result for one event: exactly one of ``intent``/``ignored``, plus refused tags."""

    intent: Intent | None = None
    ignored: Ignored | None = None
    refused: tuple[Refused, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One line of an explanation.

    ``kind`` is ``time``, ``tag``, ``refused``, ``rule`` or ``outcome``. For a
    rule, ``matched`` says whether it matched and ``detail`` gives the first
    condition that failed.
    """

    kind: str
    name: str
    matched: bool
    detail: str = ""

    def __str__(self) -> str:
        mark = "✓" if self.matched else "✗"
        return f"{mark} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")


def to_utc(value: datetime | date, zone: ZoneInfo) -> datetime:
    """An event time as aware UTC; a date means local midnight in ``zone``."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Prepared:
    start: datetime
    end: datetime
    tags: TagOutcome
    facts: EventFacts


def _prepare(event: CalendarEvent, user: User, ctx: EvaluationContext) -> _Prepared | Ignored:
    try:
        start, end = to_utc(event.start, ctx.timezone), to_utc(event.end, ctx.timezone)
    except ValueError as err:
        return Ignored(event.key, event.start, f"invalid time: {err}")
    if end <= start:
        return Ignored(event.key, event.start, "empty")
    rules = ctx.rules
    tags = read_tags(event, user, rules.vocabulary, ctx.policy, rules.dialects)
    facts = EventFacts(
        show_as=event.show_as,
        response=event.response,
        organizer=event.organizer_kind,
        cancelled=event.cancelled,
        private=event.private,
        all_day=event.all_day,
        subject=tags.subject,
        categories=event.categories,
        local_start=start.astimezone(ctx.timezone),
        duration=end - start,
        reason_tagged=tags.reason is not None,
    )
    return _Prepared(start, end, tags, facts)


def _first_match(rules: RuleSet, facts: EventFacts) -> Rule | None:
    for rule in rules.rules:
        if rule.first_failure(facts) is None:
            return rule
    return None


def _checked(
    action: PhoneAction, rule: Rule, event: CalendarEvent, user: User, ctx: EvaluationContext
) -> tuple[PhoneAction, Refused | None]:
    if action.kind not in _NEEDS_USER:
        return action, None
    try:
        return validate_for_user(action, user, ctx.policy), None
    except InvalidActionError as err:
        return PhoneAction.follow_profile(), Refused(event.key, rule.name, err.why)


def _message(
    event: CalendarEvent,
    prep: _Prepared,
    referral: RuleReferral,
    reason: str,
    ctx: EvaluationContext,
) -> str:
    if event.private:
        return cap_message(ctx.rules.private_message)
    fields = referral.template.fields
    values = {"subject": prep.tags.shown, "reason": reason}
    if fields - values.keys():
        local_start = prep.facts.local_start
        local_end = prep.end.astimezone(ctx.timezone)
        last_moment = (prep.end - timedelta(microseconds=1)).astimezone(ctx.timezone)
        values["start_time"] = f"{local_start:%H:%M}"
        values["end_time"] = f"{local_end:%H:%M}"
        values["end_date"] = last_moment.date().isoformat()
    return referral.template.render(values)


def _build_intent(
    event: CalendarEvent, user: User, ctx: EvaluationContext, prep: _Prepared, rule: Rule
) -> tuple[Intent, tuple[Refused, ...]]:
    referral = rule.referral
    assert referral is not None
    tags = prep.tags
    refused: list[Refused] = []
    rule_start, bad_start = _checked(referral.start, rule, event, user, ctx)
    rule_end, bad_end = _checked(referral.end, rule, event, user, ctx)
    refused += [r for r in (bad_start, bad_end) if r is not None]
    start_action = tags.start_action or rule_start
    if tags.end_action is not None:
        end_action = tags.end_action
    elif tags.start_action is not None and tags.start_action.changes_phone:
        # a tag changed the phone: make sure something puts it back at the end
        end_action = rule_end if rule_end.changes_phone else PhoneAction.follow_profile()
    else:
        end_action = rule_end
    reason = tags.reason or referral.reason
    intent = Intent(
        event=event.key,
        start=prep.start,
        end=prep.end,
        reason=reason,
        message=_message(event, prep, referral, reason, ctx),
        start_action=start_action,
        end_action=end_action,
        priority=referral.priority,
        rule=rule.name,
        end_action_explicit=tags.end_action is not None,
    )
    return intent, tuple(refused)


def evaluate_event(event: CalendarEvent, user: User, ctx: EvaluationContext) -> Evaluation:
    """Decide what ``event`` asks for on ``user``'s phone under ``ctx``."""
    prep = _prepare(event, user, ctx)
    if isinstance(prep, Ignored):
        return Evaluation(ignored=prep)
    tags = prep.tags
    if tags.skip:
        return Evaluation(ignored=Ignored(event.key, event.start, "tagged"), refused=tags.refused)
    rule = _first_match(ctx.rules, prep.facts)
    if rule is None:
        return Evaluation(ignored=Ignored(event.key, event.start, "no_rule"), refused=tags.refused)
    if rule.skip is not None:
        ignored = Ignored(event.key, event.start, rule.skip, rule=rule.name)
        return Evaluation(ignored=ignored, refused=tags.refused)
    intent, refused = _build_intent(event, user, ctx, prep, rule)
    return Evaluation(intent=intent, refused=tags.refused + refused)


def explain_event(event: CalendarEvent, user: User, ctx: EvaluationContext) -> list[RuleVerdict]:
    """Why ``event`` did or did not become a referral, step by step, in words."""
    prep = _prepare(event, user, ctx)
    if isinstance(prep, Ignored):
        return [RuleVerdict("outcome", "ignored", False, prep.why)]
    verdicts = [
        RuleVerdict(
            "time",
            "local",
            True,
            f"{prep.facts.local_start:%Y-%m-%d %H:%M} for {format_duration(prep.facts.duration)}"
            f" ({'all day' if event.all_day else 'timed'})",
        )
    ]
    verdicts += [RuleVerdict("tag", applied, True) for applied in prep.tags.applied]
    verdicts += [RuleVerdict("refused", r.tag, False, r.why) for r in prep.tags.refused]
    if prep.tags.skip:
        return [*verdicts, RuleVerdict("outcome", "ignored", False, "tagged")]
    for rule in ctx.rules.rules:
        failure = rule.first_failure(prep.facts)
        if failure is not None:
            verdicts.append(RuleVerdict("rule", rule.name, False, failure))
            continue
        verdicts.append(RuleVerdict("rule", rule.name, True, "all conditions hold"))
        result = evaluate_event(event, user, ctx)
        verdicts += [
            RuleVerdict("refused", r.tag, False, r.why)
            for r in result.refused
            if r not in prep.tags.refused
        ]
        if result.intent is not None:
            i = result.intent
            detail = (
                f"reason {i.reason}, message {i.message!r}, start {i.start_action}, "
                f"end {i.end_action}{' (chosen by tag)' if i.end_action_explicit else ''}, "
                f"priority {i.priority}"
            )
            verdicts.append(RuleVerdict("outcome", "referral", True, detail))
        else:
            assert result.ignored is not None
            verdicts.append(RuleVerdict("outcome", "ignored", False, result.ignored.why))
        return verdicts
    return [*verdicts, RuleVerdict("outcome", "ignored", False, "no_rule")]
