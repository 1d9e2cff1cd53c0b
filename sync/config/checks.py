"""Checks of the config file beyond its schema: URLs, the store, and placing each problem.

``load_config`` (``sync/config/load.py``) calls these while loading; they read
nothing but the file system's permissions (``store_problems``, for ``calref
check``) and create nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel

from connectors.calendars.base import KEY_PROBLEM
from rules.errors import Problem
from rules.yamlfile import format_path


def http_url(value: str) -> str:
    """``value`` if it is an absolute https:// or http:// URL with a host."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = urlsplit("")
    if parts.scheme.lower() not in ("https", "http") or not host:
        raise ValueError("must be an https:// or http:// URL with a host")
    return value


_DATABASE_URL = re.compile(r"(?P<drivername>[A-Za-z][A-Za-z0-9_+.-]*)://")
STORE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def store_url_problem(value: str) -> str | None:
    """Why ``value`` is not a store calref can use (SQLite, or PostgreSQL through psycopg).

    Read by name, without SQLAlchemy (whose import costs more than loading a small
    config). The message never repeats the URL: it may hold a database password.
    """
    use = "use sqlite:///path.db or postgresql+psycopg://…"
    match = _DATABASE_URL.match(value)
    if match is None:
        return f"not a database URL ({use})"
    if match["drivername"].lower() not in STORE_DRIVERS:
        return f"unsupported database {match['drivername']!r} ({use})"
    return None


def in_order(problems: list[Problem], name: str) -> list[Problem]:
    """The config file's problems by line and column, then the rule file's."""
    return sorted(problems, key=lambda p: (p.file != name, p.line or 0, p.column or 0))


def report_store(url: str, base_dir: Path, writable: bool, problem: Report) -> None:
    """The store's dialect; with ``writable`` also that a SQLite file could be written."""
    why = store_url_problem(url)
    if why is not None:
        problem(("store",), f"store: {why}", at_value=True)
    elif writable:
        for message in store_problems(url, base_dir):
            problem(("store",), message, at_value=True)


def store_problems(url: str, base_dir: Path) -> list[str]:
    """Whether a SQLite store could be opened for writing, without creating anything.

    The file (relative to ``base_dir``) must be a writable file if it exists, and
    its folder must exist and be writable (SQLite writes its journal beside it).
    PostgreSQL and in-memory stores have nothing to check here.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix) :] in ("", ":memory:"):
        return []
    file = base_dir / url[len(prefix) :].split("?", 1)[0]
    try:
        return _writable(file)
    except (OSError, ValueError) as err:  # a NUL byte, a name too long
        return [f"cannot use the store path {str(file)!r}: {err}"]


def _writable(file: Path) -> list[str]:
    folder = file.parent
    if file.exists():
        if not file.is_file():
            return [f"the store {file} is not a file"]
        if not os.access(file, os.R_OK | os.W_OK):
            return [f"the store {file} cannot be written by this user"]
    if not folder.is_dir():
        return [f"the store's folder {folder} does not exist"]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [f"the store's folder {folder} cannot be written by this user"]
    return []


class Report(Protocol):
    """``problem(where, message)`` of ``load_config``: placed at the key, or at the value."""

    def __call__(
        self, where: tuple[str | int, ...], message: str, *, at_value: bool = False
    ) -> None: ...


def report_invalid(
    model: type[BaseModel], data: Any, place: tuple[str | int, ...], problem: Report
) -> None:
    """Validate ``data`` against ``model``; report each error where it stands.

    A key that does not belong there or is missing, and a model's ``KEY_PROBLEM``, are
    placed at the key; every other problem at its value.
    """
    try:
        model.model_validate(data)
    except pydantic.ValidationError as err:
        for detail in err.errors(include_url=False):
            loc = (*place, *(p for p in detail["loc"] if not str(p).startswith("function-")))
            message = str(detail["msg"]).removeprefix("Value error, ")
            at_key = detail["type"] in ("extra_forbidden", "missing", KEY_PROBLEM)
            if detail["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}"
            problem(loc, f"{format_path(loc)}: {message}", at_value=not at_key)
