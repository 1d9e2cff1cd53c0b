"""The calendar kinds: which connector reads each, and checking their blocks and entries.

``CONNECTORS`` maps each ``kind:`` of a calendar entry to its connector package
(``connectors/calendars/<kind>/``), which exports the same three names
(``connectors.calendars.base.Connector``): its ``ConnectionConfig`` for the
``connections: {<kind>: ...}`` block, its ``CalendarConfig`` for an entry and
``build_source``. A kind whose ``ConnectionConfig`` has no fields (ics) takes no
``connections:`` block; the others need theirs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from connectors.calendars import caldav, ews, google, graph, ics
from connectors.calendars.base import SHARED_KEY, Connector, split_shared
from sync.config.checks import Report, report_invalid

CONNECTORS: Mapping[str, Connector] = {
    "ics": ics,
    "graph": graph,
    "ews": ews,
    "google": google,
    "caldav": caldav,
}
CALENDAR_KINDS = tuple(CONNECTORS)
CONNECTION_KINDS = tuple(
    kind for kind, connector in CONNECTORS.items() if connector.ConnectionConfig.model_fields
)
"""The kinds that take a ``connections:`` block (and need one when a calendar uses them)."""


def check_connections(connections: Mapping[str, Any], problem: Report) -> None:
    """Validate each ``connections:`` block once, used or not."""
    for kind, block in connections.items():
        if kind not in CONNECTION_KINDS:
            problem(
                ("connections", kind),
                f"connections.{kind}: unknown connection {kind!r} "
                f"(expected one of {', '.join(CONNECTION_KINDS)})",
            )
            continue
        report_invalid(CONNECTORS[kind].ConnectionConfig, block, ("connections", kind), problem)


def check_calendar_entry(
    connections: Collection[str],
    entry: dict[str, Any],
    where: tuple[str | int, ...],
    problem: Report,
) -> None:
    """Validate one calendar entry where it stands (``connections``: the blocks given)."""
    try:
        entry, _ = split_shared(entry)  # every kind accepts `shared:`; the kinds never see it
    except ValueError as err:
        problem((*where, SHARED_KEY), str(err))
        return
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in CONNECTORS:
        problem(
            (*where, "kind"),
            f"unknown calendar kind {kind!r} (expected one of {', '.join(CALENDAR_KINDS)})",
        )
        return
    report_invalid(CONNECTORS[kind].CalendarConfig, entry, where, problem)
    if kind in CONNECTION_KINDS and kind not in connections:
        problem(
            (*where, "kind"), f"calendar kind '{kind}' needs a 'connections: {{{kind}: ...}}' block"
        )
