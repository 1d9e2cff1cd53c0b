"""Reading secrets from environment variables or files, never from config text.

Config blocks name where a secret lives (``*_env`` or ``*_file`` keys); this
module reads it. Error messages name the variable or file, never the value.
"""

from __future__ import annotations

import os
from pathlib import Path

from rules.errors import CalrefError


class Secret:
    """A secret value that does not show itself in ``repr``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def read_secret(*, env: str | None = None, file: str | Path | None = None, what: str) -> Secret:
    """Read ``what`` from the environment variable ``env`` or the file ``file``."""
    if env:
        value = os.environ.get(env)
        if value is None or value == "":
            raise CalrefError(f"{what}: environment variable {env} is not set")
        return Secret(value)
    if file:
        path = Path(file)
        try:
            return Secret(path.read_text(encoding="utf-8").strip())
        except OSError as err:
            raise CalrefError(f"{what}: cannot read secret file {path}: {err.strerror}") from None
        except UnicodeDecodeError:
            raise CalrefError(f"{what}: secret file {path} is not UTF-8 text") from None
    raise CalrefError(f"{what}: name an environment variable (..._env) or a file (..._file)")
