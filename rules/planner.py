"""One user's plan: every event through the rules, then the timeline.

``plan_user`` is the whole pure core in one call; the service and the preview
both use it, so what ``calref preview`` prints is what ``calref run`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules.evaluate import EvaluationContext, evaluate_event
from rules.model import CalendarEvent, Ignored, Intent, Plan, Refused, User
from rules.timeline import build_timeline


def plan_user(user: User, events: Iterable[CalendarEvent], ctx: EvaluationContext) -> Plan:
    """Evaluate each event for ``user`` and build the referrals and phone actions."""
    intents: list[Intent] = []
    ignored: list[Ignored] = []
    refused: list[Refused] = []
    for event in events:
        evaluation = evaluate_event(event, user, ctx)
        if evaluation.intent is not None:
            intents.append(evaluation.intent)
        if evaluation.ignored is not None:
            ignored.append(evaluation.ignored)
        refused.extend(evaluation.refused)
    referrals, actions = build_timeline(user.id, intents)
    return Plan(
        user=user.id,
        referrals=tuple(referrals),
        actions=tuple(actions),
        ignored=tuple(ignored),
        refused=tuple(refused),
        intents=tuple(intents),
    )
