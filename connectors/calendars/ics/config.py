"""The ICS connector's config models: a ``{kind: ics, ...}`` calendar entry, and no block.

An entry reads a file (``path``, relative to the config file's folder) or a feed:
``url``, or a secret URL from ``url_env``/``url_file``; a feed may log in with
``username`` and ``password_env``/``password_file`` and may set its own
``max_bytes``, ``timeout`` and ``max_redirects``. ``IcsCalendarConfig`` reports every
problem of an entry at once, each at its key, with messages of its own (the allowed
keys, what a value must be); it reads nothing. ICS calendars take no ``connections:``
block: ``IcsConnectionConfig`` is the empty model every ``build_source`` of the kind
is given. See docs/calendars-ics.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from connectors.calendars.base import KEY_PROBLEM

_WHERE_KEYS = ("path", "url", "url_env", "url_file")  # exactly one of them
_URL_ONLY_KEYS = (
    "username",
    "password_env",
    "password_file",
    "max_bytes",
    "timeout",
    "max_redirects",
)
_KEYS = {"kind", *_WHERE_KEYS, *_URL_ONLY_KEYS}
_TEXT_KEYS = (*_WHERE_KEYS, "username", "password_env", "password_file")


class IcsConnectionConfig(BaseModel):
    """ICS calendars take no ``connections:`` block: nothing to configure."""

    model_config = ConfigDict(extra="forbid")


class IcsCalendarConfig(BaseModel):
    """One user's ``{kind: ics, path: ...}`` or ``{kind: ics, url: ...}`` calendar entry."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ics"] = "ics"
    path: str | None = None
    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    max_bytes: int | None = None
    timeout: float | None = None
    max_redirects: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _every_problem(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # pydantic says what it should be
        found = entry_problems(data)
        if found:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [_error(data, loc, message) for loc, message in found],
            )
        return data


def _error(data: Mapping[str, Any], loc: tuple[str, ...], message: str) -> InitErrorDetails:
    """One problem as a pydantic error: at the key when the key is wrong or the entry as a
    whole is (``KEY_PROBLEM``), else at the value."""
    at_key = not loc or message.startswith("unknown key")
    kind = KEY_PROBLEM if at_key else "value_error"
    return InitErrorDetails(
        type=PydanticCustomError(kind, message),
        loc=loc,
        input=data.get(loc[-1]) if loc else data,
    )


def entry_problems(entry: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Every problem of one ``{kind: ics, ...}`` entry, as (key path, message); reads nothing."""
    out: list[tuple[tuple[str, ...], str]] = []
    for key in entry:
        if key not in _KEYS:
            out.append(((str(key),), f"unknown key {key!r} (allowed: {', '.join(sorted(_KEYS))})"))
    for key in _TEXT_KEYS:
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            out.append(((key,), f"must be a non-empty string, got {entry[key]!r:.60}"))
    where = [k for k in _WHERE_KEYS if k in entry]
    if len(where) != 1:
        one_of = ", ".join(repr(k) for k in _WHERE_KEYS)
        out.append(((), f"an ics calendar needs exactly one of {one_of}"))
    elif where == ["path"]:
        out += [((k,), "only applies to url calendars") for k in _URL_ONLY_KEYS if k in entry]
    url = entry.get("url")
    if isinstance(url, str) and url.strip():
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
        except ValueError:
            parts, host = urlsplit(""), None
        if parts.scheme.lower() not in ("http", "https", "webcal") or not host:
            out.append((("url",), "must be an https://, http:// or webcal:// URL with a host"))
    has_password = "password_env" in entry or "password_file" in entry
    if has_password and "username" not in entry:
        out.append(((), "password_env/password_file need a username"))
    if "username" in entry and not has_password:
        out.append((("username",), "needs password_env or password_file"))
    if "password_env" in entry and "password_file" in entry:
        out.append(((), "give at most one of password_env or password_file"))
    for key, kind in (("max_bytes", int), ("timeout", (int, float)), ("max_redirects", int)):
        value = entry.get(key)
        if key in entry and (isinstance(value, bool) or not isinstance(value, kind) or value < 0):
            out.append(((key,), f"must be a non-negative number, got {value!r:.60}"))
    return out
