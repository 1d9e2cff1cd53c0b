"""Phone actions: the rule-file notation, forward-number normalisation and dialling policy.

A forward target is written by people in many shapes (``070-123 45 67``,
``+46 70 123 45 67``, ``0046701234567``, ``4711``). ``normalize_number`` turns
it into what the switchboard dials: internal extensions as they are, external
numbers behind the trunk prefix. ``check_forward`` adds the organisation's
policy (no premium-rate numbers, no foreign numbers unless allowed, an optional
allow-list). ``validate_for_user`` checks an action against one user's profiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

from rules.errors import InvalidActionError
from rules.model import ActionKind, PhoneAction, User

SIMPLE_ACTIONS = ("none", "follow_profile", "open", "close")
ACTION_NOTATION = "none, follow_profile, open, close, forward:NUMBER, profile_switch:PROFILE"
_SEPARATORS = str.maketrans("", "", " \t-.()/")
_NATIONAL_MIN_DIGITS = 7
_NATIONAL_MAX_DIGITS = 13
_E164_MAX_DIGITS = 15


@dataclass(frozen=True, slots=True)
class ForwardPolicy:
    """Which numbers a forward may dial, and how to dial them.

    ``allowed_prefixes`` (when non-empty) limits external numbers to those
    starting with one of the prefixes, written nationally (``070``) or, for
    foreign numbers, with a plus (``+4420``). Extensions are always allowed.
    """

    trunk_prefix: str = "0"
    country_code: str = "46"
    international_prefix: str = "00"
    allow_international: bool = False
    denied_prefixes: tuple[str, ...] = ("0900", "0939", "0944", "099")
    allowed_prefixes: tuple[str, ...] = ()
    extension_max_digits: int = 6


class NumberKind(Enum):
    """What kind of number a forward target is."""

    EXTENSION = "extension"
    NATIONAL = "national"
    FOREIGN = "foreign"


@dataclass(frozen=True, slots=True)
class DialNumber:
    """A classified forward target: ``canonical`` is national (``070…``) or ``+CC…`` form."""

    kind: NumberKind
    canonical: str
    dial: str


def _refuse(raw: str, why: str) -> InvalidActionError:
    return InvalidActionError(f"forward number {raw!r}: {why}", why=why)


def classify_number(raw: str, policy: ForwardPolicy) -> DialNumber:
    """Classify and normalise ``raw``; raise InvalidActionError when it is not a number."""
    text = raw.strip().translate(_SEPARATORS)
    if not text:
        raise _refuse(raw, "empty number")
    international: str | None = None
    if text.startswith("+"):
        international = text[1:]
    elif (
        text.isdigit()
        and policy.international_prefix
        and text.startswith(policy.international_prefix)
    ):
        international = text[len(policy.international_prefix) :]
    if international is not None:
        if not international.isdigit():
            raise _refuse(raw, "an international number may only contain digits after the +")
        if not 6 <= len(international) <= _E164_MAX_DIGITS:
            raise _refuse(raw, "wrong length for an international number")
        if international.startswith(policy.country_code):
            national = "0" + international[len(policy.country_code) :]
            return DialNumber(NumberKind.NATIONAL, national, policy.trunk_prefix + national)
        dial = policy.trunk_prefix + policy.international_prefix + international
        return DialNumber(NumberKind.FOREIGN, "+" + international, dial)
    if not text.isdigit():
        bad = next(c for c in text if not c.isdigit())
        raise _refuse(raw, f"contains {bad!r}; only digits, spaces, dashes and a leading +")
    if text.startswith("0"):
        if len(text) < _NATIONAL_MIN_DIGITS:
            raise _refuse(raw, "too short for a national number")
        if len(text) > _NATIONAL_MAX_DIGITS:
            raise _refuse(raw, "too long for a national number")
        return DialNumber(NumberKind.NATIONAL, text, policy.trunk_prefix + text)
    if len(text) <= policy.extension_max_digits:
        return DialNumber(NumberKind.EXTENSION, text, text)
    raise _refuse(
        raw,
        f"neither an extension (at most {policy.extension_max_digits} digits) "
        "nor a national number (starting with 0)",
    )


def normalize_number(raw: str, policy: ForwardPolicy) -> str:
    """The number as the switchboard dials it (extension as is, external behind the trunk)."""
    return classify_number(raw, policy).dial


@lru_cache(maxsize=4096)
def check_forward(raw: str, policy: ForwardPolicy) -> str:
    """Normalise ``raw`` and apply ``policy``; InvalidActionError (with ``why``) if refused."""
    number = classify_number(raw, policy)
    if number.kind is NumberKind.EXTENSION:
        return number.dial
    if number.kind is NumberKind.NATIONAL and number.canonical.startswith(policy.denied_prefixes):
        raise _refuse(raw, "premium-rate number")
    if number.kind is NumberKind.FOREIGN and not policy.allow_international:
        raise _refuse(raw, "international number")
    if policy.allowed_prefixes and not number.canonical.startswith(policy.allowed_prefixes):
        raise _refuse(raw, "not on the allow-list")
    return number.dial


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
        if not argument or not all(c.isdigit() or c in "+ -.()/" for c in argument):
            raise ValueError(f"forward needs a phone number, got {shown!r}")
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
