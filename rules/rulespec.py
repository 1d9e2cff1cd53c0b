"""The rule file's schema: pydantic models that validate the YAML data, field by field.

Each validator raises ``ValueError`` with a message naming the offending value;
``rules.yamlfile.problems_from_pydantic`` places it at its line and column.
Cross-field checks that must run even when fields fail (duplicate names, a rule
with both outcomes, tag-word clashes) live in ``rules.rulefile``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rules.actions import parse_action
from rules.conditions import WEEKDAYS, parse_clock, parse_duration
from rules.model import OrganizerKind, PhoneAction, Response, ShowAs
from rules.patterns import SafePattern, compile_pattern
from rules.template import MESSAGE_MAX_CHARS, MessageTemplate

DEFAULT_REASONS = ("meeting", "lunch", "out_of_office", "travel", "sick", "course")
MAX_PRIORITY = 1_000_000


def listify(value: Any) -> Any:
    """A single value as a one-item list (``show_as: busy`` = ``show_as: [busy]``)."""
    return [value] if isinstance(value, str) else value


def _compile_regex(pattern: Any) -> SafePattern:
    return compile_pattern(pattern)


def _exactly_int(value: Any) -> Any:
    # YAML's 1.0 and true are not the version 1
    if type(value) is not int:
        raise ValueError(f"must be the number 1, got {value!r}")
    return value


def _check_weekday(day: Any) -> Any:
    if isinstance(day, str) and day.strip().lower()[:3] in WEEKDAYS:
        return day.strip().lower()[:3]
    raise ValueError(f"unknown weekday {day!r} (expected one of {', '.join(WEEKDAYS)})")


def _check_action(spec: Any) -> PhoneAction:
    return parse_action(spec)


Words = Annotated[list[str], BeforeValidator(listify)]
Action = Annotated[PhoneAction, PlainValidator(_check_action)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class DurationSpec(_Strict):
    """``duration: {min: 15m, max: 8h}``."""

    min: str | None = None
    max: str | None = None

    @field_validator("min", "max")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DurationSpec:
        low, high = self.min, self.max
        if low is not None and high is not None and parse_duration(low) > parse_duration(high):
            raise ValueError(f"min {self.min} is longer than max {self.max}")
        return self


class TimeSpec(_Strict):
    """``time: {from: "08:00", to: "17:00"}``: the local start time within [from, to)."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("start", "end")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_clock(value)
        return value


class When(_Strict):
    """A rule's conditions; all optional, all must hold."""

    show_as: Annotated[list[ShowAs], BeforeValidator(listify)] | None = None
    response: Annotated[list[Response], BeforeValidator(listify)] | None = None
    organizer: Annotated[list[OrganizerKind], BeforeValidator(listify)] | None = None
    cancelled: StrictBool | None = None
    private: StrictBool | None = None
    all_day: StrictBool | None = None
    reason_tagged: StrictBool | None = None
    subject: (
        Annotated[
            list[Annotated[SafePattern, PlainValidator(_compile_regex)]],
            BeforeValidator(listify),
        ]
        | None
    ) = None
    category: Words | None = None
    duration: DurationSpec | None = None
    weekdays: (
        Annotated[list[Annotated[str, BeforeValidator(_check_weekday)]], BeforeValidator(listify)]
        | None
    ) = None
    time: TimeSpec | None = None


class ReferralSpec(_Strict):
    """A rule's ``referral:`` outcome."""

    reason: str
    message: str = "{subject}"
    start: Action = PhoneAction.none()
    end: Action | None = None
    priority: StrictInt = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, reason: str, info: ValidationInfo) -> str:
        reasons = (info.context or {}).get("reasons", DEFAULT_REASONS)
        if reason not in reasons:
            raise ValueError(f"unknown reason {reason!r} (reasons: {', '.join(reasons)})")
        return reason

    @field_validator("message")
    @classmethod
    def _template(cls, message: str) -> str:
        MessageTemplate.parse(message)
        return message


class RuleSpec(_Strict):
    """One rule: a name, conditions, and either ``skip`` or ``referral``."""

    name: str = Field(min_length=1)
    when: When = When()
    skip: str | None = Field(default=None, min_length=1)
    referral: ReferralSpec | None = None


class TagsSpec(_Strict):
    """The tag vocabulary (words without ``#``)."""

    soft: Words = ["soft", "mjuk"]
    close: Words = ["close", "stäng"]
    forward: Words = ["fwd", "medflytta"]
    skip: Words = ["noref"]


class DialectsSpec(_Strict):
    """Other switchboards' subject conventions, off by default."""

    leading_symbols: StrictBool = False
    first_words: StrictBool = False
    code_prefix: StrictBool = False


class RuleFileSpec(_Strict):
    """The whole rule file."""

    version: Annotated[Literal[1], BeforeValidator(_exactly_int)]
    private_message: str = Field(default="Busy", max_length=MESSAGE_MAX_CHARS)
    reasons: Words = list(DEFAULT_REASONS)
    tags: TagsSpec = TagsSpec()
    dialects: DialectsSpec = DialectsSpec()
    absence_codes: dict[str, str] = {}
    rules: list[RuleSpec]
