"""The timeline: one user's intents become referrals and the phone actions to carry out.

``build_timeline`` is the last, pure step of planning. It merges overlapping or
touching intents into one referral each, takes reason and message from the
highest-priority intent, and asks ``rules.timeline_phone`` which phone actions
the referral needs at its start, inside it and at its end. The semantics, with
worked examples, are in ``docs/timeline.md``.

The output depends only on the set of intents, never on their order: the input
is sorted into a canonical order first and every tie ends on that order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from rules.errors import Problem, ValidationError
from rules.model import Intent, PhoneAction, PlannedAction, Referral
from rules.timeline_phone import Span, plan_phone

__all__ = ["build_timeline"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def build_timeline(
    user_id: str, intents: Iterable[Intent]
) -> tuple[list[Referral], list[PlannedAction]]:
    """Merge ``intents`` into referrals and plan their phone actions, both sorted by time.

    Intents with ``end <= start`` are dropped. Raises ``ValidationError`` naming
    every intent whose times are not timezone-aware datetimes.
    """
    spans = _canonical_spans(user_id, intents)
    referrals: list[Referral] = []
    actions: list[PlannedAction] = []
    for group in _groups(spans):
        referral, planned = _referral(user_id, group)
        referrals.append(referral)
        actions.extend(planned)
    return referrals, actions


def _action_key(action: PhoneAction) -> tuple[str, str, str]:
    return (action.kind.value, action.number or "", action.profile or "")


def _canonical_key(intent: Intent) -> tuple[object, ...]:
    """A total order on intents: start, end, priority (high first), then every other field."""
    return (
        intent.start,
        intent.end,
        -intent.priority,
        intent.event,
        intent.rule,
        intent.reason,
        intent.message,
        _action_key(intent.start_action),
        _action_key(intent.end_action),
        intent.end_action_explicit,
    )


def _utc(user_id: str, intent: object, index: int) -> tuple[Intent | None, list[Problem]]:
    """Check one input item and return it with UTC times, or the problems found."""
    if not isinstance(intent, Intent):
        place = f"user {user_id!r}, intent #{index}"
        return None, [
            Problem(place, None, None, f"expected an Intent, got {type(intent).__name__}")
        ]
    place = f"user {user_id!r}, intent {intent.event!r}"
    problems = []
    for name in ("start", "end"):
        value = getattr(intent, name)
        if not isinstance(value, datetime):
            message = f"{name} must be a datetime, got {type(value).__name__}"
            problems.append(Problem(place, None, None, message))
        elif value.tzinfo is None or value.utcoffset() is None:
            message = f"{name} {value.isoformat()} has no time zone; times must be aware (UTC)"
            problems.append(Problem(place, None, None, message))
    if problems:
        return None, problems
    if intent.start.tzinfo is UTC and intent.end.tzinfo is UTC:
        return intent, []
    return Intent(
        event=intent.event,
        start=intent.start.astimezone(UTC),
        end=intent.end.astimezone(UTC),
        reason=intent.reason,
        message=intent.message,
        start_action=intent.start_action,
        end_action=intent.end_action,
        priority=intent.priority,
        rule=intent.rule,
        end_action_explicit=intent.end_action_explicit,
    ), []


def _canonical_spans(user_id: str, intents: Iterable[Intent]) -> list[Span]:
    """Validate, convert to UTC, drop empty intents and sort into the canonical order."""
    valid: list[Intent] = []
    problems: list[Problem] = []
    for index, item in enumerate(intents):
        intent, found = _utc(user_id, item, index)
        problems.extend(found)
        if intent is not None and intent.end > intent.start:
            valid.append(intent)
    if problems:
        raise ValidationError(problems)
    valid.sort(key=_canonical_key)
    return [
        Span(
            intent=intent,
            start=intent.start,
            end=intent.end,
            s=(intent.start - _EPOCH) // _MICROSECOND,
            e=(intent.end - _EPOCH) // _MICROSECOND,
            rank=rank,
        )
        for rank, intent in enumerate(valid)
    ]


def _groups(spans: list[Span]) -> list[list[Span]]:
    """Split spans (sorted by start) into runs that overlap or touch: one run per referral."""
    groups: list[list[Span]] = []
    current: list[Span] = []
    current_end = 0
    for span in spans:
        if current and span.s <= current_end:
            current.append(span)
            current_end = max(current_end, span.e)
        else:
            if current:
                groups.append(current)
            current, current_end = [span], span.e
    if current:
        groups.append(current)
    return groups


def _referral(user_id: str, group: list[Span]) -> tuple[Referral, tuple[PlannedAction, ...]]:
    """Build the referral for one group and plan its phone actions."""
    start = group[0].start
    end = max(group, key=lambda sp: sp.e).end
    # Highest priority; tie: earlier start, then longer, then canonical rank.
    lead = max(group, key=lambda sp: (sp.intent.priority, -sp.s, sp.e, -sp.rank)).intent
    phone = plan_phone(user_id, group, start, end)
    referral = Referral(
        user=user_id,
        start=start,
        end=end,
        reason=lead.reason,
        message=lead.message,
        start_action=phone.start_action,
        end_action=phone.end_action,
        events=tuple(dict.fromkeys(span.intent.event for span in group)),
    )
    return referral, phone.actions
