"""The ICS calendar connector: parsing, file and URL sources, and the config factory.

``parse_ics`` turns iCalendar text into ``CalendarEvent`` occurrences (see
``ics_parse``); ``IcsFileSource`` and ``IcsUrlSource`` implement the
``CalendarSource`` protocol (see ``ics_source``); ``build_ics_source`` makes
one from a config entry such as ``{kind: ics, path: alice.ics}`` or
``{kind: ics, url: https://..., username: ..., password_env: ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.calendars.base import CalendarSource, Mailbox
from connectors.calendars.ics.parse import IcsParseResult, parse_ics, parse_ics_report
from connectors.calendars.ics.source import IcsFileSource, IcsUrlSource, redact_url
from connectors.calendars.limits import CalendarLimits, LimitExceeded
from connectors.secrets import Secret, read_secret
from rules.errors import CalrefError, ConfigError, Problem

__all__ = [
    "CalendarLimits",
    "IcsFileSource",
    "IcsParseResult",
    "IcsUrlSource",
    "LimitExceeded",
    "build_ics_source",
    "ics_entry_problems",
    "parse_ics",
    "parse_ics_report",
    "redact_url",
]

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


def ics_entry_problems(entry: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Every problem of one ``{kind: ics, ...}`` entry, as (key path, message); reads nothing.

    What ``build_ics_source`` would refuse, found before any secret is read, so
    that ``calref check`` reports all of them with their place in the config.
    """
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


def build_ics_source(
    entry: Mapping[str, Any],
    mailbox: Mailbox,
    base_dir: Path,
    limits: CalendarLimits | None = None,
) -> CalendarSource:
    """A file or URL source for one calendar entry of ``mailbox``'s user.

    ``path`` is relative to ``base_dir`` (the config file's folder). A secret
    URL can come from ``url_env``/``url_file``; basic-auth password from
    ``password_env``/``password_file``. ``limits`` are the config's
    ``calendar_limits`` (an entry's own ``max_bytes`` wins for its URL). Raises
    ``ConfigError`` naming the problem.
    """
    place = f"calendar entry of user {mailbox.user_id!r}"

    def fail(message: str) -> ConfigError:
        return ConfigError([Problem(place, None, None, message)])

    if not isinstance(entry, Mapping):
        raise fail("must be a mapping with kind: ics and a path or url")
    if entry.get("kind") != "ics":
        raise fail(f"kind must be 'ics', not {entry.get('kind')!r}")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")
    where = [k for k in _WHERE_KEYS if entry.get(k)]
    if len(where) != 1:
        raise fail("give exactly one of path, url, url_env, url_file")
    if where == ["path"]:
        if not isinstance(entry["path"], str):
            raise fail("path must be a string")
        extra = sorted(set(entry) - {"kind", "path"})
        if extra:
            raise fail(f"{', '.join(extra)} only apply to url calendars")
        return IcsFileSource(base_dir / entry["path"], mailbox, limits=limits)
    try:
        if where == ["url"]:
            if not isinstance(entry["url"], str):
                raise fail("url must be a string")
            url = entry["url"]
        else:
            url = read_secret(
                env=entry.get("url_env"), file=_rel(base_dir, entry.get("url_file")), what=place
            ).reveal()
        auth: tuple[str, Secret] | None = None
        if entry.get("password_env") or entry.get("password_file"):
            if not isinstance(entry.get("username"), str):
                raise fail("password_env/password_file need a username")
            password = read_secret(
                env=entry.get("password_env"),
                file=_rel(base_dir, entry.get("password_file")),
                what=f"{place} password",
            )
            auth = (entry["username"], password)
        elif "username" in entry:
            raise fail("username needs password_env or password_file")
    except ConfigError:
        raise
    except CalrefError as err:
        raise fail(str(err).removeprefix(place + ": ")) from None
    options: dict[str, Any] = {}
    for key, kind in (("max_bytes", int), ("timeout", (int, float)), ("max_redirects", int)):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                raise fail(f"{key} must be a non-negative number, not {value!r}")
            options[key] = value
    try:
        return IcsUrlSource(url, mailbox, auth=auth, limits=limits, **options)
    except CalrefError as err:
        raise fail(str(err)) from None


def _rel(base_dir: Path, name: Any) -> Path | None:
    if not name:
        return None
    return base_dir / str(name)
