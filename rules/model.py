"""Domain types shared by every layer: calendar events, users, phone actions, referrals.

These are plain frozen dataclasses: cheap to build by the million in the
planner, hashable, and free of I/O. Validation that needs configuration (which
profiles a user has, which numbers may be dialled) lives in ``rules.actions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class ShowAs(StrEnum):
    """How the event shows the user's availability (Outlook's "show as")."""

    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "working_elsewhere"


class Response(StrEnum):
    """The user's own answer to the invitation."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    NONE = "none"


class OrganizerKind(StrEnum):
    """Who organised the event, relative to the user and the organisation's domains."""

    SELF = "self"
    INTERNAL = "internal"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One occurrence of a calendar entry, normalised from any calendar source.

    ``start``/``end`` are timezone-aware datetimes, or ``date``s for all-day
    events (``end`` exclusive, as in iCalendar). ``key`` identifies the
    occurrence within its source (defaults to ``uid`` plus the recurrence id).
    """

    uid: str
    start: datetime | date
    end: datetime | date
    subject: str = ""
    recurrence_id: str | None = None
    show_as: ShowAs = ShowAs.BUSY
    response: Response = Response.NONE
    cancelled: bool = False
    private: bool = False
    categories: tuple[str, ...] = ()
    organizer_kind: OrganizerKind = OrganizerKind.SELF
    organizer: str | None = None
    source: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            key = self.uid if self.recurrence_id is None else f"{self.uid}/{self.recurrence_id}"
            object.__setattr__(self, "key", key)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


class ActionKind(StrEnum):
    """The six things a referral can do to the phone at its start or end."""

    NONE = "none"
    FOLLOW_PROFILE = "follow_profile"
    OPEN = "open"
    CLOSE = "close"
    FORWARD = "forward"
    PROFILE_SWITCH = "profile_switch"


class ActionStatus(StrEnum):
    """A planned action's status: ``pending`` and ``sending`` are live, the rest are final
    until a re-plan re-arms the action. Members equal their strings, which the store keeps."""

    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSED = "missed"
    KEPT = "kept"
    SKIPPED = "skipped"


class Moment(StrEnum):
    """Why a planned action runs: the ``start`` or ``end`` of its referral, or a ``change``
    of the governing intent inside it. Members equal their strings, which the store keeps."""

    START = "start"
    CHANGE = "change"
    END = "end"


@dataclass(frozen=True, slots=True)
class PhoneAction:
    """A "set the phone to X" command. ``number`` only for forward, ``profile`` only for switch."""

    kind: ActionKind
    number: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is ActionKind.FORWARD) != (self.number is not None):
            raise ValueError("a forward action needs a number, and only a forward has one")
        if (self.kind is ActionKind.PROFILE_SWITCH) != (self.profile is not None):
            raise ValueError("a profile switch needs a profile, and only a switch has one")

    @classmethod
    def none(cls) -> PhoneAction:
        return cls(ActionKind.NONE)

    @classmethod
    def follow_profile(cls) -> PhoneAction:
        return cls(ActionKind.FOLLOW_PROFILE)

    @classmethod
    def open(cls) -> PhoneAction:
        return cls(ActionKind.OPEN)

    @classmethod
    def close(cls) -> PhoneAction:
        return cls(ActionKind.CLOSE)

    @classmethod
    def forward(cls, number: str) -> PhoneAction:
        return cls(ActionKind.FORWARD, number=number)

    @classmethod
    def profile_switch(cls, profile: str) -> PhoneAction:
        return cls(ActionKind.PROFILE_SWITCH, profile=profile)

    @property
    def changes_phone(self) -> bool:
        return self.kind is not ActionKind.NONE

    def to_json(self) -> dict[str, str]:
        out = {"type": self.kind.value}
        if self.number is not None:
            out["number"] = self.number
        if self.profile is not None:
            out["profile"] = self.profile
        return out

    @classmethod
    def from_json(cls, data: dict[str, str]) -> PhoneAction:
        return cls(ActionKind(data["type"]), number=data.get("number"), profile=data.get("profile"))

    def __str__(self) -> str:
        if self.number is not None:
            return f"forward {self.number}"
        if self.profile is not None:
            return f"profile_switch {self.profile}"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class Profile:
    """One of the user's phones where calls can be answered; ``tags`` select it from a subject."""

    id: str
    name: str
    number: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class User:
    """A person whose calendar drives referrals on their extension."""

    id: str
    name: str
    email: str
    extension: str
    profiles: tuple[Profile, ...] = ()

    def profile(self, profile_id: str) -> Profile | None:
        return next((p for p in self.profiles if p.id == profile_id), None)


@dataclass(frozen=True, slots=True)
class Intent:
    """What one accepted event asks for, after rules and tags: the timeline's input.

    Times are aware UTC datetimes (all-day events already widened to whole
    local days). ``end_action_explicit`` is true when a tag chose the end
    action; it then carries to the referral's end (see docs/timeline.md).
    """

    event: str
    start: datetime
    end: datetime
    reason: str
    message: str
    start_action: PhoneAction
    end_action: PhoneAction
    priority: int = 0
    rule: str = ""
    end_action_explicit: bool = False


@dataclass(frozen=True, slots=True)
class Referral:
    """An absence shown to operators: reason, message, start, end and phone control."""

    user: str
    start: datetime
    end: datetime
    reason: str
    message: str
    start_action: PhoneAction
    end_action: PhoneAction
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """A phone action the service must carry out at ``at`` (UTC) for ``user``.

    ``moment`` says why: ``start`` or ``end`` of the referral starting at
    ``referral_start``, or ``change`` when the governing intent changes inside it.
    """

    user: str
    at: datetime
    action: PhoneAction
    events: tuple[str, ...]
    moment: Moment
    referral_start: datetime
    rule: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event that makes no referral, and why (``cancelled``, ``declined``, ``free``, ...)."""

    event: str
    start: datetime | date
    why: str
    rule: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    """A tag that was found but not applied, and why (e.g. ``external organizer``)."""

    event: str
    tag: str
    why: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the core decides for one user in one window."""

    user: str
    referrals: tuple[Referral, ...] = ()
    actions: tuple[PlannedAction, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    refused: tuple[Refused, ...] = ()
    intents: tuple[Intent, ...] = field(default=(), compare=False)
