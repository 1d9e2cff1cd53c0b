"""The service: polling calendars, planning, the lease, and carrying out phone actions on time."""
