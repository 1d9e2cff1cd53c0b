"""Tags people write in an event's subject (``#mobile``, ``#soft``, ``#fwd:070…``) and dialects.

Tags are matched case-insensitively and removed from the text shown to
operators; unknown ``#words`` stay in the text. Optional dialects reproduce
other switchboards' conventions (leading ``-``/``>``/``.``, first-word absence
codes, ``ABC:``/``ABC;`` prefixes). Security: an event organised outside the
organisation can never forward the phone or switch a profile, and a forward
number must pass the dialling policy; such tags are refused, never applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rules.dialling import ForwardPolicy, check_forward
from rules.errors import InvalidActionError
from rules.model import CalendarEvent, OrganizerKind, PhoneAction, Refused, User
from rules.template import cap_message

EXTERNAL = "external organizer"
_HASHTAG = re.compile(r"(?<![\w&#])#(\w+)")
# A number is captured whole, whatever it contains (any script's digits, letters, ``*``,
# ``#``): ``check_forward`` then refuses what is not plain ASCII, rather than this
# pattern quietly taking the ASCII part of it.
_TAG_NUMBER = re.compile(r":(\S*)")
_LEAD_FORWARD = re.compile(r"\s*>\s*([+\uff0b(]?\d\S*(?:\s\d\S*)*)")
_NUMBER_TRAILER = ".,;:!?"
_TAG_SHOWN_CHARS = 80
_CODE_PREFIX = re.compile(r"\s*([^\s:;]+)\s*([:;])")
_WORD_EDGE = ".,;:!?()[]\"'"
_BRACKETS = {"(": ")", "[": "]"}
_AFTER_TAG = ",.;:!?"


@dataclass(frozen=True, slots=True)
class TagVocabulary:
    """The words of each tag kind (without ``#``), and the reason codes that are also tags."""

    soft: tuple[str, ...] = ("soft", "mjuk")
    close: tuple[str, ...] = ("close", "stäng")
    forward: tuple[str, ...] = ("fwd", "medflytta")
    skip: tuple[str, ...] = ("noref",)
    reasons: tuple[str, ...] = ()
    _kinds: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        kinds: dict[str, str] = {}
        for kind in ("skip", "soft", "close", "forward"):
            for word in getattr(self, kind):
                kinds.setdefault(word.casefold(), kind)
        for reason in self.reasons:
            kinds.setdefault(reason.casefold(), "reason:" + reason)
        object.__setattr__(self, "_kinds", kinds)

    def kind_of(self, word: str) -> str | None:
        """``skip``/``soft``/``close``/``forward``/``reason:CODE`` for a tag word, else None."""
        return self._kinds.get(word.casefold())


@dataclass(frozen=True, slots=True)
class Dialects:
    """Other switchboards' subject conventions; all off unless the rule file turns them on."""

    leading_symbols: bool = False
    first_words: bool = False
    code_prefix: bool = False
    absence_codes: tuple[tuple[str, str], ...] = ()
    _codes: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        codes = {code.casefold(): reason for code, reason in self.absence_codes}
        object.__setattr__(self, "_codes", codes)

    def reason_for(self, code: str) -> str | None:
        """The reason of absence code ``code`` (case-insensitive), else None."""
        return self._codes.get(code.casefold())


@dataclass(frozen=True, slots=True)
class TagOutcome:
    """What the subject's tags ask for.

    ``subject`` is the text with tags removed (what rule conditions see);
    ``shown`` is what operators may see (also cut at ``.`` with the
    leading-symbols dialect). Actions are None when no tag chose them;
    ``end_action`` set means a tag chose it explicitly.
    """

    subject: str
    shown: str
    skip: bool = False
    reason: str | None = None
    start_action: PhoneAction | None = None
    end_action: PhoneAction | None = None
    refused: tuple[Refused, ...] = ()
    applied: tuple[str, ...] = ()


class _Reader:
    """Collects what tags decide, first tag of each kind winning, later conflicts refused."""

    def __init__(self, event: CalendarEvent, policy: ForwardPolicy) -> None:
        self.event = event
        self.policy = policy
        self.external = event.organizer_kind is OrganizerKind.EXTERNAL
        self.skip = False
        self.reason: str | None = None
        self.start: PhoneAction | None = None
        self.end: PhoneAction | None = None
        self.refused: list[Refused] = []
        self.applied: list[str] = []

    def refuse(self, tag: str, why: str) -> None:
        # a refused tag is shown in reports: cut like a message, never inside a character
        tag = cap_message(tag, _TAG_SHOWN_CHARS)
        self.refused.append(Refused(event=self.event.key, tag=tag, why=why))

    def set_reason(self, tag: str, reason: str) -> None:
        if self.reason is not None and self.reason != reason:
            self.refuse(tag, f"the reason is already {self.reason}")
            return
        self.reason = reason
        self.applied.append(f"{tag}: reason {reason}")

    def set_start(self, tag: str, action: PhoneAction) -> None:
        if self.start is not None and self.start != action:
            self.refuse(tag, f"the start action is already {self.start}")
            return
        self.start = action
        self.applied.append(f"{tag}: start action {action}")

    def forward(self, tag: str, raw: str | None) -> None:
        if raw and self.event.private:
            # a refused tag is shown to people; a private event's number is part of its subject
            tag = tag.replace(raw, "…")
        if self.external:
            self.refuse(tag, EXTERNAL)
            return
        if not raw:
            self.refuse(tag, "missing number")
            return
        try:
            number = check_forward(raw, self.policy)
        except InvalidActionError as err:
            self.refuse(tag, err.why)
            return
        self.set_start(tag, PhoneAction.forward(number))

    def switch(self, tag: str, profile_id: str) -> None:
        if self.external:
            self.refuse(tag, EXTERNAL)
            return
        action = PhoneAction.profile_switch(profile_id)
        if self.end is not None and self.end != action:
            self.refuse(tag, f"the end action is already {self.end}")
            return
        self.end = action
        self.applied.append(f"{tag}: end action {action}")


def _trim_number(token: str) -> str:
    """``token`` without the sentence punctuation or closing bracket that followed it."""
    while token:
        last = token[-1]
        if (
            last in _NUMBER_TRAILER
            or last == "]"
            or (last == ")" and token.count(")") > token.count("("))
        ):
            token = token[:-1]
        else:
            break
    return token


def _profile_tags(user: User) -> dict[str, str]:
    tags: dict[str, str] = {}
    for profile in user.profiles:
        for tag in profile.tags:
            tags.setdefault(tag.casefold(), profile.id)
    return tags


def _remove(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` without the tags; a tag's own brackets go too, and no space is left before
    the punctuation that followed it (``Budget (#mobile)``, ``Budget #mobile, then``)."""
    out, last = [], 0
    for start, end in sorted(spans):
        if start > 0 and end < len(text) and _BRACKETS.get(text[start - 1]) == text[end]:
            start, end = start - 1, end + 1
        out.append(text[last:start])
        last = end
        if end < len(text) and text[end] in _AFTER_TAG:
            kept = "".join(out).rstrip()
            out = [kept]
            if not kept and text[end] in ",;:":
                last = end + 1
    out.append(text[last:])
    return " ".join("".join(out).split())


def read_tags(
    event: CalendarEvent,
    user: User,
    vocabulary: TagVocabulary,
    policy: ForwardPolicy,
    dialects: Dialects | None = None,
) -> TagOutcome:
    """Read the tags (and enabled dialects) in ``event.subject`` for ``user``."""
    dialects = dialects or Dialects()
    reader = _Reader(event, policy)
    text = event.subject

    if dialects.leading_symbols:
        text = _leading_symbols(text, reader)
    if dialects.code_prefix:
        text = _code_prefix(text, reader, dialects)

    profiles: dict[str, str] | None = None
    spans: list[tuple[int, int]] = []
    for match in _HASHTAG.finditer(text):
        word = match[1]
        kind = vocabulary.kind_of(word)
        tag, end = match[0], match.end()
        if kind == "forward":
            number = _TAG_NUMBER.match(text, end)
            raw = _trim_number(number[1]) if number is not None else ""
            if number is not None and raw:
                end = number.start(1) + len(raw)
                tag = text[match.start() : end]
            reader.forward(tag, raw or None)
        elif kind == "skip":
            reader.skip = True
            reader.applied.append(f"{tag}: no referral")
        elif kind == "soft":
            reader.set_start(tag, PhoneAction.none())
        elif kind == "close":
            reader.set_start(tag, PhoneAction.close())
        elif kind is not None:
            reader.set_reason(tag, kind.removeprefix("reason:"))
        else:
            if profiles is None:
                profiles = _profile_tags(user)
            profile_id = profiles.get(word.casefold())
            if profile_id is None:
                continue  # unknown #words stay in the text
            reader.switch(tag, profile_id)
        spans.append((match.start(), end))
    subject = _remove(text, spans) if spans else " ".join(text.split())

    if dialects.first_words and reader.reason is None:
        for word in subject.split()[:2]:
            reason = dialects.reason_for(word.strip(_WORD_EDGE))
            if reason is not None:
                reader.set_reason(f"word {word.strip(_WORD_EDGE)!r}", reason)
                break

    shown = subject
    if dialects.leading_symbols and "." in shown:
        shown = shown.split(".", 1)[0].rstrip()
    return TagOutcome(
        subject=subject,
        shown=shown,
        skip=reader.skip,
        reason=reader.reason,
        start_action=reader.start,
        end_action=reader.end,
        refused=tuple(reader.refused),
        applied=tuple(reader.applied),
    )


def _leading_symbols(text: str, reader: _Reader) -> str:
    stripped = text.lstrip()
    if stripped.startswith("-"):
        reader.set_start("leading -", PhoneAction.none())
        return stripped[1:]
    match = _LEAD_FORWARD.match(text)
    if match is not None:
        raw = _trim_number(match[1])
        if raw:
            reader.forward(">" + raw, raw)
            return text[match.start(1) + len(raw) :]
    return text


def _code_prefix(text: str, reader: _Reader, dialects: Dialects) -> str:
    match = _CODE_PREFIX.match(text)
    if match is None:
        return text
    reason = dialects.reason_for(match[1])
    if reason is None:
        return text
    tag = match[1] + match[2]
    reader.set_reason(tag, reason)
    if match[2] == ";":
        reader.set_start(tag, PhoneAction.none())
    return text[match.end() :]
