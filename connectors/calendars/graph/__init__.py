"""Microsoft 365 calendars through Microsoft Graph (app-only, calendarView delta).

Modules: ``config.py`` (the ``connections.graph`` block and a calendar entry),
``client.py`` (sign-in, requests, retries, per-mailbox concurrency), ``mapping.py``
(where a Graph event becomes a ``CalendarEvent``), ``source.py`` (the source and
``build_source``), ``push.py`` (change notifications), ``series.py`` (series
masters), ``state.py`` (the sync state and the sliding window) and ``clouds.py``
(national clouds). See docs/calendars-graph.md.
"""

from connectors.calendars.graph.config import GraphCalendarConfig as CalendarConfig
from connectors.calendars.graph.config import GraphConnectionConfig as ConnectionConfig
from connectors.calendars.graph.source import build_source

__all__ = ["CalendarConfig", "ConnectionConfig", "build_source"]
