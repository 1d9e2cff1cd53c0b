"""The CalDAV connector's config models: the ``connections.caldav`` block and a calendar entry.

The block names the server's base URL, the service login (where its password is read
from, never the password itself), TLS and timeouts, and the bounds on throttling
retries; an entry names the user's calendar collection (a URL or a path relative to
the server's, with ``{email}``, ``{local}`` and ``{user_id}`` placeholders), may log in
as its own user, and may fix the sync mode. Both refuse unknown keys. See
docs/calendars-caldav.md.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PLACEHOLDERS = ("email", "user_id", "local")


class _Credentials(BaseModel):
    username: str | None = Field(default=None, description="login name; omit for no auth")
    password_env: str | None = Field(default=None, description="env var holding the password")
    password_file: str | None = Field(default=None, description="file holding the password")

    @model_validator(mode="after")
    def _one_password_place(self) -> _Credentials:
        if self.password_env and self.password_file:
            raise ValueError("give at most one of password_env or password_file")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username")
        return self


class CalDAVConnectionConfig(_Credentials):
    """The organisation-level ``connections.caldav`` block: server, service login and limits."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="base URL of the CalDAV server, e.g. https://dav.example.se/")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    verify_tls: bool = True
    throttle_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("must not contain a login; use username and password_env")
        return value if value.endswith("/") else value + "/"


class CalDAVCalendarConfig(_Credentials):
    """One user's CalDAV calendar: ``{kind: caldav, url: ...}`` in the user's ``calendars``.

    ``url`` is the calendar collection, absolute or relative to the connection's
    URL, and may use ``{email}``, ``{local}`` (the part before ``@``) and
    ``{user_id}``. A username here replaces the connection's login for this calendar.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["caldav"] = "caldav"
    url: str = Field(default="{email}/calendar/", description="calendar collection URL or path")
    name: str | None = Field(default=None, description="tells two calendars of one user apart")
    sync: Literal["auto", "sync-token", "ctag", "window"] = "auto"

    @field_validator("url")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            value.format_map({p: "x" for p in PLACEHOLDERS})
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"unknown placeholder {err}; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            ) from None
        return value
