"""Line-level view of an iCalendar text: unfolding, structure checks, component blocks.

icalendar parses content lines without remembering where they came from. To give
errors like ``line 14: DTSTART is not a valid date-time`` this module keeps the
physical line number of every unfolded content line, checks the BEGIN/END
structure before the real parser runs, and groups the lines of each top-level
VEVENT and VTIMEZONE into a ``Block`` (its own properties, not nested VALARMs or
STANDARD/DAYLIGHT parts). Unfolding is linear in the size of the text (a 4 MB
folded DESCRIPTION is one pass), and the optional deadline is checked as it goes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from connectors.calendars.limits import Deadline, escape

_NAME = re.compile(r"^[A-Za-z0-9-]+")
_NEWLINE = re.compile(r"\r?\n")  # what icalendar splits on; a lone CR stays in the line
OURS = "X-CALREF-"  # properties the parser adds; the same names in the input are dropped
_CHECK_EVERY = 2048


class ContentLine:
    """One unfolded content line and the 1-based physical lines it spans.

    ``name`` is the upper-cased property name (empty if the line has none), ``has_tzid``
    whether a ``TZID=`` parameter may be in it (any case), ``value`` the text after the
    first colon outside a quoted parameter (computed once, when first asked for).
    """

    __slots__ = ("_value", "last", "line", "name", "text")

    def __init__(self, line: int, text: str, last: int = 0) -> None:
        self.line = line
        self.text = text
        self.last = last
        match = _NAME.match(text)
        self.name = match.group(0).upper() if match else ""
        self._value: str | None = None

    def __repr__(self) -> str:
        return f"ContentLine({self.line!r}, {self.text!r}, {self.last!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContentLine):
            return NotImplemented
        return (self.line, self.text, self.last) == (other.line, other.text, other.last)

    def __hash__(self) -> int:
        return hash((self.line, self.text, self.last))

    @property
    def has_tzid(self) -> bool:
        text = self.text
        return "=" in text and ("TZID=" in text or "TZID=" in text.upper())

    @property
    def value(self) -> str:
        """The text after the first colon that is not inside a quoted parameter."""
        if self._value is None:
            self._value = _value_of(self.text)
        return self._value


def _value_of(text: str) -> str:
    colon = text.find(":")
    if colon < 0:
        return ""
    quote = text.find('"', 0, colon)
    if quote < 0:
        return text[colon + 1 :]  # no quoted parameter before the first colon
    quoted = False
    for i in range(quote, len(text)):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return text[i + 1 :]
    return ""


@dataclass
class Block:
    """The content lines of one top-level VEVENT or VTIMEZONE (its own properties)."""

    kind: str
    begin: int
    lines: list[ContentLine] = field(default_factory=list)
    first: int = 0  # index of its BEGIN line in the calendar's content lines
    last: int = 0  # index of its END line

    def values(self, name: str) -> list[str]:
        return [c.value.strip() for c in self.lines if c.name == name]

    def line_of(self, name: str, nth: int = 0) -> int:
        found = [c.line for c in self.lines if c.name == name]
        return found[nth] if len(found) > nth else self.begin

    @property
    def uid(self) -> str | None:
        values = self.values("UID")
        return values[0] if values else None

    def repeated(self, names: tuple[str, ...]) -> tuple[str, int, int] | None:
        """The first of ``names`` that appears more than once: (name, first line, second)."""
        counts = Counter(c.name for c in self.lines)
        for name in names:
            if counts[name] > 1:
                return name, self.line_of(name, 0), self.line_of(name, 1)
        return None


def decode(data: bytes | str) -> tuple[str, bool]:
    """Text of ``data``: UTF-8 (with or without BOM); Windows-1252 as a fallback.

    The flag is true when the fallback was needed (the caller reports it).
    """
    if isinstance(data, str):
        return data.removeprefix("\ufeff"), False
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), True


def content_lines(text: str, deadline: Deadline | None = None) -> list[ContentLine]:
    """Unfold ``text`` (RFC 5545 §3.1) keeping each logical line's physical lines.

    Linear: the folded parts of a line are collected and joined once. Lines of our
    own ``X-CALREF-`` namespace are dropped (the parser adds its own).
    """
    out: list[ContentLine] = []
    start = last = 0
    parts: list[str] = []
    ours = len(OURS)
    for number, raw in enumerate(_NEWLINE.split(text), start=1):
        if deadline is not None and number % _CHECK_EVERY == 0:
            deadline.check(f"line {number}")
        if parts and raw[:1] in (" ", "\t"):
            parts.append(raw[1:])
            last = number
        elif raw and not raw.isspace():
            if parts:
                joined = parts[0] if len(parts) == 1 else "".join(parts)
                if joined[:ours].upper() != OURS:
                    out.append(ContentLine(start, joined, last))
            start = last = number
            parts = [raw]
    if parts:
        joined = parts[0] if len(parts) == 1 else "".join(parts)
        if joined[:ours].upper() != OURS:
            out.append(ContentLine(start, joined, last))
    return out


@dataclass
class Structure:
    """The lines that make up the calendar(s), or the problem that rejects the file."""

    lines: list[ContentLine]
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)
    bad: dict[int, ContentLine] = field(default_factory=dict)  # VEVENT begin -> first bad line


def check_structure(lines: list[ContentLine]) -> Structure:
    """Check BEGIN/END balance; text after the last END:VCALENDAR is dropped with a warning."""
    if not lines or lines[0].text.strip().upper() != "BEGIN:VCALENDAR":
        first = escape(lines[0].text.strip(), 40) if lines else ""
        shown = f": starts with '{first}'" if first else ": the file is empty"
        return Structure([], f"not an iCalendar file (no BEGIN:VCALENDAR at the start){shown}")
    stack: list[tuple[str, int]] = []
    kept: list[ContentLine] = []
    bad: dict[int, ContentLine] = {}
    ignored: list[str] = []
    for index, cl in enumerate(lines):
        if not stack and index > 0 and not _is_begin_calendar(cl):
            shown = escape(cl.text.strip(), 40)
            return Structure(
                kept,
                warnings=[
                    *ignored,
                    f"line {cl.line}: text after END:VCALENDAR ignored (starts '{shown}')",
                ],
                bad=bad,
            )
        if not cl.name or ":" not in cl.text:
            shown = escape(cl.text, 60)
            event = next((line for what, line in stack if what == "VEVENT"), None)
            if event is not None:
                bad.setdefault(event, cl)  # that event is skipped, the calendar still counts
                continue
            if "VTIMEZONE" not in (what for what, _ in stack):
                what = escape(stack[-1][0], 40)  # VCALENDAR, VTODO...: nothing calref reads
                ignored.append(f"line {cl.line}: not a content line in {what}, ignored: '{shown}'")
                continue
            return Structure([], f"line {cl.line}: not a content line (NAME:value): '{shown}'")
        kept.append(cl)
        if cl.name in ("BEGIN", "END"):
            what = cl.value.strip().upper()
            shown = escape(what, 40)
            if cl.name == "BEGIN":
                stack.append((what, cl.line))
            elif not stack:
                return Structure([], f"line {cl.line}: END:{shown} without a matching BEGIN")
            elif stack[-1][0] != what:
                open_what, open_line = stack[-1]
                return Structure(
                    [],
                    f"line {cl.line}: END:{shown} found but BEGIN:{escape(open_what, 40)} "
                    f"from line {open_line} is still open",
                )
            else:
                stack.pop()
    if stack:
        what, line = stack[-1]
        shown = escape(what, 40)
        return Structure(
            [], f"line {line}: BEGIN:{shown} has no matching END:{shown} (the file is cut short?)"
        )
    return Structure(kept, warnings=ignored, bad=bad)


def _is_begin_calendar(cl: ContentLine) -> bool:
    return cl.name == "BEGIN" and cl.value.strip().upper() == "VCALENDAR"


def blocks(
    lines: list[ContentLine], kinds: tuple[str, ...] = ("VEVENT", "VTIMEZONE")
) -> list[Block]:
    """Every VEVENT/VTIMEZONE not inside another one, with its own property lines."""
    found: list[Block] = []
    current: Block | None = None
    inner = 0
    for index, cl in enumerate(lines):
        if cl.name == "BEGIN":
            if current is not None:
                inner += 1
            elif cl.value.strip().upper() in kinds:
                current = Block(cl.value.strip().upper(), cl.line, first=index)
                inner = 0
        elif cl.name == "END" and current is not None:
            if inner == 0:
                current.last = index
                found.append(current)
                current = None
            else:
                inner -= 1
        elif current is not None and inner == 0:
            current.lines.append(cl)
    return found
