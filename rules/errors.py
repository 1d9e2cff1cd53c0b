"""The one family of errors calref raises, and whether each is worth retrying.

Every error the user or the outside world can cause is a ``CalrefError`` whose
message names the place and the problem; the command line prints the message
and exits non-zero, never a traceback. Whether a failure is worth retrying is
told by its class, never by a flag: a ``Retryable`` error may carry the
``retry_after`` seconds the other side asked for.

    CalrefError
    ├── ValidationError            a file or value is invalid; every Problem at once
    │   ├── RuleFileError
    │   └── ConfigError
    ├── InvalidActionError         a phone action cannot be carried out for this user
    ├── CalendarError              a calendar could not be read: not worth retrying soon
    │   ├── SyncStateExpired       the stored sync state was rejected: resync from scratch
    │   ├── LimitExceeded          (connectors.calendars.limits) a bound was crossed
    │   └── CalendarUnavailable    Retryable: network, 5xx, timeouts
    │       └── ThrottledError     Retryable: the source asked us to slow down
    ├── SwitchboardError           a switchboard call failed
    │   ├── SwitchboardRejected    (connectors.switchboard.errors) refused; retrying won't help
    │   ├── WireError              an answer or request does not have the contract's shape
    │   └── SwitchboardUnavailable Retryable: throttled, down, timed out, unreachable
    └── StoreError                 the store cannot be opened or used
        └── StoreLost              its file was deleted or replaced: stop acting

``is_retryable(err)`` is the one question callers ask; anything that is not a
``CalrefError`` (a bug, an unexpected library exception) is treated as worth
retrying by the executor and as a failed sync by polling, and is logged.
"""

from __future__ import annotations

from dataclasses import dataclass


class CalrefError(Exception):
    """Base of every expected calref error; ``str(err)`` is the user-facing message."""


class Retryable:
    """Mixed into the errors worth retrying; ``retry_after`` is in seconds when known."""

    retry_after: float | None = None


def is_retryable(err: BaseException) -> bool:
    """Whether ``err`` is a failure that may pass if the same call is tried again later."""
    return isinstance(err, Retryable)


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
    """A calendar could not be read or parsed; ``source`` names the calendar.

    Not worth retrying before the next poll: the calendar or its configuration
    must change first (bad credentials, a malformed document, a missing mailbox).
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class SyncStateExpired(CalendarError):
    """The source rejected the stored sync state; a full resync is needed."""


class CalendarUnavailable(Retryable, CalendarError):
    """The calendar could not be reached for now (network, timeout, server error)."""

    def __init__(self, source: str, problem: str, retry_after: float | None = None) -> None:
        super().__init__(source, problem)
        self.retry_after = retry_after


class ThrottledError(CalendarUnavailable):
    """The source asked us to slow down; ``retry_after`` is in seconds when known."""


class SwitchboardError(CalrefError):
    """A switchboard call failed and retrying it will not help (see the subclasses)."""


class SwitchboardUnavailable(Retryable, SwitchboardError):
    """A transient failure: throttled, overloaded, down, timed out or unreachable.

    ``status`` is the HTTP status when there was one (429, 5xx), ``None`` for
    timeouts and connection errors; ``retry_after`` is in seconds when the
    switchboard said how long to wait.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "unavailable",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class WireError(SwitchboardError, ValueError):
    """A JSON document does not have the switchboard contract's shape; names the field."""


class StoreError(CalrefError):
    """The store cannot be opened or used (bad URL, unreachable database)."""


class StoreLost(StoreError):
    """The store's file was deleted or replaced while this process used it: stop acting."""
