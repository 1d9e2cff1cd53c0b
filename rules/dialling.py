"""Forward numbers: what people write, what the switchboard dials, and what the policy allows.

People write a forward target in many shapes (``070-123 45 67``,
``+46 (0)70 123 45 67``, ``0046701234567``, ``4711``). ``classify_number``
reads it strictly: only ASCII digits, spaces, ``-``, ``(``, ``)`` and one
leading ``+``; anything else (other scripts' digits, full-width digits,
letters, ``*``/``#``, pause characters, dots) is refused, never guessed at.
The result is what the switchboard dials: an extension as it is, an external
number behind the trunk prefix.

``check_forward`` then re-reads that dialled string the way the switchboard
and the public network will (trunk prefix, international prefix, country
code) and applies the policy to *that* reading, so no spelling can dial
something other than what was checked. The policy is an allow-list: the
longest matching prefix among ``allowed_prefixes`` and ``denied_prefixes``
decides (``090`` Umeå allowed, ``0900`` premium denied); a number matching
neither is refused. Short numbers are extensions only inside the
organisation's extension plan, and emergency and service numbers are never
extensions. docs/forwarding.md explains the defaults and how to widen them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from rules.errors import InvalidActionError

# PTS, Swedish numbering plan: geographic area codes (01-06, 08, 090-098) and the
# mobile series 070, 072, 073, 076, 079. 010 (location-independent, ordinary rate)
# and 020 (freephone) sit inside 01 and 02 and are allowed with them.
DEFAULT_ALLOWED_PREFIXES = (
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "08",
    "09",
    "070",
    "072",
    "073",
    "076",
    "079",
)
# premium rate (0900, 0939, 0944) and mass calling (099): longer than "09", so they win
PREMIUM_PREFIXES = ("0900", "0939", "0944", "099")
DEFAULT_DENIED_PREFIXES = PREMIUM_PREFIXES
DEFAULT_EXTENSIONS = ("2000-8999",)

# Short numbers that are never an extension, whatever the plan says (PTS: the 11-series
# and 90-series of short numbers, operator prefixes 95XX; emergency numbers that phones
# and gateways treat as emergency everywhere, 3GPP TS 22.101).
SERVICE_NUMBERS: tuple[tuple[str, str], ...] = (
    ("11", "11-series: 112, 113 13, 114 14, 1177, 116 xxx, 118 xxx"),
    ("90", "90-series short numbers"),
    ("95", "operator prefix 95XX"),
    ("000", "emergency number abroad"),
    ("911", "emergency number abroad"),
    ("999", "emergency number abroad"),
)
NUMBER_CHARS = frozenset("0123456789 -()+")  # all a forward number may contain, as written
_DIGITS = frozenset("0123456789")
_NATIONAL_PREFIX = "0"
_NATIONAL_MIN_DIGITS = 7
_NATIONAL_MAX_DIGITS = 13
_E164_MIN_DIGITS = 6
_E164_MAX_DIGITS = 15
MAX_WRITTEN_CHARS = 64  # a number as written, with its spaces and dashes


def parse_extension_range(text: str) -> tuple[str, str]:
    """``"2000-8999"`` → ``("2000", "8999")``; ``"4711"`` → ``("4711", "4711")``.

    ValueError unless both ends are ASCII digits of the same length (1-8), in order,
    and not starting with 0 (a leading 0 is the national prefix).
    """
    low, sep, high = text.partition("-")
    low, high = low.strip(), (high.strip() if sep else low.strip())
    if not (
        low
        and set(low) <= _DIGITS
        and set(high) <= _DIGITS
        and len(low) == len(high)
        and len(low) <= 8
    ):
        raise ValueError(
            f"bad extension range {text!r} (write FROM-TO with the same number of digits, "
            "e.g. 2000-8999, or one extension)"
        )
    if low.startswith("0"):
        raise ValueError(f"extension range {text!r} starts with 0 (the national prefix)")
    if low > high:
        raise ValueError(f"extension range {text!r} is backwards")
    return low, high


def canonical_prefix(prefix: str, country_code: str = "46") -> str:
    """A policy prefix in canonical form: ``070`` as is, ``+4670`` → ``070``, ``+47`` as is.

    ValueError unless it is ASCII digits with an optional leading ``+``.
    """
    text = prefix.replace(" ", "").replace("-", "")
    digits = text.removeprefix("+")
    if not (text == "+" or (digits and set(digits) <= _DIGITS)):
        raise ValueError(f"bad prefix {prefix!r} (digits, optionally after a +: 070, +47)")
    if text.startswith(("00", "+0")):
        raise ValueError(
            f"bad prefix {prefix!r}: write a foreign prefix with + and its country code (+47)"
        )
    if text.startswith("+"):
        if digits.startswith(country_code) and digits != country_code:
            return _NATIONAL_PREFIX + digits[len(country_code) :]
        return text if digits != country_code else _NATIONAL_PREFIX
    if not text.startswith(_NATIONAL_PREFIX):
        raise ValueError(
            f"bad prefix {prefix!r}: national prefixes start with 0 (070), foreign ones with +"
        )
    return text


@dataclass(frozen=True, slots=True)
class ForwardPolicy:
    """Which numbers a forward may dial, and how to dial them.

    ``allowed_prefixes`` and ``denied_prefixes`` are written nationally (``070``)
    or with a plus (``+47``; ``+`` alone means every foreign number); the longest
    match decides, a denied prefix winning a tie, and a number matching none is
    refused. Foreign numbers also need ``allow_international``. ``extensions``
    is the organisation's extension plan (ranges like ``2000-8999``).
    """

    trunk_prefix: str = "0"
    country_code: str = "46"
    international_prefix: str = "00"
    allow_international: bool = False
    denied_prefixes: tuple[str, ...] = DEFAULT_DENIED_PREFIXES
    allowed_prefixes: tuple[str, ...] = DEFAULT_ALLOWED_PREFIXES
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    _prefixes: tuple[tuple[str, bool], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _ranges: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        problems = policy_problems(self)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        # longest first; at equal length a denied prefix comes first and wins
        entries = {(canonical_prefix(p, self.country_code), True) for p in self.denied_prefixes}
        entries |= {(canonical_prefix(p, self.country_code), False) for p in self.allowed_prefixes}
        ordered = tuple(sorted(entries, key=lambda e: (-len(e[0]), not e[1])))
        object.__setattr__(self, "_prefixes", ordered)
        ranges = tuple(parse_extension_range(r) for r in self.extensions)
        object.__setattr__(self, "_ranges", ranges)

    def deciding_prefix(self, canonical: str) -> tuple[str, bool] | None:
        """The longest prefix of ``canonical`` in the lists and whether it is denied."""
        for prefix, denied in self._prefixes:
            if canonical.startswith(prefix):
                return prefix, denied
        return None

    def is_extension(self, digits: str) -> bool:
        """Whether ``digits`` is inside the extension plan (service numbers never are)."""
        if service_number(digits) is not None:
            return False
        return any(len(digits) == len(low) and low <= digits <= high for low, high in self._ranges)


def policy_problems(policy: ForwardPolicy) -> list[tuple[str, str]]:
    """``(field, message)`` for each setting of ``policy`` that cannot work."""
    problems: list[tuple[str, str]] = []
    for name in ("trunk_prefix", "country_code", "international_prefix"):
        value = getattr(policy, name)
        if not set(value) <= _DIGITS or len(value) > 3 or (name != "trunk_prefix" and not value):
            problems.append((name, f"{name} must be 1-3 ASCII digits, got {value!r}"))
    for name in ("allowed_prefixes", "denied_prefixes"):
        for prefix in getattr(policy, name):
            try:
                canonical_prefix(prefix, policy.country_code)
            except ValueError as err:
                problems.append((name, str(err)))
    for text in policy.extensions:
        try:
            low, _ = parse_extension_range(text)
        except ValueError as err:
            problems.append(("extensions", str(err)))
            continue
        if policy.trunk_prefix and low.startswith(policy.trunk_prefix):
            problems.append(
                ("extensions", f"extension range {text!r} starts with the trunk prefix")
            )
    return problems


def service_number(digits: str) -> str | None:
    """What ``digits`` is if it is an emergency or service short number, else None."""
    for prefix, what in SERVICE_NUMBERS:
        if digits.startswith(prefix):
            return what
    return None


class NumberKind(Enum):
    """What kind of number a forward target is."""

    EXTENSION = "extension"
    NATIONAL = "national"
    FOREIGN = "foreign"


@dataclass(frozen=True, slots=True)
class DialNumber:
    """A classified forward target.

    ``canonical`` is national (``0701234567``), foreign (``+4478…``) or the
    extension; ``dial`` is what the switchboard dials.
    """

    kind: NumberKind
    canonical: str
    dial: str


def _refuse(raw: str, why: str) -> InvalidActionError:
    return InvalidActionError(f"forward number {raw!r}: {why}", why=why)


def _digits_of(raw: str) -> tuple[bool, str]:
    """``(written with +, the digits)``; refuses characters outside the allow-list."""
    text = raw.strip(" ")
    for char in text:
        if char not in NUMBER_CHARS:
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise _refuse(raw, f"contains {shown}; only digits 0-9, spaces, -, ( ) and a leading +")
    plus = text.startswith("+")
    body = text[1:] if plus else text
    if "+" in body:
        raise _refuse(raw, "a + may only come first")
    depth = 0
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth not in (0, 1):
            raise _refuse(raw, "unbalanced parentheses")
    if depth:
        raise _refuse(raw, "unbalanced parentheses")
    if plus or body.startswith("00"):
        # "+46 (0)70 …": the national prefix in brackets is not dialled from abroad
        body = body.replace("(0)", "")
    digits = "".join(c for c in body if c in _DIGITS)
    if not digits:
        raise _refuse(raw, "empty number")
    return plus, digits


def _international(raw: str, digits: str, policy: ForwardPolicy) -> DialNumber:
    if not _E164_MIN_DIGITS <= len(digits) <= _E164_MAX_DIGITS:
        raise _refuse(raw, "wrong length for an international number")
    if digits.startswith(_NATIONAL_PREFIX):
        raise _refuse(raw, "a country code never starts with 0")
    if digits.startswith(policy.country_code):
        national = digits[len(policy.country_code) :]
        if national.startswith(_NATIONAL_PREFIX):
            raise _refuse(
                raw,
                f"a 0 after +{policy.country_code} is not dialled; write "
                f"+{policy.country_code} (0)70… or 070…",
            )
        return _national(raw, _NATIONAL_PREFIX + national, policy)
    dial = policy.trunk_prefix + policy.international_prefix + digits
    return DialNumber(NumberKind.FOREIGN, "+" + digits, dial)


def _national(raw: str, digits: str, policy: ForwardPolicy) -> DialNumber:
    if digits[1:2] == _NATIONAL_PREFIX:
        raise _refuse(raw, "a national number has one leading 0")
    if len(digits) < _NATIONAL_MIN_DIGITS:
        raise _refuse(raw, "too short for a national number")
    if len(digits) > _NATIONAL_MAX_DIGITS:
        raise _refuse(raw, "too long for a national number")
    return DialNumber(NumberKind.NATIONAL, digits, policy.trunk_prefix + digits)


def classify_number(raw: str, policy: ForwardPolicy) -> DialNumber:
    """Read ``raw`` strictly; InvalidActionError (with ``why``) when it is not a number.

    An extension is returned only when it is inside the extension plan; any
    other short number is refused here, emergency and service numbers always.
    """
    plus, digits = _digits_of(raw)
    if plus:
        return _international(raw, digits, policy)
    if digits.startswith(policy.international_prefix):
        return _international(raw, digits[len(policy.international_prefix) :], policy)
    if digits.startswith(_NATIONAL_PREFIX):
        return _national(raw, digits, policy)
    what = service_number(digits)
    if what is not None:
        raise _refuse(raw, f"emergency or service number ({what})")
    if not policy.is_extension(digits):
        plan = ", ".join(policy.extensions) or "none"
        raise _refuse(raw, f"not an extension of the organisation (extensions: {plan})")
    return DialNumber(NumberKind.EXTENSION, digits, digits)


def as_dialled(dial: str, policy: ForwardPolicy) -> DialNumber:
    """How the switchboard and the public network read the dialled string ``dial``.

    External numbers are the trunk prefix, then what the public network sees: the
    international prefix and a country code, or a national number. Anything else is
    an internal number. InvalidActionError if the string is not dialable.
    """
    trunk = policy.trunk_prefix
    if not dial or not set(dial) <= _DIGITS:
        raise _refuse(dial, "not a dialable digit string")
    if dial.startswith(trunk) and dial[len(trunk) :].startswith(_NATIONAL_PREFIX):
        network = dial[len(trunk) :]
        if network.startswith(policy.international_prefix):
            rest = network[len(policy.international_prefix) :]
            if rest.startswith(policy.country_code):
                national = _NATIONAL_PREFIX + rest[len(policy.country_code) :]
                return DialNumber(NumberKind.NATIONAL, national, dial)
            return DialNumber(NumberKind.FOREIGN, "+" + rest, dial)
        return DialNumber(NumberKind.NATIONAL, network, dial)
    return DialNumber(NumberKind.EXTENSION, dial, dial)


def normalize_number(raw: str, policy: ForwardPolicy) -> str:
    """The number as the switchboard dials it (syntax only; ``check_forward`` adds the policy)."""
    return classify_number(raw, policy).dial


def _apply_policy(raw: str, number: DialNumber, policy: ForwardPolicy) -> None:
    if number.kind is NumberKind.EXTENSION:
        if not policy.is_extension(number.canonical):
            raise _refuse(raw, "not an extension of the organisation")
        return
    if number.kind is NumberKind.FOREIGN and not policy.allow_international:
        raise _refuse(raw, "international number")
    decided = policy.deciding_prefix(number.canonical)
    if decided is None:
        raise _refuse(raw, "not on the allow-list")
    prefix, denied = decided
    if denied:
        premium = prefix in PREMIUM_PREFIXES
        raise _refuse(raw, "premium-rate number" if premium else f"denied prefix {prefix}")


def check_forward(raw: str, policy: ForwardPolicy) -> str:
    """What the switchboard dials for ``raw`` under ``policy``; InvalidActionError if refused.

    The policy is applied to the dialled string as the switchboard reads it, and
    that reading must agree with how ``raw`` was read.
    """
    if len(raw) > MAX_WRITTEN_CHARS:
        # before the cache: a hostile calendar must not fill it with megabyte keys
        raise _refuse(raw[:MAX_WRITTEN_CHARS] + "…", "too long to be a phone number")
    return _check_forward(raw, policy)


@lru_cache(maxsize=4096)
def _check_forward(raw: str, policy: ForwardPolicy) -> str:
    number = classify_number(raw, policy)
    dialled = as_dialled(number.dial, policy)
    if (dialled.kind, dialled.canonical) != (number.kind, number.canonical):
        raise _refuse(raw, "would be dialled as a different number")
    _apply_policy(raw, dialled, policy)
    return number.dial
