"""Exchange Server calendars over EWS."""
