"""The switchboard error family: what each HTTP status of the contract means to calref.

All are ``rules.errors.SwitchboardError``; whether to retry is told by class
(``SwitchboardUnavailable`` is ``Retryable``, the rejections are not). The
subclasses let a caller tell an unknown user from a rejected action, and carry
the contract's error ``code`` and HTTP ``status``.
The simulator raises the same classes, so the in-process fake and the HTTP
adapter fail the same way.
"""

from __future__ import annotations

from rules.errors import SwitchboardError, SwitchboardUnavailable


class SwitchboardRejected(SwitchboardError):
    """The switchboard understood the call and refused it; retrying will not help."""

    status = 400
    default_code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code or self.default_code
        if status is not None:
            self.status = status


class UnauthorizedError(SwitchboardRejected):
    """The bearer token is missing or wrong (HTTP 401/403)."""

    status = 401
    default_code = "unauthorized"


class UnknownUserError(SwitchboardRejected):
    """The switchboard has no user with that id (HTTP 404)."""

    status = 404
    default_code = "unknown_user"


class IdempotencyConflictError(SwitchboardRejected):
    """An idempotency key was reused for a different request (HTTP 409)."""

    status = 409
    default_code = "idempotency_conflict"


class RejectedActionError(SwitchboardRejected):
    """The action or referral is invalid for this user, e.g. an unknown profile (HTTP 422)."""

    status = 422
    default_code = "invalid_action"


_BY_STATUS: dict[int, type[SwitchboardRejected]] = {
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: UnknownUserError,
    409: IdempotencyConflictError,
    422: RejectedActionError,
}


def error_for_status(
    status: int, message: str, *, code: str | None = None, retry_after: float | None = None
) -> SwitchboardError:
    """The error for an HTTP error ``status``: 429 and 5xx are transient, other 4xx are not."""
    if status == 429 or status >= 500:
        return SwitchboardUnavailable(
            message, status=status, code=code or "unavailable", retry_after=retry_after
        )
    cls = _BY_STATUS.get(status, SwitchboardRejected)
    return cls(message, code=code, status=status)
