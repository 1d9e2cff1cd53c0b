"""The interface calref uses to talk to a switchboard (PBX and operator console).

Every call is a "set state" call keyed by an idempotency key, so repeating a
call after a crash or a timeout never changes the outcome. Errors are
``rules.errors.SwitchboardError``; ``rules.errors.is_retryable`` tells whether to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from rules.model import PhoneAction, Profile


class PhoneMode(StrEnum):
    """Where the phone sends calls right now."""

    OPEN = "open"  # calls ring the active profile
    CLOSED = "closed"  # no calls come through (operator or voicemail)
    FORWARDED = "forwarded"  # calls go to ``forward_number``


@dataclass(frozen=True)
class PhoneState:
    """The phone's state as the switchboard reports it.

    ``version`` increases on every change, whoever made it; ``changed_by`` is
    the client that made the last change (calref sends its own name), so the
    service can tell a manual change from its own.
    """

    mode: PhoneMode
    active_profile: str
    forward_number: str | None = None
    version: int = 0
    changed_by: str = ""
    changed_at: datetime | None = None


@dataclass(frozen=True)
class SwitchboardUser:
    """A user as the switchboard knows them: profiles, the active one, and the phone."""

    id: str
    profiles: tuple[Profile, ...]
    phone: PhoneState


@dataclass(frozen=True)
class PublishedReferral:
    """A referral as published to the switchboard under calref's own ``id``."""

    id: str
    reason: str
    message: str
    start: datetime
    end: datetime
    start_action: PhoneAction
    end_action: PhoneAction


class Switchboard(Protocol):
    """What calref needs from a switchboard."""

    def list_users(self) -> list[SwitchboardUser]: ...

    def get_user(self, user_id: str) -> SwitchboardUser: ...

    def publish_referral(
        self, user_id: str, referral: PublishedReferral, idempotency_key: str
    ) -> None:
        """Create or replace the referral ``referral.id`` (information only, no phone change)."""
        ...

    def withdraw_referral(self, user_id: str, referral_id: str, idempotency_key: str) -> None: ...

    def apply_action(self, user_id: str, action: PhoneAction, idempotency_key: str) -> PhoneState:
        """Carry out ``action`` now and return the resulting phone state."""
        ...


@runtime_checkable
class ListsReferrals(Protocol):
    """A switchboard that can show which referrals it has (the HTTP adapter, the simulator).

    The service compares this with what it published, and publishes again what
    the switchboard lost (a gateway restarted without keeping its referrals).
    """

    def referral_ids(self) -> dict[str, set[str]]:
        """Every user's referral ids as the switchboard shows them now."""
        ...
