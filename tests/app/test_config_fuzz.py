"""Fuzzing the config loader: whatever the file holds, only the project's own errors come out.

Arbitrary bytes, arbitrary text, arbitrary YAML structures (deep nesting
included) and valid configs with one value or key replaced by something
arbitrary: ``load_config`` either returns or raises ``ConfigError`` whose every
problem names the file, a line and a column. Bounded (``max_examples``) so the
suite runs in seconds; ``CALREF_FUZZ_EXAMPLES=5000`` runs a longer search.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.errors import ConfigError
from sync.config import load_config

EXAMPLES = int(os.environ.get("CALREF_FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALID: dict[str, Any] = {
    "timezone": "Europe/Stockholm",
    "organization": {"domains": ["example.se"]},
    "store": "sqlite:///calref.db",
    "switchboard": {"kind": "http", "url": "http://127.0.0.1:8700", "token_env": "T"},
    "forwarding": {"trunk_prefix": "0", "denied_prefixes": ["0900"]},
    "sync": {"poll_seconds": 60},
    "connections": {
        "caldav": {"url": "https://dav.example.se/", "username": "u", "password_env": "P"},
        "graph": {"tenant_id": "t", "client_id": "c", "client_secret_env": "S"},
    },
    "users": [
        {
            "id": "alice",
            "name": "Alice",
            "email": "alice@example.se",
            "extension": "1234",
            "profiles": [
                {"id": "ext", "name": "Extension", "tags": ["ext"]},
                {"id": "mobile", "name": "Mobile", "number": "0701234567", "tags": ["mobile"]},
            ],
            "calendars": [
                {"kind": "ics", "path": "alice.ics"},
                {"kind": "ics", "url": "https://cal.example.se/a.ics", "timeout": 5},
                {"kind": "caldav", "url": "{email}/calendar/"},
                {"kind": "graph"},
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="calref-fuzz-") as name:
        yield Path(name)


def assert_loads_or_explains(folder: Path, data: bytes, *, check_store: bool = False) -> None:
    path = folder / "calref.yaml"
    path.write_bytes(data)
    try:
        load_config(path, check_store=check_store)
    except ConfigError as err:
        assert err.problems
        for problem in err.problems:
            assert problem.file == str(path)
            assert problem.line is not None and problem.column is not None, problem
            assert problem.message


def test_the_valid_base_config_loads(folder: Path) -> None:
    (folder / "calref.yaml").write_text(json.dumps(VALID), encoding="utf-8")
    assert [u.id for u in load_config(folder / "calref.yaml").users] == ["alice"]


@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes(folder: Path, data: bytes) -> None:
    assert_loads_or_explains(folder, data)


YAMLISH = st.text(
    alphabet=st.sampled_from(
        list("ab01:-[]{},&*!|>'\"#%@`?\n\t .\\/xyz\x00\x85\u2028\ufeff\udcff")
    ),
    max_size=120,
)


@FUZZ
@given(text=st.one_of(YAMLISH, st.text(max_size=200)))
def test_arbitrary_text(folder: Path, text: str) -> None:
    assert_loads_or_explains(folder, text.encode("utf-8", "surrogatepass"))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["ics", "graph", "caldav", "ftp://x/y", "https://", "2026-02-30", "~", "0900"]),
)
KEYS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["kind", "path", "url", "users", "calendars", "id", "store", "connections"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(tree=TREES)
def test_arbitrary_yaml_structures(folder: Path, tree: Any) -> None:
    assert_loads_or_explains(folder, json.dumps(tree).encode())


@FUZZ
@given(
    depth=st.integers(min_value=1, max_value=3000),
    opener=st.sampled_from(["[", "{a: ", "- ", "a:\n"]),
    at=st.sampled_from(["", "users: ", "connections: ", "users: [{calendars: "]),
)
def test_deep_nesting(folder: Path, depth: int, opener: str, at: str) -> None:
    if opener == "a:\n":
        body = "".join(" " * i + "a:\n" for i in range(min(depth, 400)))
    elif opener == "- ":
        body = "- " * depth + "x"
    else:
        body = opener * depth + ("]" if opener == "[" else "}") * depth
    assert_loads_or_explains(folder, (at + body).encode())


def paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key or index path in ``tree``."""
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out += paths(value, (*prefix, index))
    return out


ALL_PATHS = paths(VALID)[1:]


def replaced(tree: Any, path: tuple[Any, ...], value: Any, *, as_key: bool) -> Any:
    """A copy of ``tree`` with the value at ``path`` (or its key, ``as_key``) replaced."""
    tree = json.loads(json.dumps(tree))
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if as_key and isinstance(parent, dict):
        parent[str(value)] = parent.pop(last)
    else:
        parent[last] = value
    return tree


@settings(FUZZ, max_examples=EXAMPLES * 2)
@given(
    path=st.sampled_from(ALL_PATHS),
    value=TREES,
    as_key=st.booleans(),
    flow=st.booleans(),
    check_store=st.booleans(),
)
def test_a_valid_config_with_one_thing_changed(
    folder: Path, path: tuple[Any, ...], value: Any, as_key: bool, flow: bool, check_store: bool
) -> None:
    tree = replaced(VALID, path, value, as_key=as_key)
    if flow:
        text = json.dumps(tree)
    else:
        from io import StringIO

        from ruamel.yaml import YAML

        out = StringIO()
        YAML(typ="safe", pure=True).dump(tree, out)
        text = out.getvalue()
    assert_loads_or_explains(folder, text.encode(), check_store=check_store)


@FUZZ
@given(store=st.one_of(st.text(max_size=40), st.text(max_size=40).map("sqlite:///{}".format)))
def test_arbitrary_stores_with_the_folder_check(folder: Path, store: str) -> None:
    text = json.dumps({**VALID, "store": store})
    assert_loads_or_explains(folder, text.encode(), check_store=True)
