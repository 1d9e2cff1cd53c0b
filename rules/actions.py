"""Phone actions: the rule-file notation and per-user checks.

``parse_action`` reads the rule-file notation (``close``, ``forward:070…``,
``{profile_switch: mobile}``); ``validate_for_user`` checks an action against
one user's profiles and, for a forward, the dialling policy of
``rules.dialling``, the same check ``#fwd:`` tags go through (``ForwardPolicy``,
``check_forward`` and ``normalize_number`` are re-exported for older callers).
"""

from __future__ import annotations

from typing import Any

from rules.dialling import NUMBER_CHARS, ForwardPolicy, check_forward, normalize_number
from rules.errors import InvalidActionError
from rules.model import ActionKind, PhoneAction, User

SIMPLE_ACTIONS = ("none", "follow_profile", "open", "close")
ACTION_NOTATION = "none, follow_profile, open, close, forward:NUMBER, profile_switch:PROFILE"


def parse_action(spec: Any) -> PhoneAction:
    """Read an action in rule-file notation; raise ValueError with a clear message if bad.

    Accepts ``none``, ``follow_profile``, ``open``, ``close``, ``forward:NUMBER``,
    ``profile_switch:PROFILE``, or a one-key mapping ``{forward: NUMBER}`` /
    ``{profile_switch: PROFILE}``. Forward numbers are kept as written; they are
    checked against the dialling policy with ``validate_for_user``.
    """
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ValueError(
                f"an action mapping has exactly one key (forward or profile_switch), got {spec!r}"
            )
        ((key, value),) = spec.items()
        if key not in ("forward", "profile_switch"):
            raise ValueError(f"unknown action {key!r} (expected one of {ACTION_NOTATION})")
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f'write the {key} value in quotes (e.g. {key}: "0701234567"), '
                f"otherwise a leading 0 is lost; got {value!r}"
            )
        if not isinstance(value, str):
            raise ValueError(f"{key} needs a text value, got {value!r}")
        return _with_argument(key, value, f"{key}: {value}")
    if not isinstance(spec, str):
        raise ValueError(f"an action is text or a mapping, got {spec!r}")
    text = spec.strip()
    if text.lower() in SIMPLE_ACTIONS:
        return PhoneAction(ActionKind(text.lower()))
    kind, sep, argument = text.partition(":")
    if sep and kind.strip().lower() in ("forward", "profile_switch"):
        return _with_argument(kind.strip().lower(), argument, spec)
    raise ValueError(f"unknown action {spec!r} (expected one of {ACTION_NOTATION})")


def _with_argument(kind: str, argument: str, shown: str) -> PhoneAction:
    argument = argument.strip()
    if kind == "forward":
        if not argument or not set(argument) <= NUMBER_CHARS:
            raise ValueError(
                f"forward needs a phone number (digits 0-9, spaces, -, ( ) and a leading +), "
                f"got {shown!r}"
            )
        return PhoneAction.forward(argument)
    if not argument:
        raise ValueError(f"profile_switch needs a profile name, got {shown!r}")
    return PhoneAction.profile_switch(argument)


def format_action(action: PhoneAction) -> str:
    """The rule-file notation of ``action`` (inverse of ``parse_action``)."""
    if action.number is not None:
        return f"forward:{action.number}"
    if action.profile is not None:
        return f"profile_switch:{action.profile}"
    return action.kind.value


def resolve_profile(user: User, name: str) -> str | None:
    """The id of the user's profile named ``name`` (id, then name or tag, case-insensitive)."""
    if user.profile(name) is not None:
        return name
    wanted = name.casefold()
    for profile in user.profiles:
        if profile.id.casefold() == wanted or profile.name.casefold() == wanted:
            return profile.id
        if any(tag.casefold() == wanted for tag in profile.tags):
            return profile.id
    return None


def validate_for_user(action: PhoneAction, user: User, policy: ForwardPolicy) -> PhoneAction:
    """Check ``action`` for ``user``: a known profile, a dialable number. Returns it normalised.

    A forward number must be as written by a person (not already normalised).
    """
    if action.kind is ActionKind.PROFILE_SWITCH:
        assert action.profile is not None
        profile_id = resolve_profile(user, action.profile)
        if profile_id is None:
            known = ", ".join(p.id for p in user.profiles) or "none"
            raise InvalidActionError(
                f"user {user.id!r} has no profile {action.profile!r} (profiles: {known})",
                why=f"unknown profile {action.profile!r}",
            )
        return action if profile_id == action.profile else PhoneAction.profile_switch(profile_id)
    if action.kind is ActionKind.FORWARD:
        assert action.number is not None
        return PhoneAction.forward(check_forward(action.number, policy))
    return action


__all__ = [
    "ACTION_NOTATION",
    "SIMPLE_ACTIONS",
    "ForwardPolicy",
    "check_forward",
    "format_action",
    "normalize_number",
    "parse_action",
    "resolve_profile",
    "validate_for_user",
]
