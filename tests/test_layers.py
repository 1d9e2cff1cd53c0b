"""Imports point inwards only: rules ← connectors ← sync; inside sync, cli → push → service → store.

Read from the source with ``ast``, so a forbidden import anywhere in a module (a function body,
an ``if TYPE_CHECKING`` block) fails the test with the module and the line that imports upwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The layers from the bottom up; a module may import its own layer and those below it.
LAYERS = (
    ("rules",),
    ("connectors",),
    ("sync.store",),
    ("sync.config",),
    ("sync.service",),
    ("sync.push",),
    ("sync.cli",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    """The index of the deepest layer ``module`` belongs to, or None for outside imports."""
    if module == "sync":  # the namespace package itself sits on top
        return len(LAYERS) - 1
    found = None
    for index, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            found = index
    if found is None and module.startswith("sync."):
        raise AssertionError(f"{module} belongs to no layer; add its package to LAYERS")
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(p for pkg in ("rules", "connectors", "sync") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    own = _layer(_module_name(path))
    assert own is not None
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imports(path)
        if (layer := _layer(name)) is not None and layer > own
    ]
    assert not upward, "\n".join(upward)


def test_no_module_hides_an_import_behind_type_checking() -> None:
    hidden = [
        str(path.relative_to(ROOT)) for path in _modules() if "TYPE_CHECKING" in path.read_text()
    ]
    assert not hidden, f"TYPE_CHECKING back-references in: {', '.join(hidden)}"
