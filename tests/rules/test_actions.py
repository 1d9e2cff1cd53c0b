"""Phone actions: number normalisation, the dialling policy, rule notation, per-user checks."""

from __future__ import annotations

import pytest

from rules.actions import (
    ForwardPolicy,
    check_forward,
    format_action,
    normalize_number,
    parse_action,
    validate_for_user,
)
from rules.errors import CalrefError, InvalidActionError
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
    ("raw", "dialled"),
    [
        ("4711", "4711"),
        ("123456", "123456"),
        ("0701234567", "00701234567"),
        ("070-123 45 67", "00701234567"),
        ("070.123.45.67", "00701234567"),
        ("(08) 123 456 78", "00812345678"),
        ("+46701234567", "00701234567"),
        ("+46 70 123 45 67", "00701234567"),
        ("0046701234567", "00701234567"),
        ("+4478123456789", "0004478123456789"),
        ("004478123456789", "0004478123456789"),
    ],
)
def test_normalize_number_table(raw: str, dialled: str) -> None:
    assert normalize_number(raw, POLICY) == dialled


def test_normalize_uses_the_policys_trunk_prefix() -> None:
    policy = ForwardPolicy(trunk_prefix="9")
    assert normalize_number("0701234567", policy) == "90701234567"
    assert normalize_number("+4478123456789", policy) == "9004478123456789"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty number"),
        ("  - ", "empty number"),
        ("1234567", "neither an extension"),
        ("012345", "too short"),
        ("07012345678901", "too long"),
        ("070-ABC", "contains 'A'"),
        ("+46-70x", "only contain digits"),
        ("+123", "wrong length"),
    ],
)
def test_normalize_rejects_what_is_not_a_number(raw: str, why: str) -> None:
    with pytest.raises(InvalidActionError) as err:
        normalize_number(raw, POLICY)
    assert why in str(err.value)
    assert repr(raw) in str(err.value)
    assert isinstance(err.value, CalrefError)


@pytest.mark.parametrize("raw", ["0900123456", "0939-123456", "+46944123456", "0991234567"])
def test_premium_rate_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidActionError) as err:
        check_forward(raw, POLICY)
    assert err.value.why == "premium-rate number"


def test_international_numbers_are_refused_unless_allowed() -> None:
    with pytest.raises(InvalidActionError) as err:
        check_forward("+4478123456789", POLICY)
    assert err.value.why == "international number"
    allowed = ForwardPolicy(allow_international=True)
    assert check_forward("+4478123456789", allowed) == "0004478123456789"


def test_swedish_number_written_internationally_is_not_international() -> None:
    assert check_forward("+46701234567", POLICY) == "00701234567"


def test_allow_list_limits_external_numbers_but_not_extensions() -> None:
    policy = ForwardPolicy(allowed_prefixes=("070", "08"))
    assert check_forward("070 123 45 67", policy) == "00701234567"
    assert check_forward("08-12345678", policy) == "00812345678"
    assert check_forward("4711", policy) == "4711"
    with pytest.raises(InvalidActionError) as err:
        check_forward("0311234567", policy)
    assert err.value.why == "not on the allow-list"


def test_allow_list_can_name_foreign_prefixes_with_a_plus() -> None:
    policy = ForwardPolicy(allow_international=True, allowed_prefixes=("+4420",))
    assert check_forward("+442071234567", policy) == "000442071234567"
    with pytest.raises(InvalidActionError, match="not on the allow-list"):
        check_forward("+4478123456789", policy)


def test_premium_rate_is_refused_even_when_on_the_allow_list() -> None:
    policy = ForwardPolicy(allowed_prefixes=("09",))
    with pytest.raises(InvalidActionError, match="premium-rate"):
        check_forward("0900123456", policy)


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
