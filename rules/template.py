"""Message templates of rule-file referrals: ``"{reason}: {subject} until {end_time}"``.

A template is parsed once when the rule file loads. Only the named fields
below may appear, without format specs or attribute access, so a rule file can
never reach into Python objects; rendering is plain string joining.

A referral's message is what an operator's console shows on one line, so it is
capped at ``MESSAGE_MAX_CHARS`` characters (a 5 MB subject must not travel to the
switchboard). ``cap_message`` cuts at a character boundary that keeps letters
with their accents and emoji sequences whole, and ends the text with ``…``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from unicodedata import category

TEMPLATE_FIELDS = ("subject", "reason", "start_time", "end_time", "end_date")
MESSAGE_MAX_CHARS = 200
ELLIPSIS = "…"
_ZWJ = "\u200d"


def _joins_previous(char: str) -> bool:
    """Whether ``char`` belongs to the character before it (accent, joiner, modifier)."""
    code = ord(char)
    return (
        category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def cap_message(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and ``…`` within it.

    The cut never separates a letter from its combining accents, an emoji from its
    modifiers or the parts of a ZWJ sequence, or the two halves of a flag.
    """
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    while cut > 0 and (_joins_previous(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    if cut > 0 and _regional(text[cut]) and _regional(text[cut - 1]):
        run = 0
        while cut - run > 0 and _regional(text[cut - run - 1]):
            run += 1
        if run % 2:
            cut -= 1  # text[cut - 1] is the first half of a flag
    return text[:cut].rstrip() + ELLIPSIS


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A parsed template: alternating literal text and field names."""

    text: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> MessageTemplate:
        """Parse ``text``; ValueError naming the bad field or brace otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"a message template is text, got {text!r}")
        parts: list[tuple[str, str | None]] = []
        try:
            pieces = list(Formatter().parse(text))
        except ValueError as err:
            raise ValueError(
                f"bad template {text!r}: {err} (write {{{{ for a literal {{)"
            ) from None
        for literal, name, spec, conversion in pieces:
            if name is not None and (name not in TEMPLATE_FIELDS or spec or conversion):
                shown = "{" + name + ("!" + conversion if conversion else "")
                shown += (":" + spec if spec else "") + "}"
                raise ValueError(
                    f"unknown template field {shown!r} in {text!r} "
                    f"(expected one of {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)})"
                )
            parts.append((literal, name))
        return cls(text, tuple(parts))

    @property
    def fields(self) -> frozenset[str]:
        """The field names the template uses."""
        return frozenset(name for _, name in self.parts if name is not None)

    def render(self, values: Mapping[str, str]) -> str:
        """The message with each field replaced by ``values[field]``, capped (``cap_message``)."""
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                out.append(values[name])
        return cap_message("".join(out).strip())
