"""Shared test fixtures: paths to the test corpus and the example organisation."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def corpus_dir() -> Path:
    return ROOT / "tests" / "corpus"
