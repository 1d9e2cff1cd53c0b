"""Microsoft Graph (Microsoft 365) calendars."""
