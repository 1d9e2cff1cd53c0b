"""What ``calref status`` shows: per user, the current referral, the phone, what comes next,
each calendar source's health, any actions that failed for good or wait for a retry (a user
the switchboard does not know is shown as PARKED); and which ``calref run`` process leads the
store (holds its lease)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from connectors.switchboard.base import PhoneState
from rules.model import ActionStatus
from sync.store import Store
from sync.store import records as rec
from sync.store.lease import Lease


@dataclass(frozen=True)
class ServiceStatus:
    """The store-wide part of the status: the leader lease as stored (None: never taken)."""

    lease: Lease | None


def service_status(store: Store) -> ServiceStatus:
    """Which process holds (or last held) the store's lease, from the store alone."""
    return ServiceStatus(lease=store.lease())


@dataclass(frozen=True)
class UserStatus:
    """One user's status, made of the store's own records."""

    user_id: str
    name: str
    current_referral: rec.StoredReferral | None
    phone: PhoneState | None
    phone_observed_at: datetime | None
    next_action: rec.StoredAction | None
    sources: tuple[rec.SourceState, ...]
    failed_actions: tuple[rec.StoredAction, ...]
    failed_referrals: tuple[rec.StoredReferral, ...]


def status_report(store: Store, now: datetime) -> list[UserStatus]:
    """The status of every active user at ``now``, from the store alone (no network)."""
    sources = store.sources()
    report: list[UserStatus] = []
    for user in store.users():
        referrals = store.referrals(user.id)
        current = next((r for r in referrals if r.active and r.start <= now < r.end), None)
        actions = store.actions(user.id)
        live = [a for a in actions if a.status in rec.LIVE_STATUSES]
        phone = store.phone_state(user.id)
        report.append(
            UserStatus(
                user_id=user.id,
                name=user.name,
                current_referral=current,
                phone=None if phone is None else phone[0],
                phone_observed_at=None if phone is None else phone[1],
                next_action=min(
                    live, key=lambda a: (a.next_attempt_at or a.due_at, a.id), default=None
                ),
                sources=tuple(s for s in sources if s.user_id == user.id),
                failed_actions=tuple(a for a in actions if a.status == ActionStatus.FAILED),
                failed_referrals=tuple(r for r in referrals if r.publish_error),
            )
        )
    return report


def format_status(
    report: list[UserStatus],
    now: datetime,
    tz: tzinfo = UTC,
    service: ServiceStatus | None = None,
) -> str:
    """A plain-text rendering of ``status_report`` (and ``service``), times shown in ``tz``."""

    def at(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(tz).strftime(fmt)

    lines: list[str] = [f"calref status at {at(now)} ({getattr(tz, 'key', tz)})"]
    if service is not None:
        lines.append(_lease_line(service.lease, now, at))
    for u in report:
        lines.append(f"{u.name} ({u.user_id})")
        if u.current_referral:
            r = u.current_referral
            lines.append(f"  referral: {r.reason} until {at(r.end)} ({r.message})")
        else:
            lines.append("  referral: none")
        if u.phone:
            p = u.phone
            target = f" to {p.forward_number}" if p.forward_number else ""
            lines.append(
                f"  phone: {p.mode.value}{target}, profile {p.active_profile} "
                f"(v{p.version}, by {p.changed_by or '?'})"
            )
        else:
            lines.append("  phone: not seen yet")
        if u.next_action:
            a = u.next_action
            line = f"  next: {a.moment} {a.action} at {at(a.due_at)}"
            if a.last_error and a.next_attempt_at:
                parked = rec.PARKED_MARK in a.last_error
                label = "PARKED: the switchboard does not know this user" if parked else "retrying"
                line += f"; {label}, next try {at(a.next_attempt_at)} ({a.last_error})"
            lines.append(line)
        for s in u.sources:
            ok = at(s.last_success) if s.last_success else "never"
            line = f"  source {s.id}: last success {ok}"
            if s.last_error:
                line += f"; last error: {s.last_error}"
            if s.backoff_until and s.backoff_until > now:
                line += f"; backing off until {at(s.backoff_until, '%H:%M:%S')}"
            lines.append(line)
        for a in u.failed_actions:
            lines.append(f"  FAILED {a.moment} {a.action} due {at(a.due_at)}: {a.last_error}")
        for r in u.failed_referrals:
            lines.append(f"  FAILED to publish referral {r.id}: {r.publish_error}")
    return "\n".join(lines)


def _lease_line(lease: Lease | None, now: datetime, at: Callable[..., str]) -> str:
    if lease is None:
        return "leader: none (no calref run has held this store yet)"
    seconds = "%Y-%m-%d %H:%M:%S"
    if lease.live(now):
        return (
            f"leader: {lease.holder} since {at(lease.acquired_at, seconds)}, "
            f"lease renewed {at(lease.renewed_at, seconds)}, until {at(lease.expires_at, seconds)}"
        )
    return (
        f"leader: none (last held by {lease.holder}, "
        f"released or lapsed at {at(lease.expires_at, seconds)})"
    )
