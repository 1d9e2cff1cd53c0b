"""The phone side of the timeline: who governs the phone inside one referral, and when to act.

``rules.timeline`` groups a user's intents into referrals; this module takes one
group and decides the referral's start and end action and the ``PlannedAction``s
at its start, at changes inside it and at its end. The semantics are written
down, with worked examples, in ``docs/timeline.md``:

* at each instant the *governing* intent is the active intent with a
  phone-changing start action and the highest priority (tie: the later-starting,
  then the later-ending one); with none the phone is *released*;
* an action is planned only when the phone's demanded state changes;
* the end action comes from the last-ending intent, unless an explicit (tagged)
  end action carries to the end.

The governing intent is found with a sweep over the boundaries and a max-heap
with lazy deletion: O(n log n) for n intents.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime

from rules.model import Intent, Moment, PhoneAction, PlannedAction

__all__ = ["PhonePlan", "Span", "plan_phone"]

_FOLLOW_PROFILE = PhoneAction.follow_profile()
_NONE = PhoneAction.none()


@dataclass(frozen=True, slots=True)
class Span:
    """One valid intent with its UTC times, integer microsecond keys and canonical rank.

    ``rank`` is the intent's place in the canonical order of the whole input; it
    is the last tie-break everywhere, which makes the output independent of the
    order the intents came in.
    """

    intent: Intent
    start: datetime
    end: datetime
    s: int
    e: int
    rank: int


@dataclass(frozen=True, slots=True)
class PhonePlan:
    """The phone control of one referral: its start and end action and the actions to run."""

    start_action: PhoneAction
    end_action: PhoneAction
    actions: tuple[PlannedAction, ...]


def _governing_segments(group: list[Span]) -> list[tuple[int, datetime, Span | None]]:
    """Return ``(s, at, governing span or None)`` at every boundary before the group's end.

    ``group`` is sorted by start. Consecutive boundaries with the same governing
    span are kept: the caller only acts where the demanded action changes.
    """
    bounds: dict[int, datetime] = {}
    for span in group:
        bounds.setdefault(span.s, span.start)
        bounds.setdefault(span.e, span.end)
    times = sorted(bounds)
    heap: list[tuple[int, int, int, int]] = []
    by_rank: dict[int, Span] = {}
    segments: list[tuple[int, datetime, Span | None]] = []
    i, n = 0, len(group)
    for t in times[:-1]:
        while i < n and group[i].s <= t:
            span = group[i]
            i += 1
            if span.intent.start_action.changes_phone:
                by_rank[span.rank] = span
                # Max-heap through negation: priority, later start, later end, lower rank.
                heapq.heappush(heap, (-span.intent.priority, -span.s, -span.e, span.rank))
        while heap and by_rank[heap[0][3]].e <= t:
            heapq.heappop(heap)
        segments.append((t, bounds[t], by_rank[heap[0][3]] if heap else None))
    return segments


def _end_source(group: list[Span]) -> Span:
    """The intent whose end action ends the referral (before the governing fallback)."""
    explicit = [span for span in group if span.intent.end_action_explicit]
    candidates = explicit or group
    # Latest end, then highest priority, then later start, then lower rank.
    return max(candidates, key=lambda sp: (sp.e, sp.intent.priority, sp.s, -sp.rank))


def plan_phone(user: str, group: list[Span], start: datetime, end: datetime) -> PhonePlan:
    """Plan the phone actions of the referral ``[start, end)`` made of ``group`` (by start)."""
    actions: list[PlannedAction] = []

    def plan(at: datetime, action: PhoneAction, moment: Moment, cause: Span) -> None:
        actions.append(
            PlannedAction(
                user=user,
                at=at,
                action=action,
                events=(cause.intent.event,),
                moment=moment,
                referral_start=start,
                rule=cause.intent.rule,
            )
        )

    if len(group) == 1:
        # The common case, a lone meeting: its own start and end action.
        only = group[0]
        begin, finish = only.intent.start_action, only.intent.end_action
        if begin.changes_phone:
            plan(start, begin, Moment.START, only)
        if finish.changes_phone:
            plan(end, finish, Moment.END, only)
        return PhonePlan(start_action=begin, end_action=finish, actions=tuple(actions))

    segments = _governing_segments(group)
    first = segments[0][2]
    start_action = first.intent.start_action if first is not None else _NONE
    last: PhoneAction | None = None  # the last action planned in this referral
    previous: Span | None = None
    for index, (_, at, governing) in enumerate(segments):
        moment = Moment.START if index == 0 else Moment.CHANGE
        if governing is not None:
            wanted = governing.intent.start_action
            if wanted != last:
                plan(at, wanted, moment, governing)
                last = wanted
        elif previous is not None:
            # Governed -> released: the ended intent's end action, but an explicit
            # one waits for the referral's end, so meanwhile follow the profile.
            ended = previous.intent
            release = _FOLLOW_PROFILE if ended.end_action_explicit else ended.end_action
            if release.changes_phone and release != last:
                plan(at, release, Moment.CHANGE, previous)
                last = release
        previous = governing

    source = _end_source(group)
    end_action = source.intent.end_action
    final = segments[-1][2]
    if not end_action.changes_phone and final is not None:
        # The phone is still governed when the referral ends and nothing else is
        # asked for (even by an explicit ``none``): release it the way the
        # governing intent asks, so the phone is never left closed or forwarded.
        source, end_action = final, final.intent.end_action
    if end_action.changes_phone:
        plan(end, end_action, Moment.END, source)
    return PhonePlan(start_action=start_action, end_action=end_action, actions=tuple(actions))
