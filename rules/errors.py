"""The small typed family of errors calref raises.

Every error the user can cause (a bad rule file, config, calendar or request)
is a ``CalrefError`` whose message names the place and the problem. The
command line prints the message and exits non-zero; it never shows a traceback
for these.
"""

from __future__ import annotations

from dataclasses import dataclass


class CalrefError(Exception):
    """Base of every expected calref error; ``str(err)`` is the user-facing message."""


@dataclass(frozen=True)
class Problem:
    """One problem found while validating a file: where it is and what is wrong."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {self.message}"


class ValidationError(CalrefError):
    """A file or value failed validation; carries every problem found at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RuleFileError(ValidationError):
    """The rule file is invalid."""


class ConfigError(ValidationError):
    """The configuration file is invalid."""


class InvalidActionError(CalrefError):
    """A phone action is not valid for the user (unknown profile, undialable number).

    ``why`` is a short reason fit for ``Refused.why`` (e.g. ``premium-rate number``);
    it defaults to the whole message.
    """

    def __init__(self, message: str, why: str | None = None) -> None:
        self.why = why if why is not None else message
        super().__init__(message)


class CalendarError(CalrefError):
    """A calendar could not be read or parsed. ``source`` names the calendar."""

    def __init__(self, source: str, problem: str, *, transient: bool = False) -> None:
        self.source = source
        self.problem = problem
        self.transient = transient
        super().__init__(f"{source}: {problem}")


class SyncStateExpired(CalendarError):
    """The source rejected the stored sync state; a full resync is needed."""


class ThrottledError(CalendarError):
    """The source asked us to slow down; ``retry_after`` is in seconds when known."""

    def __init__(self, source: str, problem: str, retry_after: float | None = None) -> None:
        super().__init__(source, problem, transient=True)
        self.retry_after = retry_after


class SwitchboardError(CalrefError):
    """A switchboard call failed. ``transient`` errors are retried with backoff."""

    def __init__(self, message: str, *, transient: bool) -> None:
        self.transient = transient
        super().__init__(message)
