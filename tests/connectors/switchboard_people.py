"""The people of the switchboard tests: Anna with three profiles, Bo with none; the start."""

from __future__ import annotations

from datetime import UTC, datetime

from rules.model import Profile, User

T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
ANNA = User(
    "anna",
    "Anna Berg",
    "anna@example.se",
    "1234",
    (
        Profile("desk", "Desk", "1234"),
        Profile("mobile", "Mobile", "0701234567", ("#mobile",)),
        Profile("home", "Home office", "086660000"),
    ),
)
BO = User("bo", "Bo Ek", "bo@example.se", "2345")
