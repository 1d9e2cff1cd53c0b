"""CalDAV calendars."""
