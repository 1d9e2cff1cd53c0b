"""Administrators' regular expressions, matched in time linear in the subject (RE2).

Python's ``re`` backtracks: ``(a+)+$`` on a 28-character subject took 34 s and
would have stalled the service for everyone. Rule-file patterns are compiled
with RE2 instead, whose matching time is bounded by the length of the subject
whatever the pattern, with no clock involved (so a match never depends on how
busy the machine is). What RE2 cannot bound (backreferences, look-around) it
refuses to compile, and so the rule file is refused at load time, with the
pattern's place. The compiled program's memory is capped too (``MAX_MEMORY``),
and patterns longer than ``MAX_PATTERN_CHARS`` are refused. A pattern sees the
first ``MAX_SUBJECT_CHARS`` characters of a subject: even linear time is seconds
for a pattern whose automaton outgrows its memory on a subject of megabytes.

RE2's ``\\w`` is ASCII only; here it is widened to letters and digits of every
script (``[\\pL\\pN_]``) so ``\\w+`` still matches "Tåg". ``\\d``, ``\\s`` and
``\\b`` keep RE2's ASCII meaning. Matching is case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2

MAX_PATTERN_CHARS = 1000
MAX_SUBJECT_CHARS = 10_000  # patterns see this much of a subject (a subject may be megabytes)
MAX_MEMORY = 1 << 20  # bytes per compiled pattern
_WORD = r"\pL\pN_"


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = MAX_MEMORY
    return options


def _widen_word_classes(pattern: str) -> str:
    """``\\w`` → letters, digits and ``_`` of any script; ValueError for ``\\W`` in a class."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped == "w":
                out.append(_WORD if in_class else f"[{_WORD}]")
            elif escaped == "W":
                if in_class:
                    raise ValueError(r"\W inside [...] is not supported; use [^...] instead")
                out.append(f"[^{_WORD}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            # a "]" or "^]" right after "[" is a literal, not the end of the class
            for literal in ("^]", "]", "^"):
                if pattern.startswith(literal, i + 1):
                    out.append(literal)
                    i += len(literal)
                    break
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class SafePattern:
    """A compiled, case-insensitive RE2 pattern; ``pattern`` is the text as written."""

    pattern: str
    _compiled: Any = field(repr=False, compare=False, hash=False)

    def search(self, text: str) -> bool:
        """Whether the pattern is found in the first ``MAX_SUBJECT_CHARS`` of ``text``."""
        return self._compiled.search(text[:MAX_SUBJECT_CHARS]) is not None


def compile_pattern(pattern: str) -> SafePattern:
    """Compile an administrator's pattern; ValueError saying why it cannot be used."""
    if not isinstance(pattern, str):
        raise ValueError(f"a subject pattern is text, got {pattern!r}")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(
            f"regular expression is {len(pattern)} characters long (at most {MAX_PATTERN_CHARS})"
        )
    try:
        compiled = re2.compile(_widen_word_classes(pattern), _options())
    except re2.error as err:
        reason = err.args[0] if err.args else b"invalid"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        hint = ""
        if text.endswith("\\Z"):
            hint = " (write \\z for the end of the text)"
        elif "invalid perl operator" in text or "invalid escape" in text:
            hint = (
                " (RE2 syntax: backreferences and look-around cannot be matched in bounded"
                " time; see docs/rules.md)"
            )
        elif "too large" in text or "repetition" in text:
            hint = " (the pattern is too large to match in bounded time and memory)"
        raise ValueError(f"bad regular expression {pattern!r}: {text}{hint}") from None
    except ValueError as err:
        raise ValueError(f"bad regular expression {pattern!r}: {err}") from None
    return SafePattern(pattern, compiled)
