"""Small helpers for user-facing wording: counts with the right noun form."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 event``, ``2 events``, ``0 events``; ``many`` for irregular plurals."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
