"""Plain records the store hands out, and the JSON (de)serialisation of domain values.

The rest of the service never sees ORM rows: it gets these frozen dataclasses,
so sessions never leak across threads and tests can build them directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rules.model import (
    ActionStatus,
    CalendarEvent,
    Moment,
    OrganizerKind,
    PhoneAction,
    Profile,
    Response,
    ShowAs,
)

LIVE_STATUSES = (ActionStatus.PENDING, ActionStatus.SENDING)
#: what the stored error of an action parked on 404 ``unknown_user`` names (written by the
#: executor; the store and ``calref status`` look for it)
PARKED_MARK = "unknown_user"


class AuditKind(StrEnum):
    """What a line of the audit log is about. Members equal their stored strings."""

    ACTION = "action"  # a due phone action was carried out, or deliberately not
    REFERRAL = "referral"  # a referral was published to the switchboard or withdrawn
    PLAN = "plan"  # a re-plan moved or cancelled an action, or planning failed
    SOURCE = "source"  # a calendar source failed unexpectedly


class Outcome(StrEnum):
    """What happened, as the audit log and the executor's ``ActionEvent`` say it.

    Members equal their stored strings.
    """

    # a due action (``AuditKind.ACTION``)
    SENT = "sent"
    NOOP = "noop"  # action none: nothing to send
    MISSED = "missed"
    KEPT = "kept"  # a manual change was left alone
    RETRY = "retry"  # failed for now; tried again later (a publication too)
    PARKED = "parked"  # the switchboard does not know the user; tried again later
    FAILED = "failed"  # failed for good (a publication too)
    # a referral (``AuditKind.REFERRAL``)
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    # a re-plan (``AuditKind.PLAN``)
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    END_NOW = "end_now"
    ERROR = "error"  # planning failed (``PLAN``), or a source did (``SOURCE``)


@dataclass(frozen=True)
class StoredAction:
    """A planned phone action as stored, with its execution state."""

    id: int
    identity: str
    user_id: str
    referral_id: str
    generation: int
    moment: Moment
    ordinal: int
    due_at: datetime
    referral_start: datetime
    referral_end: datetime
    action: PhoneAction
    events: tuple[str, ...]
    rule: str
    status: ActionStatus
    revision: int
    idempotency_key: str
    plan_version: int
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    done_at: datetime | None
    result_version: int | None
    result_changed_by: str | None


@dataclass(frozen=True)
class StoredReferral:
    """A referral as stored: what should be published and what was."""

    id: str
    user_id: str
    generation: int
    start: datetime
    end: datetime
    reason: str
    message: str
    start_action: PhoneAction
    end_action: PhoneAction
    events: tuple[str, ...]
    active: bool
    content_hash: str
    published_hash: str | None
    publish_attempts: int
    publish_error: str | None
    next_attempt_at: datetime | None
    plan_version: int


@dataclass(frozen=True)
class SourceState:
    """One calendar source's sync bookkeeping."""

    id: str
    user_id: str
    state: str | None
    last_attempt: datetime | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int
    backoff_until: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    user_id: str
    kind: AuditKind
    outcome: Outcome
    action_id: int | None
    referral_id: str | None
    idempotency_key: str | None
    action: str | None
    detail: str


def idempotency_key(identity: str, revision: int) -> str:
    """The key sent with an action: its identity plus the revision of its content."""
    return f"{identity}/r{revision}"


def action_to_text(action: PhoneAction) -> str:
    return json.dumps(action.to_json(), sort_keys=True)


def action_from_text(text: str) -> PhoneAction:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"stored phone action is not an object: {text!r}")
    return PhoneAction.from_json({str(k): str(v) for k, v in data.items()})


def keys_to_text(keys: tuple[str, ...]) -> str:
    return json.dumps(list(keys))


def keys_from_text(text: str) -> tuple[str, ...]:
    return tuple(str(k) for k in json.loads(text))


def profiles_to_text(profiles: tuple[Profile, ...]) -> str:
    return json.dumps(
        [{"id": p.id, "name": p.name, "number": p.number, "tags": list(p.tags)} for p in profiles]
    )


def profiles_from_text(text: str) -> tuple[Profile, ...]:
    return tuple(
        Profile(id=p["id"], name=p["name"], number=p.get("number"), tags=tuple(p.get("tags", ())))
        for p in json.loads(text)
    )


def _moment_to_json(value: datetime | date) -> dict[str, str]:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return {"date": value.isoformat()}


def _moment_from_json(data: dict[str, str]) -> datetime | date:
    if "datetime" in data:
        return datetime.fromisoformat(data["datetime"])
    return date.fromisoformat(data["date"])


def event_to_text(event: CalendarEvent) -> str:
    data: dict[str, Any] = {
        "uid": event.uid,
        "start": _moment_to_json(event.start),
        "end": _moment_to_json(event.end),
        "subject": event.subject,
        "recurrence_id": event.recurrence_id,
        "show_as": event.show_as.value,
        "response": event.response.value,
        "cancelled": event.cancelled,
        "private": event.private,
        "categories": list(event.categories),
        "organizer_kind": event.organizer_kind.value,
        "organizer": event.organizer,
        "source": event.source,
        "key": event.key,
    }
    return json.dumps(data, sort_keys=True)


def event_from_text(text: str) -> CalendarEvent:
    data = json.loads(text)
    return CalendarEvent(
        uid=data["uid"],
        start=_moment_from_json(data["start"]),
        end=_moment_from_json(data["end"]),
        subject=data["subject"],
        recurrence_id=data["recurrence_id"],
        show_as=ShowAs(data["show_as"]),
        response=Response(data["response"]),
        cancelled=data["cancelled"],
        private=data["private"],
        categories=tuple(data["categories"]),
        organizer_kind=OrganizerKind(data["organizer_kind"]),
        organizer=data["organizer"],
        source=data["source"],
        key=data["key"],
    )
