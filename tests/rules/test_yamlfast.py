"""The fast YAML path (libyaml) reads a file exactly as ruamel's round-trip loader, or not."""

from __future__ import annotations

import pytest

from rules.yamlfast import load_plain
from rules.yamlfile import MAX_DEPTH, _load_tree, _Plain, load_yaml

PLAIN = [
    "a: 1\nb: [x, 'y', 1.5, -3, +4, true, False, ~, null, '', yes, on, Off, NO, y, n]\n",
    "a: [1:30, 12:30:00, 2000-8999, '0701', tRue, NaN]\n",
    "- |\n  text\n- >\n  folded\n",
    "'<<': 1\n",
    "a:\n",
    "",
    "# only a comment\n",
    "a: 123456789012345678901234567890\n",
    "a: -0\nb: 0.5\n",
    "\ufeffa: 1\n",
    'a: "\\u00e9"\n',
    "a: [a, b, ]\n",
    "- a\n- - b\n  - c\n",
    "a: 'it''s'\n",
    "{a: 1, b}",
    "---\na: 1\n...\n",
]
NOT_PLAIN = [
    "a: 0123",
    "a: 0x1f",
    "a: 1e3",
    "a: .inf",
    "a: 2026-01-01",
    "a: 0701234567",
    "a: +0701",
    "a: !!str 123\n",
    "a: &x 1\nb: *x\n",
    "<<: {a: 1}\n",
    "a: 1\na: 2\n",
    "a: [\n",
    "a: 1_000\n",
    "? [a]\n: 1\n",
    "1: a\n",
    "null: a\n",
    "a: 'x\n",
    "a: x\n---\nb: 1\n",
    "%YAML 1.1\n---\na: yes\n",
    "a:\t1\n",
    "a: b: c\n",
    "a: .5\n",
    "a: 5.\n",
    "- " * (MAX_DEPTH + 1) + "x",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_files_read_as_ruamel_reads_them(text: str) -> None:
    fast = load_plain(text, MAX_DEPTH)
    assert fast is not None
    rt, _height = _Plain().convert(_load_tree(text, "f.yaml"))
    assert repr(fast[0]) == repr(rt)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_anything_else_is_left_to_ruamel(text: str) -> None:
    assert load_plain(text, MAX_DEPTH) is None


def test_positions_come_from_the_round_trip_loader_when_asked() -> None:
    doc = load_yaml("a: 1\nb:\n  - {c: x}\n", "f.yaml")
    assert doc.data == {"a": 1, "b": [{"c": "x"}]}
    assert doc.locate_value(("b", 0, "c")) == (3, 9)
    assert doc.locate(("b",)) == (2, 1)
