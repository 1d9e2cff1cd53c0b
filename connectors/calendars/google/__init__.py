"""Google Workspace calendars."""
