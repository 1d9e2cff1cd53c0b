"""Shared test fixtures: paths to the test corpus and the example organisation.

Hypothesis explores new examples on every local run; under CI (``CI=true``) it
runs derandomized, so a landing is judged on the same examples every time and a
new finding shows up on a developer's machine, not as a random red build.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def corpus_dir() -> Path:
    return ROOT / "tests" / "corpus"
