"""Phone actions: the rule-file notation and per-user checks (numbers: test_dialling.py)."""

from __future__ import annotations

import pytest

from rules.actions import ForwardPolicy, format_action, parse_action, validate_for_user
from rules.errors import InvalidActionError
from rules.model import ActionKind, PhoneAction, Profile, User

POLICY = ForwardPolicy()
USER = User(
    "u1",
    "Ann",
    "ann@example.se",
    "4711",
    (Profile("ext", "Extension"), Profile("mob", "Mobile", "0701234567", ("mobile", "mobil"))),
)


@pytest.mark.parametrize(
    ("spec", "action"),
    [
        ("none", PhoneAction.none()),
        ("follow_profile", PhoneAction.follow_profile()),
        ("open", PhoneAction.open()),
        ("CLOSE", PhoneAction.close()),
        ("forward:0701234567", PhoneAction.forward("0701234567")),
        ("forward: 070-123 45 67", PhoneAction.forward("070-123 45 67")),
        ("profile_switch:mobile", PhoneAction.profile_switch("mobile")),
        ({"forward": "+46701234567"}, PhoneAction.forward("+46701234567")),
        ({"profile_switch": "mob"}, PhoneAction.profile_switch("mob")),
    ],
)
def test_parse_action_reads_the_rule_file_notation(spec: object, action: PhoneAction) -> None:
    assert parse_action(spec) == action


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("clsoe", "unknown action 'clsoe'"),
        ("forward:", "forward needs a phone number"),
        ("forward:call me", "forward needs a phone number"),
        ("forward:0٩٠٠123456", "forward needs a phone number"),
        ("forward:０７０１２３４５６７", "forward needs a phone number"),
        ("forward:070.123.45.67", "forward needs a phone number"),
        ("forward:0701234567p1", "forward needs a phone number"),
        ({"forward": "*21*0701234567#"}, "forward needs a phone number"),
        ("profile_switch:", "profile_switch needs a profile name"),
        ({"forward": 701234567}, "in quotes"),
        ({"forward": "1", "open": "x"}, "exactly one key"),
        ({"redirect": "1"}, "unknown action 'redirect'"),
        (42, "text or a mapping"),
        (None, "text or a mapping"),
    ],
)
def test_parse_action_explains_bad_specs(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_action(spec)


@pytest.mark.parametrize(
    "action",
    [PhoneAction.close(), PhoneAction.forward("0701234567"), PhoneAction.profile_switch("m")],
)
def test_format_action_round_trips(action: PhoneAction) -> None:
    assert parse_action(format_action(action)) == action


def test_validate_profile_switch_resolves_id_name_or_tag() -> None:
    for name in ("mob", "Mobile", "MOBIL"):
        result = validate_for_user(PhoneAction.profile_switch(name), USER, POLICY)
        assert result == PhoneAction.profile_switch("mob")


def test_validate_profile_switch_to_an_unknown_profile_is_refused() -> None:
    with pytest.raises(InvalidActionError) as err:
        validate_for_user(PhoneAction.profile_switch("desk"), USER, POLICY)
    assert err.value.why == "unknown profile 'desk'"
    assert "ext, mob" in str(err.value)


def test_validate_forward_normalises_and_applies_the_policy() -> None:
    result = validate_for_user(PhoneAction.forward("070-123 45 67"), USER, POLICY)
    assert result == PhoneAction.forward("00701234567")
    with pytest.raises(InvalidActionError, match="premium-rate"):
        validate_for_user(PhoneAction.forward("0900123456"), USER, POLICY)


def test_validate_passes_simple_actions_through() -> None:
    for kind in (ActionKind.NONE, ActionKind.OPEN, ActionKind.CLOSE, ActionKind.FOLLOW_PROFILE):
        assert validate_for_user(PhoneAction(kind), USER, POLICY) == PhoneAction(kind)
