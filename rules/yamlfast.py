"""Reading a plain YAML file fast: libyaml's C parser, scalars read as ruamel.yaml reads them.

``load_plain`` parses the file with PyYAML's ``CParser`` (libyaml) and builds plain
Python data from its events itself (no node tree is kept: a 10,000-user config
costs only its data), resolving plain scalars by the YAML 1.2 core
schema exactly as ruamel.yaml's round-trip loader does (``rules/yamlfile.py``).
It only answers for files whose every value reads the same in both: mappings
with string keys met once, sequences, strings, ``null``, ``true``/``false``,
decimal integers without leading zeros, and floats written ``1.5``. Anything
else (a tag, an anchor or alias, a directive, a tab, a merge key, a duplicate key, a timestamp, an
octal or hexadecimal number, nesting deeper than the limit, a syntax error)
makes it return None, and the caller reads the file with ruamel instead, which
also gives every error its place. So a file's meaning and its error messages
never depend on which parser read it.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.resolver import implicit_resolvers

_CParser: Any
try:  # PyYAML built with libyaml
    from yaml import events as _ev
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - then every file is read by ruamel
    _CParser = None

_STR = "tag:yaml.org,2002:str"

_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+")
#: the patterns by which ruamel (YAML 1.2) reads a plain scalar as something other than a string
_SPECIAL = re.compile(
    "|".join(
        f"(?:{regexp.pattern})"
        for versions, tag, regexp, _first in implicit_resolvers
        if (1, 2) in versions and tag != _STR
    ),
    re.VERBOSE,
)
#: text that may hold a tag, an anchor, an alias, a directive or a tab (ruamel refuses some
#: tabs libyaml takes): such a file is left to ruamel whole, even where the match is in a string
_ODD = re.compile(r"[\t!&*]|^%", re.MULTILINE)
_NO_KEY = object()


class _Bail(Exception):
    """The file is not plain: ruamel reads it."""


def load_plain(text: str, max_depth: int) -> tuple[Any] | None:
    """``(data,)`` of a plain YAML file, else None (read it with ruamel)."""
    if _CParser is None or _ODD.search(text):
        return None
    parser = _CParser(text)
    try:
        return (_build(parser, max_depth),)
    except _Bail:
        return None
    except Exception:  # a syntax error, an unreadable character: ruamel says where
        return None
    finally:
        parser.dispose()


def _build(parser: Any, max_depth: int) -> Any:
    """The one document's plain data, from the parser's events."""
    #: the open collections, innermost last, each with the key waiting for its value
    stack: list[list[Any]] = []
    root: Any = None
    documents = 0

    def add(value: Any, *, scalar: bool) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        container = top[0]
        if isinstance(container, list):
            container.append(value)
        elif top[1] is _NO_KEY:
            if not scalar or not isinstance(value, str) or value in container:
                raise _Bail  # a key that is not a string, or a duplicate key
            top[1] = value
        else:
            container[top[1]] = value
            top[1] = _NO_KEY

    while True:
        event = parser.get_event()
        kind = type(event)
        if kind is _ev.ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Bail
            value = _plain(event.value) if event.implicit[0] else event.value
            add(value, scalar=True)
        elif kind is _ev.MappingStartEvent or kind is _ev.SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or len(stack) >= max_depth:
                raise _Bail
            new: Any = {} if kind is _ev.MappingStartEvent else []
            add(new, scalar=False)
            stack.append([new, _NO_KEY])
        elif kind is _ev.MappingEndEvent or kind is _ev.SequenceEndEvent:
            stack.pop()
        elif kind is _ev.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Bail
        elif kind is _ev.StreamEndEvent:
            return root
        elif kind is not _ev.StreamStartEvent and kind is not _ev.DocumentEndEvent:
            raise _Bail  # an alias


def _plain(value: str) -> Any:
    """A plain scalar as ruamel reads it (YAML 1.2 core schema); _Bail where unsure."""
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT.fullmatch(value):
        if len(value) > 4000:
            raise _Bail
        return int(value)
    if _FLOAT.fullmatch(value) and len(value) < 100:
        return float(value)
    if _SPECIAL.match(value):
        raise _Bail
    return value
