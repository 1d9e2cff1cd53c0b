"""The rule file: YAML positions, validation reporting every problem at once, compilation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticError

from rules.errors import RuleFileError, ValidationError
from rules.model import PhoneAction
from rules.rulefile import default_rules, default_rules_text, parse_rules
from rules.yamlfile import load_yaml, problems_from_pydantic

MINIMAL = """\
version: 1
rules:
  - name: all
    referral: {reason: meeting}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as err:
        parse_rules(text, "rules.yaml")
    return [str(p) for p in err.value.problems]


# --- yamlfile -------------------------------------------------------------------------------


def test_locate_gives_one_based_line_and_column_of_keys_and_items() -> None:
    doc = load_yaml("a:\n  b: [x, y]\n  c:\n    - {d: 1}\n", "f.yaml")
    assert doc.data == {"a": {"b": ["x", "y"], "c": [{"d": 1}]}}
    assert doc.locate(("a",)) == (1, 1)
    assert doc.locate(("a", "b")) == (2, 3)
    assert doc.locate(("a", "b", 1)) == (2, 10)
    assert doc.locate(("a", "c", 0, "d")) == (4, 8)
    assert doc.locate_value(("a", "c", 0, "d")) == (4, 11)


def test_locate_falls_back_to_the_nearest_parent() -> None:
    doc = load_yaml("a:\n  b: 1\n", "f.yaml")
    assert doc.locate(("a", "b", "missing", 3)) == (2, 3)
    assert doc.locate(("zzz",)) == (1, 1)


def test_yaml_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(ValidationError) as err:
        load_yaml("a: 1\nb: [unclosed\n", "bad.yaml")
    (problem,) = err.value.problems
    assert problem.file == "bad.yaml"
    assert problem.line is not None and problem.line >= 2
    assert "YAML syntax" in problem.message


def test_duplicate_yaml_key_is_a_syntax_problem() -> None:
    with pytest.raises(ValidationError, match="duplicate key"):
        load_yaml("a: 1\na: 2\n", "dup.yaml")


@pytest.mark.parametrize("text", ["a: !!int\n", "!!float\n", "a: !!bool\n"])
def test_input_the_yaml_parser_itself_fails_on_is_a_syntax_problem(text: str) -> None:
    # ruamel.yaml raises IndexError / KeyError here; every caller of load_yaml gets a problem
    with pytest.raises(ValidationError) as err:
        load_yaml(text, "odd.yaml")
    (problem,) = err.value.problems
    assert problem.file == "odd.yaml"
    assert problem.message.startswith("YAML syntax: the parser could not read this file (")


def test_problems_from_pydantic_point_at_the_offending_value() -> None:
    class Model(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int
        name: str = ""

    doc = load_yaml("name: x\nport: eighty\nextra: 1\n", "c.yaml")
    with pytest.raises(PydanticError) as err:
        Model.model_validate(doc.data)
    found = sorted(str(p) for p in problems_from_pydantic(err.value, doc))
    assert found[0].startswith("c.yaml:2:7: port: ")
    assert "'eighty'" in found[0]
    assert found[1] == "c.yaml:3:1: extra: unknown key 'extra'"


# --- validation -------------------------------------------------------------------------------


def test_minimal_rule_file_compiles_with_defaults() -> None:
    rules = parse_rules(MINIMAL)
    (rule,) = rules.rules
    assert rule.conditions == ()
    assert rule.referral is not None
    assert rule.referral.start == PhoneAction.none()
    assert rule.referral.end == PhoneAction.none()
    assert rules.private_message == "Busy"
    assert "lunch" in rules.reasons


def test_end_defaults_to_follow_profile_when_start_changes_the_phone() -> None:
    text = "version: 1\nrules:\n  - name: a\n    referral: {reason: sick, start: close}\n"
    referral = parse_rules(text).rules[0].referral
    assert referral is not None
    assert referral.end == PhoneAction.follow_profile()


def test_every_problem_is_reported_at_once_with_line_and_column() -> None:
    text = """\
version: 1
reasons: [meeting, lunch]
rules:
  - name: busy
    when: {show_as: [bsy], subject: ["(unclosed"], colour: red}
    referral: {reason: meeting, start: clsoe, message: "{subjct}"}
  - name: busy
    when:
      duration: {min: 15x}
      weekdays: [mon, fry]
      time: {from: "25:00", to: "17:00"}
    skip: x
    referral: {reason: nap}
  - name: third
    when: {cancelled: "yes"}
    referral: {reason: lunch, end: {forward: 0701234567}, priority: high}
"""
    found = problems_of(text)
    expected = [
        "rules.yaml:5:22: rules[0].when.show_as[0]: unknown value 'bsy'",
        "rules.yaml:5:38: rules[0].when.subject[0]: bad regular expression '(unclosed'",
        "rules.yaml:5:52: rules[0].when.colour: unknown key 'colour'",
        "rules.yaml:6:40: rules[0].referral.start: unknown action 'clsoe' (expected one of none,",
        "rules.yaml:6:56: rules[0].referral.message: unknown template field '{subjct}'",
        "rules.yaml:7:5: rules[1]: rule 'busy' has both skip and referral",
        "rules.yaml:7:11: rules[1].name: duplicate rule name 'busy'",
        "rules.yaml:9:23: rules[1].when.duration.min: bad duration '15x'",
        "rules.yaml:10:23: rules[1].when.weekdays[1]: unknown weekday 'fry'",
        "rules.yaml:11:20: rules[1].when.time.from: bad time of day '25:00'",
        "rules.yaml:13:24: rules[1].referral.reason: unknown reason 'nap' (reasons: meeting, lu",
        "rules.yaml:15:23: rules[2].when.cancelled: Input should be a valid boolean, got 'yes'",
        "rules.yaml:16:36: rules[2].referral.end: write the forward value in quotes",
        "rules.yaml:16:69: rules[2].referral.priority: Input should be a valid integer",
    ]
    assert len(found) == len(expected), "\n".join(found)
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start), f"{line!r} does not start with {start!r}"


def test_top_level_problems() -> None:
    found = problems_of(
        "version: 2\nreasons: [meeting]\ntags:\n  soft: [soft, '#x']\n  close: [soft]\n"
        "absence_codes: {LUN: lunch}\nwhatever: 1\nrules: []\n"
    )
    text = "\n".join(found)
    assert "rules.yaml:1:10: version: Input should be 1, got 2" in text
    assert "rules.yaml:4:16: tags.soft[1]: '#x' cannot be a tag" in text
    assert "rules.yaml:5:11: tags.close[0]: tag word 'soft' is already used by soft" in text
    assert "rules.yaml:6:22: absence_codes.LUN: unknown reason 'lunch' for 'LUN'" in text
    assert "rules.yaml:7:1: whatever: unknown key 'whatever'" in text


def test_rule_without_outcome_or_name() -> None:
    found = problems_of("version: 1\nrules:\n  - when: {private: true}\n")
    assert any("needs an outcome" in p for p in found)
    assert any("rules[0].name: required key is missing" in p for p in found)


def test_duration_min_longer_than_max_is_refused() -> None:
    found = problems_of(
        "version: 1\nrules:\n  - name: a\n    when: {duration: {min: 2h, max: 30m}}\n    skip: x\n"
    )
    assert any("min 2h is longer than max 30m" in p for p in found)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the rule file is empty"),
        ("- a\n- b\n", "not a mapping"),
        ("version: 1\nrules: [\n", "YAML syntax"),
    ],
)
def test_unusable_files_give_one_clear_problem(text: str, message: str) -> None:
    (problem,) = problems_of(text)
    assert message in problem


# --- the packaged defaults --------------------------------------------------------------------


def test_default_rules_text_is_the_packaged_file_verbatim() -> None:
    packaged = Path(__file__).resolve().parents[2] / "rules" / "default_rules.yaml"
    assert default_rules_text() == packaged.read_text(encoding="utf-8")


def test_default_rules_are_in_the_documented_order() -> None:
    names = [r.name for r in default_rules().rules]
    assert names == [
        "cancelled",
        "declined",
        "tentative response",
        "free",
        "tentative",
        "working elsewhere",
        "busy",
        "out of office",
    ]


def test_default_busy_and_out_of_office_outcomes() -> None:
    by_name = {r.name: r for r in default_rules().rules}
    busy, oof = by_name["busy"].referral, by_name["out of office"].referral
    assert busy is not None and oof is not None
    assert (busy.reason, busy.start, busy.end, busy.priority) == (
        "meeting",
        PhoneAction.none(),
        PhoneAction.none(),
        10,
    )
    assert (oof.reason, oof.start, oof.end, oof.priority) == (
        "out_of_office",
        PhoneAction.close(),
        PhoneAction.follow_profile(),
        50,
    )


def test_the_example_in_the_rules_reference_is_valid(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "rules.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert [r.name for r in parse_rules(example, "docs/rules.md").rules] == ["cancelled", "busy"]
