"""Line-level view of an iCalendar text: structure checks and finding a property's line.

icalendar parses content lines without remembering where they came from. To give
errors like ``line 14: DTSTART is not a valid date-time`` this module keeps the
physical line number of every unfolded content line, checks the BEGIN/END
structure before the real parser runs, and finds the line of a property inside
the VEVENT with a given UID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"^[A-Za-z0-9-]+")


@dataclass(frozen=True, slots=True)
class ContentLine:
    """One unfolded content line and the 1-based physical line it starts on."""

    line: int
    text: str

    @property
    def name(self) -> str:
        match = _NAME.match(self.text)
        return match.group(0).upper() if match else ""

    @property
    def value(self) -> str:
        """The text after the first colon that is not inside a quoted parameter."""
        quoted = False
        for i, char in enumerate(self.text):
            if char == '"':
                quoted = not quoted
            elif char == ":" and not quoted:
                return self.text[i + 1 :]
        return ""


@dataclass
class EventBlock:
    """The content lines of one VEVENT (its own properties, not nested VALARMs)."""

    begin: int
    lines: list[ContentLine] = field(default_factory=list)

    @property
    def uid(self) -> str | None:
        return next((c.value.strip() for c in self.lines if c.name == "UID"), None)


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


def content_lines(text: str) -> list[ContentLine]:
    """Unfold ``text`` (RFC 5545 §3.1) keeping each logical line's first physical line."""
    out: list[ContentLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and out:
            last = out[-1]
            out[-1] = ContentLine(last.line, last.text + raw[1:])
        elif raw.strip():
            out.append(ContentLine(number, raw))
    return out


def structure_problem(lines: list[ContentLine]) -> str | None:
    """The first structural problem (not a calendar, bad line, unbalanced BEGIN/END), if any."""
    if not lines or lines[0].text.strip().upper() != "BEGIN:VCALENDAR":
        first = lines[0].text.strip()[:40] if lines else ""
        shown = f": starts with {first!r}" if first else ": the file is empty"
        return f"not an iCalendar file (no BEGIN:VCALENDAR at the start){shown}"
    stack: list[tuple[str, int]] = []
    for cl in lines:
        if not cl.name or (cl.value == "" and ":" not in cl.text):
            return f"line {cl.line}: not a content line (NAME:value): {cl.text[:60]!r}"
        if cl.name in ("BEGIN", "END"):
            what = cl.value.strip().upper()
            if cl.name == "BEGIN":
                stack.append((what, cl.line))
            elif not stack:
                return f"line {cl.line}: END:{what} without a matching BEGIN"
            elif stack[-1][0] != what:
                open_what, open_line = stack[-1]
                return (
                    f"line {cl.line}: END:{what} found but BEGIN:{open_what} "
                    f"from line {open_line} is still open"
                )
            else:
                stack.pop()
        elif not stack:
            return f"line {cl.line}: {cl.name} is outside BEGIN:VCALENDAR ... END:VCALENDAR"
    if stack:
        what, line = stack[-1]
        return f"line {line}: BEGIN:{what} has no matching END:{what} (the file is cut short?)"
    return None


def event_blocks(lines: list[ContentLine]) -> list[EventBlock]:
    """Every VEVENT block with its own property lines (nested components skipped)."""
    blocks: list[EventBlock] = []
    depth_in_event = 0
    current: EventBlock | None = None
    for cl in lines:
        if cl.name == "BEGIN":
            if cl.value.strip().upper() == "VEVENT" and current is None:
                current = EventBlock(cl.line)
                depth_in_event = 0
            elif current is not None:
                depth_in_event += 1
        elif cl.name == "END" and current is not None:
            if depth_in_event == 0 and cl.value.strip().upper() == "VEVENT":
                blocks.append(current)
                current = None
            else:
                depth_in_event -= 1
        elif current is not None and depth_in_event == 0:
            current.lines.append(cl)
    return blocks


def find_line(
    blocks: list[EventBlock], uid: str | None, prop: str, value: str | None = None
) -> int | None:
    """The line of ``prop`` (with ``value`` if given) in a VEVENT whose UID is ``uid``."""
    fallback: int | None = None
    for block in blocks:
        if block.uid != uid:
            continue
        for cl in block.lines:
            if cl.name != prop.upper():
                continue
            if value is None or cl.value.strip() == value.strip():
                return cl.line
            fallback = fallback or cl.line
    return fallback


def block_line(blocks: list[EventBlock], uid: str | None) -> int | None:
    """The BEGIN:VEVENT line of the first VEVENT with ``uid``."""
    return next((b.begin for b in blocks if b.uid == uid), None)
