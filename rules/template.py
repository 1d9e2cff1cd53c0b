"""Message templates of rule-file referrals: ``"{reason}: {subject} until {end_time}"``.

A template is parsed once when the rule file loads. Only the named fields
below may appear, without format specs or attribute access, so a rule file can
never reach into Python objects; rendering is plain string joining.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter

TEMPLATE_FIELDS = ("subject", "reason", "start_time", "end_time", "end_date")


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A parsed template: alternating literal text and field names."""

    text: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> MessageTemplate:
        """Parse ``text``; ValueError naming the bad field or brace otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"a message template is text, got {text!r}")
        parts: list[tuple[str, str | None]] = []
        try:
            pieces = list(Formatter().parse(text))
        except ValueError as err:
            raise ValueError(
                f"bad template {text!r}: {err} (write {{{{ for a literal {{)"
            ) from None
        for literal, name, spec, conversion in pieces:
            if name is not None and (name not in TEMPLATE_FIELDS or spec or conversion):
                shown = "{" + name + ("!" + conversion if conversion else "")
                shown += (":" + spec if spec else "") + "}"
                raise ValueError(
                    f"unknown template field {shown!r} in {text!r} "
                    f"(expected one of {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)})"
                )
            parts.append((literal, name))
        return cls(text, tuple(parts))

    @property
    def fields(self) -> frozenset[str]:
        """The field names the template uses."""
        return frozenset(name for _, name in self.parts if name is not None)

    def render(self, values: Mapping[str, str]) -> str:
        """The message with each field replaced by ``values[field]``."""
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                out.append(values[name])
        return "".join(out).strip()
