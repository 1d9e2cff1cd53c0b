"""iCalendar (.ics) files and feeds."""
