"""Exchange Server (on premises) calendars over EWS, read with a service account.

Modules: ``config.py`` (the ``connections.ews`` block and a calendar entry),
``client.py`` (the exchangelib account, FindItem and GetItem, server-busy retries,
error translation), ``mapping.py`` (where an Exchange item becomes a
``CalendarEvent``) and ``source.py`` (the source and ``build_source``). See
docs/calendars-ews.md.
"""

from connectors.calendars.ews.config import EwsCalendarConfig as CalendarConfig
from connectors.calendars.ews.config import EwsConnectionConfig as ConnectionConfig
from connectors.calendars.ews.source import build_source

__all__ = ["CalendarConfig", "ConnectionConfig", "build_source"]
