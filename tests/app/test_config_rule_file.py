"""Reading a rule file from disk (``sync.config.load_rules``): its path names every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import RuleFileError
from sync.config import load_rules

MINIMAL = """\
version: 1
rules:
  - name: all
    referral: {reason: meeting}
"""


def test_load_rules_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_rules(path).source == str(path)
    path.write_text(MINIMAL.replace("meeting", "meting"), encoding="utf-8")
    with pytest.raises(RuleFileError, match=rf"^{path}:4:"):
        load_rules(path)


def test_missing_rule_file_is_a_rule_file_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_a_rule_file_that_is_not_utf8_is_placed_at_its_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(RuleFileError, match=rf"^{path}:5:6: not UTF-8"):
        load_rules(path)
