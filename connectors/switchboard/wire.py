"""The contract's JSON shapes: encoding and strict decoding of users, phones and referrals.

Shared by the HTTP adapter (decoding the gateway's answers) and the simulator
(encoding its own), so both sides speak the one shape documented in
``docs/switchboard-api.yaml``. Times are ISO 8601 in UTC with a ``Z`` suffix.
Decoding errors are ``WireError`` naming the field path and the problem.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rules.errors import WireError
from rules.model import ActionKind, PhoneAction, Profile

from .base import PhoneMode, PhoneState, PublishedReferral, SwitchboardUser

Json = dict[str, Any]


def format_time(value: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with a ``Z`` suffix."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} cannot be sent; give a UTC offset")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: object, where: str) -> datetime:
    """An ISO 8601 time with an offset (``Z`` or ``+01:00``), returned in UTC."""
    if not isinstance(value, str):
        raise WireError(f"{where}: expected an ISO 8601 time string, got {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WireError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise WireError(f"{where}: {value!r} has no UTC offset; times must be aware")
    return parsed.astimezone(UTC)


def action_from_json(data: object, where: str) -> PhoneAction:
    """A phone action from ``{"type": ..., "number": ..., "profile": ...}``."""
    obj = _object(data, where)
    kind_text = _string(obj, "type", where)
    try:
        kind = ActionKind(kind_text)
    except ValueError:
        allowed = ", ".join(k.value for k in ActionKind)
        raise WireError(f"{where}.type: {kind_text!r} is not one of {allowed}") from None
    number = _opt_string(obj, "number", where)
    profile = _opt_string(obj, "profile", where)
    try:
        return PhoneAction(kind, number=number, profile=profile)
    except ValueError as err:
        raise WireError(f"{where}: {err}") from None


def profile_to_json(profile: Profile) -> Json:
    return {
        "id": profile.id,
        "name": profile.name,
        "number": profile.number,
        "tags": list(profile.tags),
    }


def profile_from_json(data: object, where: str) -> Profile:
    obj = _object(data, where)
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise WireError(f"{where}.tags: expected a list of strings")
    return Profile(
        id=_string(obj, "id", where),
        name=_string(obj, "name", where),
        number=_opt_string(obj, "number", where),
        tags=tuple(tags),
    )


def phone_to_json(phone: PhoneState) -> Json:
    return {
        "mode": phone.mode.value,
        "active_profile": phone.active_profile,
        "forward_number": phone.forward_number,
        "version": phone.version,
        "changed_by": phone.changed_by,
        "changed_at": None if phone.changed_at is None else format_time(phone.changed_at),
    }


def phone_from_json(data: object, where: str) -> PhoneState:
    obj = _object(data, where)
    mode_text = _string(obj, "mode", where)
    try:
        mode = PhoneMode(mode_text)
    except ValueError:
        allowed = ", ".join(m.value for m in PhoneMode)
        raise WireError(f"{where}.mode: {mode_text!r} is not one of {allowed}") from None
    version = obj.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise WireError(f"{where}.version: expected a non-negative integer")
    changed_at = obj.get("changed_at")
    return PhoneState(
        mode=mode,
        active_profile=_string(obj, "active_profile", where),
        forward_number=_opt_string(obj, "forward_number", where),
        version=version,
        changed_by=_opt_string(obj, "changed_by", where) or "",
        changed_at=None if changed_at is None else parse_time(changed_at, f"{where}.changed_at"),
    )


def referral_to_json(referral: PublishedReferral) -> Json:
    return {
        "id": referral.id,
        "reason": referral.reason,
        "message": referral.message,
        "start": format_time(referral.start),
        "end": format_time(referral.end),
        "start_action": referral.start_action.to_json(),
        "end_action": referral.end_action.to_json(),
    }


def referral_from_json(data: object, where: str, *, referral_id: str | None = None) -> Json:
    """The fields of a referral body, checked; ``id`` comes from the URL when given."""
    obj = _object(data, where)
    rid = referral_id if referral_id is not None else _string(obj, "id", where)
    start = parse_time(obj.get("start"), f"{where}.start")
    end = parse_time(obj.get("end"), f"{where}.end")
    if end <= start:
        raise WireError(f"{where}: end {format_time(end)} is not after start {format_time(start)}")
    return {
        "id": rid,
        "reason": _string(obj, "reason", where),
        "message": _opt_string(obj, "message", where) or "",
        "start": start,
        "end": end,
        "start_action": action_from_json(obj.get("start_action"), f"{where}.start_action"),
        "end_action": action_from_json(obj.get("end_action"), f"{where}.end_action"),
    }


def published_from_json(data: object, where: str) -> PublishedReferral:
    return PublishedReferral(**referral_from_json(data, where))


def user_to_json(user: SwitchboardUser, referrals: list[PublishedReferral]) -> Json:
    return {
        "id": user.id,
        "profiles": [profile_to_json(p) for p in user.profiles],
        "active_profile": user.phone.active_profile,
        "phone": phone_to_json(user.phone),
        "referrals": [referral_to_json(r) for r in referrals],
    }


def user_from_json(data: object, where: str) -> SwitchboardUser:
    obj = _object(data, where)
    profiles = obj.get("profiles")
    if not isinstance(profiles, list):
        raise WireError(f"{where}.profiles: expected a list")
    return SwitchboardUser(
        id=_string(obj, "id", where),
        profiles=tuple(
            profile_from_json(p, f"{where}.profiles[{i}]") for i, p in enumerate(profiles)
        ),
        phone=phone_from_json(obj.get("phone"), f"{where}.phone"),
    )


def referrals_of_user_json(data: object, where: str) -> list[PublishedReferral]:
    obj = _object(data, where)
    items = obj.get("referrals", [])
    if not isinstance(items, list):
        raise WireError(f"{where}.referrals: expected a list")
    return [published_from_json(r, f"{where}.referrals[{i}]") for i, r in enumerate(items)]


def _object(data: object, where: str) -> Json:
    if not isinstance(data, dict):
        raise WireError(f"{where}: expected an object, got {_kind(data)}")
    return data


def _string(obj: Json, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{where}.{key}: expected a non-empty string, got {_kind(value)}")
    return value


def _opt_string(obj: Json, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WireError(f"{where}.{key}: expected a string or null, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if value == "":
        return "an empty string"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
