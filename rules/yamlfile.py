"""YAML files that remember where each value came from, for error messages with line and column.

``load_yaml`` parses with ruamel.yaml's round-trip loader (which records the
line and column of every key and item), hands out plain Python data, and keeps
the positions for ``YamlDocument.locate``. ``problems_from_pydantic`` turns a
pydantic validation error over that data into ``Problem``s pointing into the
file. Nothing here knows about rule files or config files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from rules.errors import Problem, ValidationError

PathPart = str | int
Path = tuple[PathPart, ...]
Position = tuple[int | None, int | None]


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: plain ``data`` plus the positions of its keys and items."""

    filename: str
    data: Any
    _tree: Any

    def locate(self, path: Sequence[PathPart]) -> Position:
        """1-based (line, column) of the key or item at ``path``, else of the nearest parent."""
        return self._find(path, value=False)

    def locate_value(self, path: Sequence[PathPart]) -> Position:
        """1-based (line, column) of the value at ``path``, else of the nearest parent."""
        return self._find(path, value=True)

    def _find(self, path: Sequence[PathPart], *, value: bool) -> Position:
        node = self._tree
        found: Position = (1, 1) if node is not None else (None, None)
        for i, part in enumerate(path):
            last = i == len(path) - 1
            try:
                if isinstance(node, CommentedMap) and part in node:
                    line, col = node.lc.value(part) if (value and last) else node.lc.key(part)
                elif (
                    isinstance(node, CommentedSeq)
                    and isinstance(part, int)
                    and 0 <= part < len(node)
                ):
                    line, col = node.lc.item(part)
                else:
                    break
            except (KeyError, IndexError, TypeError):
                break
            found = (line + 1, col + 1)
            node = node[part]
        return found

    def problem(self, path: Sequence[PathPart], message: str, *, at_value: bool = True) -> Problem:
        """A Problem at ``path`` whose message starts with the dotted path."""
        line, col = self.locate_value(path) if at_value else self.locate(path)
        prefix = f"{format_path(path)}: " if path else ""
        return Problem(self.filename, line, col, prefix + message)


def format_path(path: Sequence[PathPart]) -> str:
    """``("rules", 3, "referral")`` → ``rules[3].referral``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def load_yaml(text: str, filename: str) -> YamlDocument:
    """Parse ``text``; a syntax error (or a duplicate key) raises ValidationError with its place."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        if "duplicate key" in str(exc):
            what = "duplicate key " + str(exc).split("duplicate key", 1)[1].split("\n")[0].strip()
        raise ValidationError([Problem(filename, line, col, f"YAML syntax: {what}")]) from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ValidationError([Problem(filename, None, None, f"YAML syntax: {first}")]) from None
    return YamlDocument(filename, _plain(tree), tree)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: Any) -> tuple[str, bool]:
    """The message for one pydantic error, and whether it points at a key rather than a value."""
    kind = error.get("type", "")
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key", True
    if kind == "missing":
        return "required key is missing", True
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "").replace("'", "")
        return f"unknown value {_short(value)} (expected one of {expected})", False
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if isinstance(value, str | int | float | bool) and repr(value) not in message:
        message += f", got {_short(value)}"
    elif value is None and kind not in ("value_error",):
        message += ", got nothing"
    return message, False


def problems_from_pydantic(
    exc: pydantic.ValidationError,
    doc: YamlDocument,
    filename: str | None = None,
    prefix: Path = (),
) -> list[Problem]:
    """One Problem per pydantic error, at the line and column of the offending key or value.

    ``prefix`` is prepended to every error location (for models validated on a sub-tree).
    """
    name = filename or doc.filename
    problems = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(part for part in error["loc"] if _is_data_path(part))
        message, at_key = _describe(error)
        if error.get("type") == "extra_forbidden" and loc:
            message = f"unknown key {loc[-1]!r}"
            if error.get("ctx", {}).get("expected"):
                message += f" (expected one of {error['ctx']['expected']})"
        line, col = doc.locate(loc) if at_key else doc.locate_value(loc)
        where = format_path(loc)
        problems.append(Problem(name, line, col, f"{where}: {message}" if where else message))
    return problems


def _is_data_path(part: Any) -> bool:
    # pydantic inserts validator names ("function-after[...]", union member tags) into locs.
    return isinstance(part, int) or (isinstance(part, str) and "[" not in part)
