"""CalDAV calendars (Nextcloud, Radicale, SOGo, iCloud, Fastmail...) through the ``caldav`` package.

Modules: ``config.py`` (the ``connections.caldav`` block and a calendar entry),
``client.py`` (requests, throttling retries, error translation, the collection's
sync-token and ctag) and ``source.py`` (the source and ``build_source``). A CalDAV
calendar object is iCalendar text: it is parsed by ``connectors/calendars/ics/parse.py``
and each occurrence becomes a ``CalendarEvent`` in
``connectors/calendars/ics/mapping.py``. See docs/calendars-caldav.md.
"""

from connectors.calendars.caldav.config import CalDAVCalendarConfig as CalendarConfig
from connectors.calendars.caldav.config import CalDAVConnectionConfig as ConnectionConfig
from connectors.calendars.caldav.source import build_source

__all__ = ["CalendarConfig", "ConnectionConfig", "build_source"]
