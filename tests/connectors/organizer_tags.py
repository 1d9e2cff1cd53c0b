"""Reading tags as alice, for the organizer tests of every connector (ICS, Graph, Google, EWS).

Alice has an extension and a mobile profile, so ``#mobile`` switches her profile and
``#fwd:NUMBER`` forwards her phone; both are refused when the organizer is external.
"""

from __future__ import annotations

from rules.actions import ForwardPolicy
from rules.model import CalendarEvent, Profile, User
from rules.rulefile import DEFAULT_REASONS
from rules.tags import TagOutcome, TagVocabulary, read_tags

USER = User(
    "alice",
    "Alice",
    "alice@example.se",
    "1234",
    (Profile("ext", "Extension"), Profile("mob", "Mobile", "0701234567", ("mobile",))),
)


def tags_of(event: CalendarEvent) -> TagOutcome:
    """The tags of ``event`` as read for alice, with the default reasons and dialling policy."""
    return read_tags(event, USER, TagVocabulary(reasons=DEFAULT_REASONS), ForwardPolicy())
