"""What a re-plan changes for one user: the ``PlanDiff`` the store writes in one transaction.

``sync.service.replan.diff_plan`` computes it (a pure function of the new plan
and the stored one); ``sync.store.plan.PlanStore.apply_diffs`` writes it. Plain
frozen records, so the store needs nothing from the service to write a re-plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rules.model import ActionStatus, Moment, PlannedAction, Referral

__all__ = ["ActionUpdate", "NewAction", "PlanDiff", "ReferralUpsert", "ReferralWithdrawal"]


@dataclass(frozen=True)
class ReferralUpsert:
    """A referral the plan wants, with its stable id and generation."""

    id: str
    generation: int
    referral: Referral
    content_hash: str


@dataclass(frozen=True)
class NewAction:
    """An action to insert."""

    identity: str
    referral_id: str
    generation: int
    moment: Moment
    ordinal: int
    planned: PlannedAction
    referral_end: datetime
    status: ActionStatus = ActionStatus.PENDING


@dataclass(frozen=True)
class ActionUpdate:
    """A change to a stored action; ``rearm`` sets it pending again with revision + 1."""

    id: int
    planned: PlannedAction
    referral_end: datetime
    rearm: bool
    due_at: datetime


@dataclass(frozen=True)
class ReferralWithdrawal:
    """A stored referral the plan no longer has; ``expired`` ones ended before the window."""

    id: str
    expired: bool


@dataclass
class PlanDiff:
    """Everything a re-plan changes for one user."""

    user: str
    upserts: list[ReferralUpsert] = field(default_factory=list)
    withdrawals: list[ReferralWithdrawal] = field(default_factory=list)
    new_actions: list[NewAction] = field(default_factory=list)
    updates: list[ActionUpdate] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)
    end_now: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.withdrawals or self.new_actions or self.cancels or self.end_now) and all(
            not u.rearm for u in self.updates
        )
