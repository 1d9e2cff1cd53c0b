"""The referrals outbox: tells the switchboard about every referral the plan changed.

A referral is pending when what the plan says of it differs from what was last
published (a new content hash), or when the plan dropped a published one
(``ExecutionStore.unpublished_referrals`` in ``sync.store.execution``).
``Outbox.publish_pending`` publishes (creates or replaces) the active ones and
withdraws the dropped ones, each user's referrals in start order, users side by
side (``sync.service.call_gate.per_user``).
Every call carries an idempotency key made of the referral id, its content and
the plan version, so a call repeated after a crash changes nothing. A failed
call is tried again as ``sync.service.retries`` says (a user the switchboard
does not know waits the long ``unknown_user`` backoff), and every outcome is
one audit line (``sync.store.execution.ExecutionStore.finish_publication``).

A switchboard can lose what it was told (a gateway restarted without keeping
its referrals): ``check_lost`` compares, now and then, the referrals it shows
with the ones published, and marks the missing ones for publishing again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from connectors.switchboard.base import ListsReferrals, PublishedReferral
from rules.errors import CalrefError
from rules.wording import plural
from sync.service.call_gate import SwitchboardCalls, per_user
from sync.store import records as rec
from sync.store.records import Outcome

log = logging.getLogger(__name__)


class Outbox:
    """Publishes and withdraws the referrals whose switchboard copy differs from the plan."""

    def __init__(
        self, calls: SwitchboardCalls, *, check_every: timedelta = timedelta(minutes=5)
    ) -> None:
        self.store = calls.store
        self.switchboard = calls.switchboard
        self.clock = calls.clock
        self.gate = calls.gate
        self.retries = calls.retries
        self.concurrency = calls.concurrency
        #: how often ``check_lost`` compares the switchboard's referrals with ours
        self.check_every = check_every
        self._next_check: datetime | None = None

    def publish_pending(self) -> None:
        """Publish, update or withdraw every referral that is due to be (re)tried now.

        Users in parallel (up to ``concurrency`` calls), each user's referrals in start order.
        """
        now = self.clock.now()
        by_user: dict[str, list[rec.StoredReferral]] = {}
        for ref in self.store.unpublished_referrals(now):
            by_user.setdefault(ref.user_id, []).append(ref)
        per_user(lambda refs: self._publish_user(refs, now), by_user.values(), self.concurrency)

    def _publish_user(self, refs: list[rec.StoredReferral], now: datetime) -> None:
        for ref in refs:
            if self.gate.closed:
                return
            self._publish(ref, now)

    def _publish(self, ref: rec.StoredReferral, now: datetime) -> None:
        if ref.active:
            key = f"publish:{ref.id}:{ref.content_hash}:{ref.plan_version}"
            outcome, new_hash = Outcome.PUBLISHED, ref.content_hash
        else:
            key = f"withdraw:{ref.id}:{ref.published_hash}:{ref.plan_version}"
            outcome, new_hash = Outcome.WITHDRAWN, None
        try:
            with self.gate.call():
                if ref.active:
                    self.switchboard.publish_referral(ref.user_id, _published(ref), key)
                else:
                    self.switchboard.withdraw_referral(ref.user_id, ref.id, key)
        except Exception as err:
            after = self.retries.after(err, ref.publish_attempts + 1, now)
            failed = after.outcome is Outcome.FAILED
            log.warning("referral %s for %s: %s failed: %s", ref.id, ref.user_id, outcome, err)
            self.store.finish_publication(
                ref.id,
                now,
                published_hash=ref.published_hash,
                outcome=Outcome.FAILED if failed else Outcome.RETRY,
                key=key,
                error=str(err),
                retry_at=after.retry_at,
                permanent=failed,
            )
            return
        log.info("referral %s for %s %s", ref.id, ref.user_id, outcome)
        self.store.finish_publication(
            ref.id,
            now,
            published_hash=new_hash,
            outcome=outcome,
            key=key,
            detail=f"{ref.reason}: {ref.start.isoformat()} - {ref.end.isoformat()}",
        )

    def check_lost(self, *, force: bool = False) -> list[str]:
        """Mark what the switchboard lost for publishing again; the referral ids.

        Every ``check_every`` (the first call at once, and with ``force``): the
        switchboard's referrals (``ListsReferrals``, one call) are compared with
        the referrals published and not yet ended; the missing ones are published
        again by the next ``publish_pending``. Users parked on 404 ``unknown_user``
        who are now in the switchboard's directory are tried again at once. A
        switchboard that cannot list referrals is not checked; a failed check is
        logged and tried again at the next interval.
        """
        now = self.clock.now()
        if not isinstance(self.switchboard, ListsReferrals):
            return []
        if not force and self._next_check is not None and now < self._next_check:
            return []
        self._next_check = now + self.check_every
        try:
            shown = self.switchboard.referral_ids()
        except CalrefError as err:
            log.warning("could not compare the switchboard's referrals with ours: %s", err)
            return []
        known = [u for u in self.store.parked_users(now) if u in shown]
        if known:
            log.info("the switchboard knows %s now; trying their actions again", ", ".join(known))
            self.store.unpark_actions(now, known)
        lost = [
            (user_id, ref_id)
            for user_id, ref_id in self.store.published_referrals(now)
            if user_id in shown and ref_id not in shown[user_id]
        ]
        if lost:
            users = sorted({u for u, _ in lost})
            log.warning(
                "the switchboard lost %s (of %s); publishing them again",
                plural(len(lost), "referral"),
                ", ".join(users[:10]) + (" ..." if len(users) > 10 else ""),
            )
            self.store.mark_unpublished([ref_id for _, ref_id in lost])
        return [ref_id for _, ref_id in lost]


def _published(ref: rec.StoredReferral) -> PublishedReferral:
    """What the switchboard is told about an active referral."""
    return PublishedReferral(
        id=ref.id,
        reason=ref.reason,
        message=ref.message,
        start=ref.start,
        end=ref.end,
        start_action=ref.start_action,
        end_action=ref.end_action,
    )
