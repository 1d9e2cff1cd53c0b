"""The store's tables (SQLAlchemy 2 declarative models); the migrations create exactly these.

The plan is the truth: ``planned_actions`` holds every phone action the service
must carry out, with its status, attempts and idempotency key; ``referrals`` holds
what should be (and what is) published to the switchboard; ``audit_log`` is
append-only. Times are stored as naive UTC (``UTCDateTime``) so SQLite and
PostgreSQL behave the same; the application only ever sees aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime stored as a naive UTC timestamp; naive input is refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store a naive datetime ({value.isoformat()})")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of the calref store."""


class UserRow(Base):
    """A user from the configuration, with the version of their current plan."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    extension: Mapped[str] = mapped_column(String(64))
    profiles: Mapped[str] = mapped_column(Text)  # JSON list of profiles
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    plan_version: Mapped[int] = mapped_column(Integer, default=0)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SourceRow(Base):
    """One calendar source's sync state: opaque state string, last success, errors, backoff."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    backoff_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EventRow(Base):
    """An accepted calendar event, per source, by ``CalendarEvent.key`` (JSON payload)."""

    __tablename__ = "events"

    source_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    data: Mapped[str] = mapped_column(Text)


class ReferralRow(Base):
    """A referral the plan wants (``active``) or withdrew, and what the switchboard has.

    ``content_hash`` is what should be published, ``published_hash`` what was
    (None: nothing published). The difference is the outbox.
    """

    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    start_action: Mapped[str] = mapped_column(Text)  # JSON PhoneAction
    end_action: Mapped[str] = mapped_column(Text)  # JSON PhoneAction
    events: Mapped[str] = mapped_column(Text)  # JSON list of event keys
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    published_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    publish_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    plan_version: Mapped[int] = mapped_column(Integer, default=0)


class ActionRow(Base):
    """A planned phone action: due time, action, cause, status, attempts, idempotency key."""

    __tablename__ = "planned_actions"
    __table_args__ = (
        UniqueConstraint("identity", name="uq_planned_actions_identity"),
        UniqueConstraint("idempotency_key", name="uq_planned_actions_idempotency_key"),
        Index("ix_planned_actions_status_due", "status", "due_at"),
        # The executor asks for one user's due actions; without this SQLite picks
        # the (status, due_at) index and scans every pending action of every user.
        Index("ix_planned_actions_user_status_due", "user_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(400))
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    referral_id: Mapped[str] = mapped_column(String(200), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    moment: Mapped[str] = mapped_column(String(16))
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    referral_start: Mapped[datetime] = mapped_column(UTCDateTime)
    referral_end: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(Text)  # JSON PhoneAction
    events: Mapped[str] = mapped_column(Text)  # JSON list of event keys
    rule: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(500))
    plan_version: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result_changed_by: Mapped[str | None] = mapped_column(Text, nullable=True)


class PhoneRow(Base):
    """The phone state last reported by the switchboard for a user."""

    __tablename__ = "phone_states"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    active_profile: Mapped[str] = mapped_column(Text)
    forward_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    changed_by: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """One line of the append-only audit log: what was done (or not) and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    action_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    referral_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(500), nullable=True)
    action: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class PushSubscriptionRow(Base):
    """A push subscription (Graph) or watch channel (Google) kept across restarts.

    ``client_state_ref`` is a salted fingerprint of Graph's shared clientState
    secret (never the secret); ``token`` is a Google channel's own random token
    (sensitive: it is never logged). ``address`` is where notifications go.
    """

    __tablename__ = "push_subscriptions"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # graph | google
    remote_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), index=True)
    account: Mapped[str] = mapped_column(String(320))  # mailbox / delegated user
    resource_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    address: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client_state_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    token: Mapped[str | None] = mapped_column(Text, nullable=True)


class ServiceLeaseRow(Base):
    """The leader lease: which ``calref run`` process may act on this store, and until when.

    One row (``name`` ``"service"``). Only the holder polls, plans, publishes and
    sends; another process waits as a standby until ``expires_at`` passes (or the
    holder releases it on a clean shutdown). See ``sync.store.lease``.
    """

    __tablename__ = "service_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(300))  # host:pid:random of the process
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
