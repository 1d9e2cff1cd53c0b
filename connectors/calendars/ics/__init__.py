"""iCalendar (.ics) files and feeds; the iCalendar parsing CalDAV shares.

Modules: ``config.py`` (a calendar entry; ICS takes no connection block),
``client.py`` (fetching a feed over http(s) within its bounds), ``parse.py`` (from
iCalendar text to the occurrences in a window), ``mapping.py`` (where an occurrence
becomes a ``CalendarEvent``), ``source.py`` (the file and feed sources and
``build_source``), and the parser's helpers: ``lines.py`` (line numbers and
structure), ``prepare.py`` (components and their own time zones), ``checks.py``
(which events are usable and what they cost), ``expand.py`` (recurrence expansion in
bounded batches), ``values.py`` (single values) and ``windows_zones.py`` (Outlook's
zone names). See docs/calendars-ics.md.
"""

from connectors.calendars.ics.config import IcsCalendarConfig as CalendarConfig
from connectors.calendars.ics.config import IcsConnectionConfig as ConnectionConfig
from connectors.calendars.ics.source import build_source

__all__ = ["CalendarConfig", "ConnectionConfig", "build_source"]
