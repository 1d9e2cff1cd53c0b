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

from connectors.calendars.base import CalendarSource, Mailbox
from connectors.calendars.ics_parse import IcsParseResult, parse_ics, parse_ics_report
from connectors.calendars.ics_source import IcsFileSource, IcsUrlSource, redact_url
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
    "parse_ics",
    "parse_ics_report",
    "redact_url",
]

_KEYS = {
    "kind",
    "path",
    "url",
    "url_env",
    "url_file",
    "username",
    "password_env",
    "password_file",
    "max_bytes",
    "timeout",
    "max_redirects",
}


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
    where = [k for k in ("path", "url", "url_env", "url_file") if entry.get(k)]
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
