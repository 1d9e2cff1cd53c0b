"""The ``forwarding:`` block of the config file becomes the ForwardPolicy, errors located."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.dialling import ForwardPolicy, check_forward
from rules.errors import ConfigError, RuleFileError
from sync.config import load_config

EXAMPLE = Path(__file__).parents[2] / "deploy" / "calref.example.yaml"


def config(tmp_path: Path, forwarding: str) -> Path:
    path = tmp_path / "calref.yaml"
    path.write_text(f"forwarding:\n{forwarding}", encoding="utf-8")
    return path


def test_the_default_block_is_the_default_policy(tmp_path: Path) -> None:
    path = tmp_path / "calref.yaml"
    path.write_text("timezone: Europe/Stockholm\n", encoding="utf-8")
    assert load_config(path).policy == ForwardPolicy()


def test_the_example_config_spells_out_the_default_policy() -> None:
    import ruamel.yaml

    block = ruamel.yaml.YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8"))["forwarding"]
    policy = ForwardPolicy(
        trunk_prefix=block["trunk_prefix"],
        allow_international=block["allow_international"],
        allowed_prefixes=tuple(block["allowed_prefixes"]),
        denied_prefixes=tuple(block["denied_prefixes"]),
        extensions=tuple(block["extensions"]),
    )
    assert policy == ForwardPolicy()


def test_the_block_widens_the_policy(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "  allow_international: true\n"
        '  allowed_prefixes: ["07", "08", "+47"]\n'
        '  extensions: ["100-199", "4700-4799"]\n',
    )
    policy = load_config(path).policy
    assert check_forward("+47 22 12 34 56", policy) == "0004722123456"
    assert check_forward("150", policy) == "150"
    assert check_forward("0771234567", policy) == "00771234567"


@pytest.mark.parametrize(
    ("block", "where", "message"),
    [
        ('  allowed_prefixes: ["070", "70"]\n', "2:29", "bad prefix '70'"),
        ('  denied_prefixes: ["09x"]\n', "2:21", "bad prefix '09x'"),
        ('  extensions: ["2000-899"]\n', "2:16", "same number of digits"),
        ('  extensions: ["0100-0199"]\n', "2:16", "starts with 0"),
        ('  trunk_prefix: "٠"\n', "2:", "trunk_prefix"),
        ('  trunk_prefix: "9"\n  extensions: ["9000-9999"]\n', "2:", "trunk prefix"),
        ("  extensions: 5\n", "2:", "extensions"),
        ("  allowed_prefixes: {a: 1}\n", "2:", "allowed_prefixes"),
    ],
)
def test_bad_settings_are_located_errors(
    tmp_path: Path, block: str, where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(config(tmp_path, block))
    text = str(err.value)
    assert f"calref.yaml:{where}" in text
    assert message in text


def test_rule_file_forward_numbers_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - name: a\n"
        '    referral: {reason: meeting, start: "forward: 0900123456", end: {forward: "112"}}\n'
        "  - name: b\n"
        '    referral: {reason: meeting, start: "forward:070-123 45 67"}\n',
        encoding="utf-8",
    )
    path = tmp_path / "calref.yaml"
    path.write_text("rules: rules.yaml\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as err:
        load_config(path)
    assert [str(p).split("rules.yaml", 1)[1] for p in err.value.problems] == [
        ":4:40: rules[0].referral.start: forward number '0900123456': premium-rate number",
        ":4:68: rules[0].referral.end: forward number '112': emergency or service number"
        " (11-series: 112, 113 13, 114 14, 1177, 116 xxx, 118 xxx)",
    ]
    path.write_text('rules: rules.yaml\nforwarding: {denied_prefixes: ["0900"]}\n')
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n"
        "  - {name: b, referral: {reason: meeting, start: 'forward:0701234567'}}\n"
    )
    assert load_config(path).rules.forwards[0][0] == "0701234567"
