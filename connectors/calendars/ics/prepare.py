"""From iCalendar text to icalendar components that remember their lines and own zones.

Before icalendar sees a calendar this module: unfolds it (linearly, under the parse
deadline), checks its BEGIN/END structure, drops text after the last END:VCALENDAR,
sets aside VTIMEZONEs that cannot be read (two TZIDs, broken rules) with a warning,
gives each VEVENT and VTIMEZONE an ``X-CALREF-LINE`` property with the line it
begins on (so every warning can name it, across copies made by x-wr-timezone and
recurring-ical-events; set on the parsed components in document order, or, when
icalendar built other components than the BEGIN lines say, written into the text
and parsed again), derives a stable UID for events that have none, and maps
Outlook display-name TZIDs such as ``(UTC-05:00) Eastern Time (US & Canada)`` to IANA
zones when the calendar does not define them itself.

icalendar caches the time zones it builds from VTIMEZONE blocks per process, and the
first definition of a name wins: a second user's "Customized Time Zone" would be read
with the first user's rules. ``parse_components`` therefore forgets that cache before
and after each calendar, under a lock, so each calendar is read with its own
definitions and nothing else. So that part runs one calendar at a time; the time one spends
waiting for the lock does not count against its ``parse_seconds``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from icalendar import vText
from icalendar.timezone import tzp

from connectors.calendars.ics import lines as ics_lines
from connectors.calendars.ics.lines import Block, ContentLine
from connectors.calendars.ics.windows_zones import iana_for_display_name
from connectors.calendars.limits import Deadline, escape
from rules.errors import CalendarError

log = logging.getLogger(__name__)

LINE_PROP = "X-CALREF-LINE"
DERIVED_PREFIX = "calref-noid-"
_TZ_LOCK = threading.Lock()
_CACHED_ZONE_CHARS = 8000
_TZID_PARAM = re.compile(r';TZID=("[^"]*"|[^;:]*)', re.IGNORECASE)


@dataclass
class Prepared:
    """The parsed calendars, each VEVENT/VTIMEZONE block by its first line, and warnings."""

    calendars: list[Any]
    blocks: dict[int, Block]
    warnings: list[str] = field(default_factory=list)
    derived: set[str] = field(default_factory=set)
    bad: dict[int, ContentLine] = field(default_factory=dict)  # VEVENT line -> unreadable line


def parse_components(text: str, source: str, deadline: Deadline) -> Prepared:
    """Parse ``text`` into icalendar ``Calendar`` objects; ``CalendarError`` if unreadable."""
    structure = ics_lines.check_structure(ics_lines.content_lines(text, deadline))
    if structure.problem:
        raise CalendarError(source, structure.problem)
    lines = structure.lines
    found = ics_lines.blocks(lines)
    prepared = Prepared(
        [], {b.begin: b for b in found}, list(structure.warnings), bad=structure.bad
    )
    deadline.check()
    defined = {v for b in found if b.kind == "VTIMEZONE" for v in b.values("TZID")}
    uids = _derived_uids(found)
    prepared.derived = set(uids.values())
    # The lock also covers the warnings filter: icalendar warns with raw calendar text
    # (a guessed TZID) on stderr, which must not reach the logs unescaped.
    queued = deadline.remaining()
    with _TZ_LOCK, warnings.catch_warnings():
        deadline.extend(queued - deadline.remaining())  # waiting for other parses is not ours
        warnings.simplefilter("ignore")
        tzp.use_default()  # forget every other calendar's VTIMEZONEs (see the module doc)
        try:
            unused = _unused_zones(lines, found)
            dropped = unused | _unreadable_zones(lines, found, prepared.warnings, unused, deadline)
            tzp.use_default()
            begins: list[tuple[str, int | None]] = []
            data = "\r\n".join(_annotated(lines, prepared.blocks, dropped, uids, defined, begins))
            deadline.check()  # unfolded lines: icalendar only splits them again
            prepared.calendars = list(icalendar.Calendar.from_ical(data, multiple=True))
            if not _number(prepared.calendars, begins):
                # icalendar built other components than the BEGIN lines say (a line it
                # skips): number them through the text instead, which costs a parse more.
                deadline.check()
                tzp.use_default()
                numbered = _annotated(lines, prepared.blocks, dropped, uids, defined, None)
                data = "\r\n".join(numbered)
                prepared.calendars = list(icalendar.Calendar.from_ical(data, multiple=True))
        except CalendarError:
            raise
        except Exception as err:  # icalendar's own errors vary (ValueError, KeyError, ...)
            log.debug("%s: icalendar rejected the calendar", source, exc_info=True)
            raise CalendarError(source, f"not a valid iCalendar file: {short(err)}") from None
        finally:
            tzp.use_default()
    return prepared


def short(err: BaseException, limit: int = 160) -> str:
    """A one-line, escaped rendering of an exception from a library."""
    return escape(" ".join(str(err).split()), limit)


def _derived_uids(found: list[Block]) -> dict[int, str]:
    """A stable UID for each VEVENT without one: a hash of its DTSTART line, SUMMARY and
    RECURRENCE-ID, with ``-2``, ``-3``... for identical entries (Exchange 2010 feeds)."""
    out: dict[int, str] = {}
    seen: dict[str, int] = {}
    for block in found:
        if block.kind != "VEVENT" or block.uid is not None:
            continue
        parts = [
            next((c.text.strip() for c in block.lines if c.name == "DTSTART"), ""),
            "\n".join(block.values("SUMMARY")),
            "\n".join(block.values("RECURRENCE-ID")),
        ]
        digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()
        uid = DERIVED_PREFIX + digest[:20]
        seen[uid] = seen.get(uid, 0) + 1
        out[block.begin] = uid if seen[uid] == 1 else f"{uid}-{seen[uid]}"
    return out


def _block_text(lines: list[ContentLine], block: Block) -> list[str]:
    """Every content line from ``block``'s BEGIN to its END (nested parts included)."""
    return [cl.text for cl in lines[block.first : block.last + 1]]


def _unused_zones(lines: list[ContentLine], found: list[Block]) -> set[int]:
    """VTIMEZONE blocks no property refers to (icalendar would still build each one)."""
    used: set[str] = set()
    for cl in lines:
        if cl.has_tzid:
            head = cl.text[: len(cl.text) - len(cl.value)]
            used.update(m.group(1).strip('"') for m in _TZID_PARAM.finditer(head))
    return {
        b.begin
        for b in found
        if b.kind == "VTIMEZONE" and not any(tzid in used for tzid in b.values("TZID"))
    }


def _unreadable_zones(
    lines: list[ContentLine],
    found: list[Block],
    notes: list[str],
    skip: set[int],
    deadline: Deadline,
) -> set[int]:
    """VTIMEZONE blocks icalendar cannot turn into a time zone (dropped, with a warning)."""
    dropped: set[int] = set()
    for block in found:
        if block.kind != "VTIMEZONE" or block.begin in skip:
            continue
        deadline.check(f"line {block.begin}")
        tzids = block.values("TZID")
        problem = None
        if len(tzids) != 1:
            problem = f"has {len(tzids)} TZID lines (exactly one is needed)"
        else:
            body = "\r\n".join(["BEGIN:VCALENDAR", *_block_text(lines, block), "END:VCALENDAR"])
            small = len(body) <= _CACHED_ZONE_CHARS
            problem = _known_zone_problem(body) if small else _zone_problem(body)
        if problem:
            name = f" '{escape(tzids[0], 60)}'" if tzids else ""
            then = (
                "its name is read as the IANA zone"
                if tzids and _iana(tzids[0])
                else "events using it are read in the mailbox's zone"
            )
            notes.append(f"line {block.begin}: VTIMEZONE{name} ignored: {problem}; {then}")
            dropped.add(block.begin)
    return dropped


def _zone_problem(body: str) -> str | None:
    """Why icalendar cannot read the VTIMEZONE in ``body``, or None (under ``_TZ_LOCK``)."""
    # icalendar builds the zone from the block as it parses it (unless the TZID is an
    # IANA name, which it uses instead); forgetting the zones built so far makes it
    # build this one even when an earlier block had the same TZID.
    tzp.use_default()
    try:
        icalendar.Calendar.from_ical(body)
    except Exception as err:  # a broken rule: icalendar raises many kinds
        return f"cannot be read: {short(err, 100)}"
    return None


# The answer depends on the text alone, so for blocks of a usual size it is kept: most
# calendars of one organisation carry the same few zones (at most 256 x 8,000 characters).
_known_zone_problem = functools.lru_cache(maxsize=256)(_zone_problem)


def _iana(tzid: str) -> bool:
    try:
        ZoneInfo(tzid.strip("/"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _annotated(
    lines: list[ContentLine],
    by_begin: dict[int, Block],
    dropped: set[int],
    uids: dict[int, str],
    defined: set[str],
    begins: list[tuple[str, int | None]] | None,
) -> Iterator[str]:
    """The lines for icalendar: dropped zones left out, derived UIDs added, Outlook
    display-name TZIDs mapped to IANA names.

    Each BEGIN line passed on is recorded in ``begins`` (the component's name, and its
    line if it begins a block) so that ``_number`` can number the parsed components;
    without ``begins`` each block's line is written into the text as ``X-CALREF-LINE``.
    """
    skipping = 0
    for cl in lines:
        if skipping:
            skipping += 1 if cl.name == "BEGIN" else -1 if cl.name == "END" else 0
            continue
        if cl.name != "BEGIN":
            yield _map_tzid(cl.text, defined) if cl.has_tzid else cl.text
            continue
        block = by_begin.get(cl.line)
        if block is not None and block.begin in dropped:
            skipping = 1
            continue
        yield _map_tzid(cl.text, defined) if cl.has_tzid else cl.text
        if begins is not None:
            begins.append((cl.value.strip().upper(), block.begin if block else None))
        if block is not None:
            if begins is None:
                yield f"{LINE_PROP}:{block.begin}"
            if block.begin in uids:
                yield f"UID:{uids[block.begin]}"


def _number(calendars: list[Any], begins: list[tuple[str, int | None]]) -> bool:
    """Give each parsed component that begins a block its ``X-CALREF-LINE``, matching the
    components in document order to the BEGIN lines; False (nothing numbered) if icalendar
    built other components than those lines."""
    found: list[Any] = []
    stack = list(reversed(calendars))
    while stack:
        component = stack.pop()
        found.append(component)
        stack.extend(reversed(component.subcomponents))
    if len(found) != len(begins) or any(
        str(c.name).upper() != name for c, (name, _) in zip(found, begins, strict=True)
    ):
        return False
    for component, (_, line) in zip(found, begins, strict=True):
        if line is not None:
            component[LINE_PROP] = vText(str(line))
    return True


def _map_tzid(text: str, defined: set[str]) -> str:
    colon = ContentLine(0, text).value
    head = text[: len(text) - len(colon)] if colon else text

    def replace(match: re.Match[str]) -> str:
        tzid = match.group(1).strip('"')
        if tzid in defined:
            return match.group(0)
        iana = iana_for_display_name(tzid)
        return f";TZID={iana}" if iana else match.group(0)

    return _TZID_PARAM.sub(replace, head) + text[len(head) :]
