"""Re-planning: compare a user's new plan with the stored one and say what must change.

This is a pure function of (new plan, stored referrals, stored actions, now): no
I/O. Its result is a ``sync.store.changes.PlanDiff``, which ``Store.apply_diffs``
(``sync.store.plan``) writes in one transaction.

Identity. A referral keeps the id of the stored referral it continues (they
share an event); a new one gets an id derived from the user and its first event
key. So a re-plan of the same meeting keeps the id and the switchboard entry is
replaced, not duplicated. An action's identity is ``<referral id>#g<generation>/<moment>``;
the generation only changes when a referral that already started is moved wholly
into the future (the running one ends now, a new one starts later) or comes back
after being withdrawn. The idempotency key is the identity plus a revision that
increases whenever the action is re-armed with different content.

Rules (see docs/service.md):
- new action: added (``pending``), or ``skipped`` when its referral already ended;
- pending action with a new time or action: rescheduled (revision + 1);
- action gone from the plan: cancelled, except the end action of a referral that
  has started: that one is due now (cancelled or shortened while running);
- a start already carried out whose action changed while the referral still
  runs, or an end already carried out whose referral was extended: re-armed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from connectors.calendars.base import SyncWindow
from rules.model import (
    ActionKind,
    ActionStatus,
    Moment,
    PhoneAction,
    Plan,
    PlannedAction,
    Referral,
)
from sync.store.changes import (
    ActionUpdate,
    NewAction,
    PlanDiff,
    ReferralUpsert,
    ReferralWithdrawal,
)
from sync.store.records import StoredAction, StoredReferral

#: statuses of a start action meaning "the referral's phone control has begun"
STARTED_STATUSES = frozenset({ActionStatus.DONE, ActionStatus.SENDING, ActionStatus.FAILED})


def referral_id(user: str, referral: Referral) -> str:
    """The stable switchboard id of a referral: from the user and its first event key."""
    anchor = referral.events[0] if referral.events else referral.start.isoformat()
    digest = hashlib.sha256(f"{user}\x00{anchor}".encode()).hexdigest()[:20]
    return f"calref-{digest}"


def referral_hash(referral: Referral) -> str:
    """A digest of everything published about a referral (a change means re-publish)."""
    parts = [
        referral.start.isoformat(),
        referral.end.isoformat(),
        referral.reason,
        referral.message,
        str(referral.start_action),
        str(referral.end_action),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def action_identity(rid: str, generation: int, moment: Moment, ordinal: int) -> str:
    suffix = moment if moment != Moment.CHANGE else f"change{ordinal}"
    return f"{rid}#g{generation}/{suffix}"


def _group_actions(plan: Plan) -> dict[int, list[PlannedAction]]:
    """Planned actions per referral index (matched by referral start, else by containment)."""
    groups: dict[int, list[PlannedAction]] = {i: [] for i in range(len(plan.referrals))}
    by_start = {r.start: i for i, r in enumerate(plan.referrals)}
    for action in plan.actions:
        index = by_start.get(action.referral_start)
        if index is None:
            index = next(
                (i for i, r in enumerate(plan.referrals) if r.start <= action.at <= r.end), None
            )
        if index is not None:
            groups[index].append(action)
    return groups


def _desired(
    rid: str, gen: int, actions: list[PlannedAction]
) -> dict[str, tuple[int, PlannedAction]]:
    out: dict[str, tuple[int, PlannedAction]] = {}
    changes = sorted((a for a in actions if a.moment == Moment.CHANGE), key=lambda a: a.at)
    for action in actions:
        ordinal = changes.index(action) if action.moment == Moment.CHANGE else 0
        out[action_identity(rid, gen, action.moment, ordinal)] = (ordinal, action)
    return out


def _needs_rearm(row: StoredAction, new: PlannedAction, end: datetime, now: datetime) -> bool:
    if row.status in (ActionStatus.CANCELLED, ActionStatus.SKIPPED):
        return end > now
    if row.status in (ActionStatus.PENDING, ActionStatus.FAILED):
        return row.action != new.action or row.due_at != new.at
    if row.status == ActionStatus.SENDING:
        return False  # in flight (or a crash leftover): finish it first, re-plan later
    # DONE, KEPT, MISSED: carried out (or deliberately not) already
    if row.moment == Moment.END:
        return new.at > now and row.due_at != new.at
    if end <= now:
        return False
    if row.status == ActionStatus.MISSED:
        return True
    return row.status == ActionStatus.DONE and row.action != new.action


def diff_plan(
    plan: Plan,
    stored_referrals: list[StoredReferral],
    stored_actions: list[StoredAction],
    now: datetime,
    window: SyncWindow,
) -> PlanDiff:
    """What must change so the store holds ``plan`` (see the module docstring for the rules)."""
    diff = PlanDiff(user=plan.user)
    stored = {r.id: r for r in stored_referrals}
    rows: dict[tuple[str, int], list[StoredAction]] = {}
    for row in stored_actions:
        rows.setdefault((row.referral_id, row.generation), []).append(row)

    groups = _group_actions(plan)
    ids = _assign_ids(plan, stored_referrals, rows)
    seen = set(ids.values())
    for index, referral in sorted(enumerate(plan.referrals), key=lambda p: p[1].start):
        rid = ids[index]
        old = stored.get(rid)
        gen = 0 if old is None else old.generation + (0 if old.active else 1)
        if old is not None and old.active:
            current = rows.get((rid, gen), [])
            start_row = next((r for r in current if r.moment == Moment.START), None)
            if (
                start_row is not None
                and start_row.status in STARTED_STATUSES
                and referral.start > now
            ):
                _end_running(current, diff, rid, gen, now)
                gen += 1
        desired = _desired(rid, gen, groups[index])
        existing: dict[str, StoredAction | None] = {r.identity: r for r in rows.get((rid, gen), [])}
        reopened = False
        for identity, (ordinal, planned) in desired.items():
            match = existing.pop(identity, None)
            if match is None:
                status = ActionStatus.PENDING if referral.end > now else ActionStatus.SKIPPED
                diff.new_actions.append(
                    NewAction(
                        identity, rid, gen, planned.moment, ordinal, planned, referral.end, status
                    )
                )
                continue
            rearm = _needs_rearm(match, planned, referral.end, now)
            if (
                rearm
                and match.moment == Moment.END
                and match.status in (ActionStatus.DONE, ActionStatus.KEPT, ActionStatus.MISSED)
            ):
                reopened = True  # the referral was extended after its end was handled
            if rearm or match.due_at != planned.at or match.referral_end != referral.end:
                diff.updates.append(
                    ActionUpdate(match.id, planned, referral.end, rearm, planned.at)
                )
        if reopened:
            _rearm_start(diff, rows.get((rid, gen), []), desired, referral.end)
        started = any(
            r.moment == Moment.START and r.status in STARTED_STATUSES
            for r in rows.get((rid, gen), [])
        )
        for row in (r for r in existing.values() if r is not None):
            if row.status in (ActionStatus.PENDING, ActionStatus.FAILED):
                if row.moment == Moment.END and started:
                    diff.end_now.append(row.id)
                else:
                    diff.cancels.append(row.id)
        diff.upserts.append(ReferralUpsert(rid, gen, referral, referral_hash(referral)))

    for old in stored_referrals:
        if not old.active or old.id in seen:
            continue
        expired = old.end <= window.start
        diff.withdrawals.append(ReferralWithdrawal(old.id, expired))
        if not expired:
            _end_running(rows.get((old.id, old.generation), []), diff, old.id, old.generation, now)
    return diff


def _assign_ids(
    plan: Plan,
    stored_referrals: list[StoredReferral],
    rows: dict[tuple[str, int], list[StoredAction]],
) -> dict[int, str]:
    """Each new referral's id: the stored referral it continues, else one from its first event.

    A referral continues a stored one when they share an event and begin with the
    same phone action (otherwise the stored one ends, its end action now if it
    was running, and the new one starts on its own). This matters when
    an earlier meeting joins a referral that is already running: the merged
    referral starts with another event, but it is the same absence, so it keeps
    the id (and its carried-out start) instead of ending the running one and
    starting a new one, which would open and close the phone again.
    """

    def started(r: StoredReferral) -> bool:
        return any(
            a.moment == Moment.START and a.status in STARTED_STATUSES
            for a in rows.get((r.id, r.generation), [])
        )

    active = [r for r in stored_referrals if r.active]
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for index, referral in sorted(enumerate(plan.referrals), key=lambda p: p[1].start):
        keys = set(referral.events)
        continued = [
            r
            for r in active
            if r.id not in taken
            and keys.intersection(r.events)
            and r.start_action == referral.start_action
        ]
        if continued:
            rid = min(continued, key=lambda r: (not started(r), r.start, r.id)).id
        else:
            rid = base = referral_id(plan.user, referral)
            n = 2
            while rid in taken:
                rid, n = f"{base}-{n}", n + 1
        taken.add(rid)
        ids[index] = rid
    return ids


def _rearm_start(
    diff: PlanDiff,
    rows: list[StoredAction],
    desired: dict[str, tuple[int, PlannedAction]],
    end: datetime,
) -> None:
    """Re-apply a start already carried out, because its referral runs again."""
    start_row = next(
        (r for r in rows if r.moment == Moment.START and r.status == ActionStatus.DONE), None
    )
    if start_row is None or start_row.identity not in desired:
        return
    planned = desired[start_row.identity][1]
    diff.updates[:] = [u for u in diff.updates if u.id != start_row.id]
    diff.updates.append(ActionUpdate(start_row.id, planned, end, True, planned.at))


#: phone states our actions leave that must not outlive their referral
_HOLDING = frozenset({ActionKind.CLOSE, ActionKind.FORWARD})


def _end_running(
    rows: list[StoredAction], diff: PlanDiff, rid: str, gen: int, now: datetime
) -> None:
    """Withdraw a referral's live actions: its end runs now if it started, else all cancel.

    A running referral whose phone is closed or forwarded by us but that has no
    end action of its own (its restoring step was a ``change`` inside it, say a
    close that ends while a soft meeting goes on) gets ``follow_profile`` now,
    so cancelling a meeting never leaves the phone closed.
    """
    started = any(r.moment == Moment.START and r.status in STARTED_STATUSES for r in rows)
    has_end = False
    for row in rows:
        has_end = has_end or row.moment == Moment.END
        if row.status not in (ActionStatus.PENDING, ActionStatus.FAILED):
            continue
        if row.moment == Moment.END and started:
            diff.end_now.append(row.id)
        else:
            diff.cancels.append(row.id)
    done = [r for r in rows if r.status in STARTED_STATUSES and r.moment != Moment.END]
    last = max(done, key=lambda r: (r.due_at, r.id), default=None)
    if started and not has_end and last is not None and last.action.kind in _HOLDING:
        restore = PlannedAction(
            user=diff.user,
            at=now,
            action=PhoneAction.follow_profile(),
            events=(),
            moment=Moment.END,
            referral_start=last.due_at,
            rule="withdrawn while running",
        )
        diff.new_actions.append(
            NewAction(
                f"{rid}#g{gen}/end", rid, gen, Moment.END, 0, restore, now, ActionStatus.PENDING
            )
        )
