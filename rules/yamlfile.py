"""YAML files that remember where each value came from, for error messages with line and column.

``load_yaml`` hands out plain Python data and finds positions for
``YamlDocument.locate``. The data comes from libyaml's C parser (PyYAML's
``CParser``, about 20 times faster than a pure-Python parser, see ``yamlfast.py``) when
the file keeps to plain mappings, sequences and YAML 1.2 scalars that read the
same in every loader; anything else (an anchor, a tag, a duplicate key, a syntax
error, an unusual number) is read by ruamel.yaml's round-trip loader as before.
The positions come from that round-trip loader (which records the line and
column of every key and item), run only when something asks for a position:
a file without problems is parsed once, fast. ``problems_from_pydantic`` turns a
pydantic validation error over that data into ``Problem``s pointing into the
file. Nothing here knows about rule files or config files.

Hostile input never escapes as anything but ``ValidationError`` with a place:
bytes that are not UTF-8 (``decode_text``), characters YAML forbids, values
the constructor cannot build (``!!int abc``, ``2026-02-30``, a 5000-digit
number), nesting deeper than ``MAX_DEPTH`` (also through aliases), and an
alias that contains itself. Aliases are not expanded: a value reached through
several aliases is one shared object, so an alias bomb stays as small as its text.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.reader import ReaderError

from rules import yamlfast
from rules.errors import Problem, ValidationError

PathPart = str | int
Path = tuple[PathPart, ...]
Position = tuple[int | None, int | None]

#: the deepest nesting of mappings and sequences accepted (config and rule files need < 10)
MAX_DEPTH = 64


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: plain ``data`` plus the positions of its keys and items.

    ``_tree`` is ruamel's round-trip tree; None until a position is first asked
    for, when it is parsed from ``_text`` (and kept in ``_cache``).
    """

    filename: str
    data: Any
    _tree: Any
    _text: str | None = None
    _cache: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def tree(self) -> Any:
        """The round-trip tree (with positions), parsed on first use."""
        if self._tree is not None or self._text is None:
            return self._tree
        if not self._cache:
            try:
                self._cache.append(_load_tree(self._text, self.filename))
            except ValidationError:
                self._cache.append(None)  # libyaml read what ruamel cannot: no positions
        return self._cache[0]

    def locate(self, path: Sequence[PathPart]) -> Position:
        """1-based (line, column) of the key or item at ``path``, else of the nearest parent."""
        return self._find(path, value=False)

    def locate_value(self, path: Sequence[PathPart]) -> Position:
        """1-based (line, column) of the value at ``path``, else of the nearest parent."""
        return self._find(path, value=True)

    def _find(self, path: Sequence[PathPart], *, value: bool) -> Position:
        node = self.tree
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


def decode_text(data: bytes, filename: str) -> str:
    """``data`` as UTF-8 text (a BOM is dropped); else ValidationError at the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line, col = _line_col(data[: err.start].decode("utf-8", "replace"))
        raise ValidationError(
            [Problem(filename, line, col, f"not UTF-8 text (byte 0x{data[err.start]:02x})")]
        ) from None


def _line_col(before: str) -> tuple[int, int]:
    """1-based line and column just after ``before`` (the text preceding a position)."""
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


class _TooDeep(Exception):
    def __init__(self, node: Any, message: str) -> None:
        self.node = node
        self.message = message


class _Plain:
    """Plain Python data from ruamel's round-trip tree, without expanding aliases.

    Every container is converted once (``_done``), so a value reached through many
    aliases is shared, and the tree's height is checked against ``MAX_DEPTH`` at
    each use; a container met again while it is being converted is an alias cycle.
    """

    def __init__(self) -> None:
        self._done: dict[int, tuple[Any, int]] = {}  # id(node) -> (plain value, height)
        self._open: set[int] = set()

    def convert(self, node: Any, depth: int = 1) -> tuple[Any, int]:
        if not isinstance(node, dict | list):
            return _scalar(node), 0
        key = id(node)
        if key in self._open:
            raise _TooDeep(node, "an alias refers to a value that contains it")
        if key not in self._done:
            if depth > MAX_DEPTH:
                raise _TooDeep(node, f"nested deeper than {MAX_DEPTH} levels")
            self._open.add(key)
            height = 0
            value: Any
            if isinstance(node, dict):
                value = {}
                for k, v in node.items():
                    plain_v, h = self.convert(v, depth + 1)
                    value[_scalar(k)] = plain_v
                    height = max(height, h)
            else:
                value = []
                for v in node:
                    plain_v, h = self.convert(v, depth + 1)
                    value.append(plain_v)
                    height = max(height, h)
            self._open.discard(key)
            self._done[key] = (value, height + 1)
        value, height = self._done[key]
        if depth + height - 1 > MAX_DEPTH:
            raise _TooDeep(node, f"nested deeper than {MAX_DEPTH} levels (through an alias)")
        return value, height


def _scalar(node: Any) -> Any:
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


class _Constructor(RoundTripConstructor):
    """The round-trip constructor, but a value it cannot build is a YAML error with a place."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as err:
            if isinstance(err, YAMLError):
                raise
            why = str(err).split(";")[0]
            if "Exceeds the limit" in why:
                why = f"a number longer than {sys.get_int_max_str_digits()} digits"
            message = f"cannot read the value: {why}"
            raise ConstructorError(None, None, message, node.start_mark) from None


def _deep_mark(yaml: YAML, text: str) -> Position | None:
    """Where ``text`` first nests deeper than ``MAX_DEPTH`` (the parser does not recurse)."""
    depth = 0
    try:
        for event in yaml.parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1, event.start_mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        pass
    return None


_BRACKETS = re.compile(r"[\[\]{}]")


def _deep_flow(text: str) -> int | None:
    """The offset of the first ``[`` or ``{`` that may nest deeper than ``MAX_DEPTH``, if any.

    Brackets in quoted text count too, so this only says where to look: ruamel's
    scanner is quadratic in flow nesting (30 s at 3000 levels), so a deep flow
    collection is found by parsing only the text up to here.
    """
    depth = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif depth:
            depth -= 1
    return None


def load_yaml(text: str, filename: str) -> YamlDocument:
    """Parse ``text``; a syntax error (or a duplicate key) raises ValidationError with its place.

    Fast (libyaml) when the file is plain; ruamel's round-trip loader otherwise.
    """
    if _deep_flow(text) is None:
        fast = yamlfast.load_plain(text, MAX_DEPTH)
        if fast is not None:
            return YamlDocument(filename, fast[0], None, text)
    tree = _load_tree(text, filename)
    try:
        data, _height = _Plain().convert(tree)
    except _TooDeep as exc:
        line, col = _node_position(exc.node)
        raise ValidationError(
            [Problem(filename, line, col, f"YAML syntax: {exc.message}")]
        ) from None
    return YamlDocument(filename, data, tree)


def _load_tree(text: str, filename: str) -> Any:
    """ruamel's round-trip tree of ``text``; ValidationError with a place when it is not YAML."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor

    def fail(line: int | None, col: int | None, what: str) -> ValidationError:
        return ValidationError([Problem(filename, line, col, f"YAML syntax: {what}")])

    deep = _deep_flow(text)
    if deep is not None:
        place = _deep_mark(yaml, text[: deep + 1])
        if place is not None:
            raise fail(*place, f"nested deeper than {MAX_DEPTH} levels")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        if "duplicate key" in str(exc):
            what = "duplicate key " + str(exc).split("duplicate key", 1)[1].split("\n")[0].strip()
        raise fail(line, col, what) from None
    except ReaderError as exc:
        line, col = _line_col(text[: exc.position] if isinstance(exc.position, int) else "")
        char = exc.character if isinstance(exc.character, int) else 0
        raise fail(line, col, f"character U+{char:04X} is not allowed in YAML") from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise fail(1, 1, first) from None
    except RecursionError:
        place = _deep_mark(yaml, text) or (1, 1)
        raise fail(*place, f"nested deeper than {MAX_DEPTH} levels") from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as err:
        # ruamel.yaml itself fails on some malformed input (``!!int`` with no value raises
        # IndexError): that is a file it cannot read, not a crash of ours
        what = f"the parser could not read this file ({type(err).__name__})"
        raise fail(None, None, what) from None
    return tree


def _node_position(node: Any) -> Position:
    try:
        return node.lc.line + 1, node.lc.col + 1
    except (AttributeError, TypeError):
        return 1, 1


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
