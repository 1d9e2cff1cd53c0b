"""Google Workspace calendars through the Calendar API v3 (domain-wide delegation).

Modules: ``config.py`` (the ``connections.google`` block and a calendar entry),
``client.py`` (delegated credentials, requests, retries, error translation),
``mapping.py`` (where a Google event becomes a ``CalendarEvent``), ``source.py``
(the source and ``build_source``) and ``push.py`` (``events.watch`` channels). See
docs/calendars-google.md.
"""

from connectors.calendars.google.config import GoogleCalendarConfig as CalendarConfig
from connectors.calendars.google.config import GoogleConnectionConfig as ConnectionConfig
from connectors.calendars.google.source import build_source

__all__ = ["CalendarConfig", "ConnectionConfig", "build_source"]
