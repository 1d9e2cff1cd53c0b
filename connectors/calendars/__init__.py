"""Calendar sources: each turns one user's calendar into normalised ``CalendarEvent``s."""
