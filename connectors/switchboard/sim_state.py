"""An in-memory switchboard with the phone semantics of DOMAIN.md: the simulator's core.

``SimulatedSwitchboard`` implements the ``Switchboard`` protocol without any
I/O, so other tests can use it as an in-process fake; ``simulator.py`` serves
the same object over HTTP. It keeps per-user profiles, the active profile, the
phone (open / closed / forwarded, with version, changed_by, changed_at) and
published referrals; replays repeated idempotency keys; logs every command;
answers "where would a call ring now" (``route``); and can inject faults.
Its time comes from a ``connectors.clock.Clock`` (the system clock by default,
a ``VirtualClock`` in tests and the demo). All methods are thread-safe.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from connectors.clock import Clock, SystemClock
from rules.errors import CalrefError
from rules.model import ActionKind, PhoneAction, Profile, User

from .base import PhoneMode, PhoneState, PublishedReferral, SwitchboardUser
from .errors import (
    IdempotencyConflictError,
    RejectedActionError,
    SwitchboardRejected,
    UnknownUserError,
)
from .sim_faults import Faults, InjectedFault
from .wire import format_time

log = logging.getLogger(__name__)

T = TypeVar("T")

NUMBER = re.compile(r"\+?[0-9]{2,20}")


@dataclass(frozen=True)
class Route:
    """Where a call to the user would ring right now, and why."""

    target: str
    profile: str
    mode: PhoneMode
    why: str

    def to_json(self) -> dict[str, str]:
        return {"target": self.target, "profile": self.profile, "mode": self.mode, "why": self.why}


@dataclass(frozen=True)
class CommandRecord:
    """One command the switchboard received: a phone action or a referral operation."""

    seq: int
    at: datetime
    user: str
    op: str  # "action", "publish_referral" or "withdraw_referral"
    detail: str  # the action ("forward 0701234567") or the referral id
    idempotency_key: str
    client: str
    replayed: bool = False
    warning: str | None = None
    error: str | None = None  # the error code when the command failed

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "user": self.user,
            "op": self.op,
            "detail": self.detail,
            "idempotency_key": self.idempotency_key,
            "client": self.client,
            "replayed": self.replayed,
            "warning": self.warning,
            "error": self.error,
        }


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A command's result, and whether it was replayed from an earlier identical call."""

    value: T
    replayed: bool


@dataclass
class _UserState:
    profiles: tuple[Profile, ...]
    phone: PhoneState
    referrals: dict[str, PublishedReferral]
    extension: str = ""


@dataclass(frozen=True)
class _Remembered:
    fingerprint: Hashable
    value: Any
    at: datetime


class SimulatedSwitchboard:
    """An in-memory switchboard seeded from ``User``s: first profile active, phone open."""

    def __init__(
        self,
        users: Iterable[User],
        *,
        clock: Clock | None = None,
        closed_target: str = "operator",
        idempotency_ttl: timedelta = timedelta(hours=24),
        faults: Faults | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._closed_target = closed_target
        self._ttl = idempotency_ttl
        self.faults = faults or Faults()
        self._lock = threading.RLock()
        self._users: dict[str, _UserState] = {}
        self._keys: dict[str, _Remembered] = {}
        self._log: list[CommandRecord] = []
        for user in users:
            if user.id in self._users:
                raise CalrefError(f"simulator: user {user.id!r} is listed twice")
            profiles = user.profiles or (Profile("extension", "Extension", user.extension),)
            phone = PhoneState(mode=PhoneMode.OPEN, active_profile=profiles[0].id)
            self._users[user.id] = _UserState(profiles, phone, {}, user.extension)

    # -- the Switchboard protocol ------------------------------------------------------

    def list_users(self) -> list[SwitchboardUser]:
        self._maybe_fail("list_users", mutating=False)
        with self._lock:
            return [self._snapshot(uid) for uid in self._users]

    def get_user(self, user_id: str) -> SwitchboardUser:
        self._maybe_fail(f"get_user {user_id}", mutating=False)
        with self._lock:
            return self._snapshot(user_id)

    def publish_referral(
        self,
        user_id: str,
        referral: PublishedReferral,
        idempotency_key: str,
        *,
        client: str = "calref",
    ) -> None:
        self.publish(user_id, referral, idempotency_key, client=client)

    def withdraw_referral(
        self, user_id: str, referral_id: str, idempotency_key: str, *, client: str = "calref"
    ) -> None:
        self.withdraw(user_id, referral_id, idempotency_key, client=client)

    def apply_action(
        self, user_id: str, action: PhoneAction, idempotency_key: str, *, client: str = "calref"
    ) -> PhoneState:
        return self.apply(user_id, action, idempotency_key, client=client).value

    # -- the same commands, telling whether the answer was replayed ---------------------

    def apply(
        self, user_id: str, action: PhoneAction, idempotency_key: str, *, client: str = "calref"
    ) -> Outcome[PhoneState]:
        """Carry out ``action`` now (or replay the answer stored under the key)."""
        fingerprint = ("action", user_id, str(action), client)

        def run(state: _UserState) -> tuple[PhoneState, str | None]:
            self._check_action(user_id, state, action)
            if action.kind is ActionKind.NONE:
                warning = "action none changes nothing and should not be sent"
                log.warning("protocol warning: %s sent %s for %s", client, warning, user_id)
                return state.phone, warning
            state.phone = self._next_phone(state, action, client)
            return state.phone, None

        return self._command(
            "action", user_id, str(action), idempotency_key, client, fingerprint, run
        )

    def publish(
        self,
        user_id: str,
        referral: PublishedReferral,
        idempotency_key: str,
        *,
        client: str = "calref",
    ) -> Outcome[PublishedReferral]:
        """Create or replace the referral ``referral.id``; the phone is not touched."""
        fingerprint = ("publish_referral", user_id, referral, client)

        def run(state: _UserState) -> tuple[PublishedReferral, str | None]:
            self._check_referral(user_id, state, referral)
            state.referrals[referral.id] = referral
            return referral, None

        return self._command(
            "publish_referral", user_id, referral.id, idempotency_key, client, fingerprint, run
        )

    def withdraw(
        self, user_id: str, referral_id: str, idempotency_key: str, *, client: str = "calref"
    ) -> Outcome[bool]:
        """Remove the referral; ``value`` tells whether it existed (no error when it did not)."""
        fingerprint = ("withdraw_referral", user_id, referral_id, client)

        def run(state: _UserState) -> tuple[bool, str | None]:
            return state.referrals.pop(referral_id, None) is not None, None

        return self._command(
            "withdraw_referral", user_id, referral_id, idempotency_key, client, fingerprint, run
        )

    # -- helpers for tests and the HTTP app ---------------------------------------------

    def manual_change(
        self, user_id: str, action: PhoneAction, *, client: str = "user"
    ) -> PhoneState:
        """A change made by someone else (the user, the mobile app), with a fresh key."""
        return self.apply_action(user_id, action, f"manual-{uuid.uuid4()}", client=client)

    def phone(self, user_id: str) -> PhoneState:
        with self._lock:
            return self._user(user_id).phone

    def referrals(self, user_id: str) -> list[PublishedReferral]:
        """The user's published referrals, by start time."""
        with self._lock:
            items = list(self._user(user_id).referrals.values())
        return sorted(items, key=lambda r: (r.start, r.id))

    def referral_ids(self) -> dict[str, set[str]]:
        """Every user's referral ids (``ListsReferrals``)."""
        self._maybe_fail("referral_ids", mutating=False)
        with self._lock:
            return {uid: set(state.referrals) for uid, state in self._users.items()}

    def route(self, user_id: str) -> Route:
        """Where a call to ``user_id`` would ring right now, and why."""
        with self._lock:
            state = self._user(user_id)
            phone = state.phone
            profile = self._profile(state, phone.active_profile)
            extension = state.extension
        name = profile.name if profile else phone.active_profile
        if phone.mode is PhoneMode.FORWARDED and phone.forward_number:
            why = f"phone forwarded to {phone.forward_number}"
            return Route(phone.forward_number, phone.active_profile, phone.mode, why)
        if phone.mode is PhoneMode.CLOSED:
            why = f"phone closed: callers reach the {self._closed_target}"
            return Route(self._closed_target, phone.active_profile, phone.mode, why)
        # A profile without a number of its own (the desk phone) rings the extension.
        target = (profile.number if profile else None) or extension or phone.active_profile
        why = f"phone open, active profile {name}"
        return Route(target, phone.active_profile, phone.mode, why)

    def log(self) -> list[CommandRecord]:
        """Every command received, in order (replays and failures included)."""
        with self._lock:
            return list(self._log)

    def user_ids(self) -> list[str]:
        with self._lock:
            return list(self._users)

    # -- internals ----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.tzinfo is None or now.utcoffset() is None:
            raise CalrefError("simulator: the clock returned a naive datetime; it must be aware")
        return now.astimezone(UTC)

    def _maybe_fail(self, call: str, *, mutating: bool) -> str | None:
        fault = self.faults.draw(mutating=mutating)
        if fault == "fail":
            raise self.faults.error(call)
        return fault

    def _command(
        self,
        op: str,
        user_id: str,
        detail: str,
        key: str,
        client: str,
        fingerprint: Hashable,
        run: Callable[[_UserState], tuple[T, str | None]],
    ) -> Outcome[T]:
        call = f"{op} {user_id} {detail}"
        if not key:
            raise SwitchboardRejected(f"{call}: an idempotency key is required")
        with self._lock:
            now = self._now()
            record = CommandRecord(len(self._log) + 1, now, user_id, op, detail, key, client)
            try:
                fault = self._maybe_fail(call, mutating=True)
            except InjectedFault as err:
                self._log.append(replace(record, error=err.code))
                raise
            try:
                remembered = self._remembered(key, now)
                if remembered is not None:
                    if remembered.fingerprint != fingerprint:
                        raise IdempotencyConflictError(
                            f"{call}: idempotency key {key!r} was already used for another request"
                        )
                    self._log.append(replace(record, replayed=True))
                    outcome = Outcome(remembered.value, replayed=True)
                else:
                    value, warning = run(self._user(user_id))
                    self._keys[key] = _Remembered(fingerprint, value, now)
                    self._log.append(replace(record, warning=warning))
                    outcome = Outcome(value, replayed=False)
            except SwitchboardRejected as err:
                self._log.append(replace(record, error=err.code))
                raise
        if fault == "lose":
            raise self.faults.error(call, lost=True)
        return outcome

    def _remembered(self, key: str, now: datetime) -> _Remembered | None:
        while self._keys:
            oldest_key = next(iter(self._keys))
            if now - self._keys[oldest_key].at <= self._ttl:
                break
            del self._keys[oldest_key]
        return self._keys.get(key)

    def _user(self, user_id: str) -> _UserState:
        state = self._users.get(user_id)
        if state is None:
            raise UnknownUserError(f"switchboard has no user {user_id!r}")
        return state

    def _snapshot(self, user_id: str) -> SwitchboardUser:
        state = self._user(user_id)
        return SwitchboardUser(user_id, state.profiles, state.phone)

    @staticmethod
    def _profile(state: _UserState, profile_id: str) -> Profile | None:
        return next((p for p in state.profiles if p.id == profile_id), None)

    def _check_action(self, user_id: str, state: _UserState, action: PhoneAction) -> None:
        if action.kind is ActionKind.PROFILE_SWITCH:
            assert action.profile is not None
            if self._profile(state, action.profile) is None:
                known = ", ".join(p.id for p in state.profiles)
                raise RejectedActionError(
                    f"user {user_id}: profile_switch to unknown profile {action.profile!r} "
                    f"(known: {known})"
                )
        if action.kind is ActionKind.FORWARD:
            assert action.number is not None
            if not NUMBER.fullmatch(action.number):
                raise RejectedActionError(
                    f"user {user_id}: cannot forward to {action.number!r}: "
                    "a number is 2-20 digits, optionally after '+'"
                )

    def _check_referral(self, user_id: str, state: _UserState, referral: PublishedReferral) -> None:
        where = f"user {user_id}, referral {referral.id}"
        for name, value in (("start", referral.start), ("end", referral.end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise RejectedActionError(
                    f"{where}: {name} has no UTC offset", code="invalid_referral"
                )
        if referral.end <= referral.start:
            raise RejectedActionError(f"{where}: end is not after start", code="invalid_referral")
        if not referral.reason:
            raise RejectedActionError(f"{where}: reason is empty", code="invalid_referral")
        for action in (referral.start_action, referral.end_action):
            self._check_action(user_id, state, action)

    def _next_phone(self, state: _UserState, action: PhoneAction, client: str) -> PhoneState:
        phone = state.phone
        active = phone.active_profile
        if action.kind is ActionKind.CLOSE:
            mode, number = PhoneMode.CLOSED, None
        elif action.kind is ActionKind.FORWARD:
            mode, number = PhoneMode.FORWARDED, action.number
        elif action.kind is ActionKind.PROFILE_SWITCH:
            assert action.profile is not None
            mode, number, active = PhoneMode.OPEN, None, action.profile
        else:  # open, follow_profile: calls ring the profile active at this moment
            mode, number = PhoneMode.OPEN, None
        return PhoneState(
            mode=mode,
            active_profile=active,
            forward_number=number,
            version=phone.version + 1,
            changed_by=client,
            changed_at=self._now(),
        )
