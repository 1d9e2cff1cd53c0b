"""The service: polling calendars, re-planning, the lease, publishing referrals and carrying out
phone actions on time (``sync.service.service.Service`` holds the parts)."""
