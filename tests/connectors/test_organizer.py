"""Who counts as the organisation: organizer variants, and one verdict from every connector.

``classify_organizer`` is the one function every connector uses; an address is internal only
when it is exactly one well-formed address on a configured domain (or a subdomain). A missing
organizer is the user's own appointment on their own calendar and external on a shared one,
where tags that forward the phone or switch a profile are then refused.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from organizer_tags import tags_of

from connectors.calendars.base import Mailbox
from connectors.calendars.organizer import classify_organizer, normalize_domain, parse_address
from rules.model import CalendarEvent, OrganizerKind, PhoneAction

OWN = Mailbox("alice", "alice@example.se", ("example.se",), "Europe/Stockholm")
SHARED = replace(OWN, own_calendar=False)
SELF, INTERNAL, EXTERNAL = OrganizerKind.SELF, OrganizerKind.INTERNAL, OrganizerKind.EXTERNAL

MISSING = [None, "", " ", "mailto:", "MAILTO:", "MailTo:  "]
INTERNAL_FORMS = [
    "bob@example.se",
    "BOB@EXAMPLE.SE",
    "mailto:bob@example.se",
    "MAILTO:bob@example.se",
    "MailTo:Bob@Example.Se",
    "bob@example.se.",  # a fully qualified domain's trailing dot
    "mailto:bob@example.se.",
    "bob@sales.example.se",  # a subdomain
    "bob@a.b.sales.example.se",
    "first.last@example.se",
    "o'brien+calendar@example.se",
    "Bob Berg <bob@example.se>",
    '"Berg, Bob" <bob@example.se>',
    '"Bob" <mailto:bob@example.se>',
    "<bob@example.se>",
    "  bob@example.se  ",
    "mailto:bob%2Ex@example.se",  # RFC 6068 percent-encoding: bob.x@example.se
    "åsa@example.se",  # RFC 6531 local part
]
EXTERNAL_FORMS = [
    # more than one @, however hidden
    "evil@vendor.com@example.se",
    "evil@vendor.com?@example.se",
    "mailto:evil@vendor.com?@example.se",
    "mailto:evil%40vendor.com@example.se",
    "evil%40vendor.com@example.se",
    '"evil@vendor.com"@example.se',  # a quoted local part containing @
    '"evil"@example.se',  # any quoted local part
    "bob@example.se@",
    "Eve <evil@vendor.com> <bob@example.se>",
    "Eve <evil@vendor.com>, Bob <bob@example.se>",
    "bob@example.se, evil@vendor.com",
    # source routing and URI extras
    "evil%vendor.com@example.se",
    "vendor.com!evil@example.se",
    "mailto:bob@example.se?subject=hello",
    "mailto:bob@example.se#x",
    "mailto:mailto:bob@example.se",
    "bob@example.se:25",
    "bob@[192.0.2.1]",
    # domains that only look like the organisation's
    "bob@example.se.evil.com",
    "bob@evilexample.se",
    "bob@example.sex",
    "bob@example.com",
    "bob@se",
    "bob@example..se",
    "bob@example.se..",
    "bob@-example.se",
    "bob@exa_mple.se",
    "bob@ｅｘａｍｐｌｅ.se",  # full-width letters
    "bob@exаmple.se",  # Cyrillic а
    "bob@example。se",  # ideographic full stop
    "bob＠example.se",  # full-width @
    "bob@xn--e.se",  # not valid punycode
    # whitespace, control and invisible characters, comments
    "bob @example.se",
    "bob@ example.se",
    "bob@exam ple.se",
    "bob\n@example.se",
    "bob@example.se\r\nX-Evil: 1",
    "bob\x00@example.se",
    "\tbob@example.se",
    "bob\u200b@example.se",
    "bob@example.se\u200b",
    "bob@example.se (comment)",
    "(comment)bob@example.se",
    "bob(comment)@example.se",
    "Bob (Sales) <bob@example.se>",
    # malformed
    "bob",
    "@example.se",
    "bob@",
    "mailto:@example.se",
    "..@example.se",
    ".bob@example.se",
    "bob.@example.se",
    "bob..x@example.se",
    "<bob@example.se>>",
    "Bob <bob@example.se",
    "x" * 65 + "@example.se",
    "mailto:bob@example.se%0A",
    "mailto:%FF@example.se",
]


@pytest.mark.parametrize("organizer", MISSING)
def test_a_missing_organizer_is_the_user_on_their_own_calendar_and_external_on_a_shared_one(
    organizer: str | None,
) -> None:
    assert classify_organizer(organizer, OWN) is SELF
    assert classify_organizer(organizer, SHARED) is EXTERNAL


@pytest.mark.parametrize("organizer", INTERNAL_FORMS)
def test_well_formed_addresses_on_the_domain_or_a_subdomain_are_internal(organizer: str) -> None:
    assert classify_organizer(organizer, OWN) is INTERNAL
    assert classify_organizer(organizer, SHARED) is INTERNAL


@pytest.mark.parametrize("organizer", EXTERNAL_FORMS)
def test_everything_else_is_external_on_any_calendar(organizer: str) -> None:
    assert classify_organizer(organizer, OWN) is EXTERNAL
    assert classify_organizer(organizer, SHARED) is EXTERNAL


@pytest.mark.parametrize(
    "organizer", ["alice@example.se", "mailto:ALICE@Example.SE.", "Alice <mailto:alice@example.se>"]
)
def test_the_users_own_address_is_the_user_on_own_and_shared_calendars(organizer: str) -> None:
    assert classify_organizer(organizer, OWN) is SELF
    assert classify_organizer(organizer, SHARED) is SELF


def test_the_users_own_address_mangled_is_not_the_user() -> None:
    for organizer in (
        "evil@vendor.com@alice@example.se",
        '"alice"@example.se',
        "alice@example.se(",
    ):
        assert classify_organizer(organizer, OWN) is EXTERNAL


def test_only_configured_domains_count_not_the_users_own_domain() -> None:
    lonely = Mailbox("alice", "alice@example.se", ())
    assert classify_organizer("bob@example.se", lonely) is EXTERNAL
    assert classify_organizer("alice@example.se", lonely) is SELF


@pytest.mark.parametrize(
    ("configured", "organizer"),
    [
        ("EXAMPLE.SE", "bob@example.se"),
        ("example.se.", "bob@example.se"),
        ("exämple.se", "bob@xn--exmple-cua.se"),
        ("exämple.se", "bob@EXÄMPLE.se"),
        ("xn--exmple-cua.se", "bob@exämple.se"),
        ("sales.example.se", "bob@eu.sales.example.se"),
    ],
)
def test_configured_domains_compare_case_insensitively_and_idna_aware(
    configured: str, organizer: str
) -> None:
    assert classify_organizer(organizer, Mailbox("a", "a@x.se", (configured,))) is INTERNAL


@pytest.mark.parametrize(
    ("configured", "organizer"),
    [
        ("sales.example.se", "bob@example.se"),  # a parent of a configured domain is not in it
        ("exämple.se", "bob@example.se"),
        ("example.se", "bob@exämple.se"),
    ],
)
def test_other_domains_stay_external(configured: str, organizer: str) -> None:
    assert classify_organizer(organizer, Mailbox("a", "a@x.se", (configured,))) is EXTERNAL


@pytest.mark.parametrize("name", ["", ".", "*.example.se", "@example.se", "exa mple.se", "a_b.se"])
def test_invalid_configured_domains_match_nothing(name: str) -> None:
    assert normalize_domain(name) is None
    assert classify_organizer("bob@example.se", Mailbox("a", "a@x.se", (name,))) is EXTERNAL


_PIECES = st.sampled_from(
    ["bob", "evil", "example.se", "vendor.com", "@", ".", '"', "<", ">", "(", ")", " ", ",",
     "mailto:", "%40", "?", "\n", "\x00", "。", "＠", ":", "se", "-", "+"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=10).map("".join))
def test_internal_always_means_one_address_on_the_domain(text: str) -> None:
    kind = classify_organizer(text, SHARED)
    if kind is INTERNAL:
        address = parse_address(text)
        assert address is not None and address.count("@") == 1
        local, _, domain = address.partition("@")
        assert domain == "example.se" or domain.endswith(".example.se")
        assert not set(local) & set('"<>()@ ,\n\x00%')


# The same event from every connector: no organizer, on an own and on a shared calendar.

SUBJECT = "Planning #fwd:0701234567 #mobile"
WINDOW_START = datetime(2026, 1, 5, tzinfo=UTC)


def _ics(mailbox: Mailbox, organizer_line: str) -> CalendarEvent:
    from connectors.calendars.base import SyncWindow
    from connectors.calendars.ics.parse import parse_ics

    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 16.0//EN\r\n"
        "BEGIN:VEVENT\r\nUID:own-1\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n"
        f"SUMMARY:{SUBJECT}\r\n{organizer_line}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    window = SyncWindow(WINDOW_START, datetime(2026, 1, 12, tzinfo=UTC))
    (event,) = parse_ics(text, mailbox=mailbox, window=window, source="ics:test")
    return event


def _graph(mailbox: Mailbox, organizer: Any) -> CalendarEvent:
    from graph_doubles import event_json

    from connectors.calendars.graph.mapping import to_event

    item = event_json("AAMkX=", SUBJECT, organizer=organizer, isOrganizer=False)
    if organizer is None:
        del item["organizer"]
    return to_event(item, mailbox, "graph:test")


def _google(mailbox: Mailbox, organizer: Any) -> CalendarEvent:
    from gcal_doubles import event

    from connectors.calendars.google.mapping import EventMapper

    item = event("g1", "2026-01-05T10:00:00+01:00", "2026-01-05T11:00:00+01:00", summary=SUBJECT)
    if organizer is None:
        del item["organizer"]
    else:
        item["organizer"] = organizer
    return EventMapper("google:test", mailbox).event(item)


ICS_MISSING = ["", "ORGANIZER:\r\n", "ORGANIZER:mailto:\r\n", "ORGANIZER;CN=Someone:MAILTO:\r\n"]


@pytest.mark.parametrize("line", ICS_MISSING)
def test_ics_without_organizer_mobile_works_on_the_own_calendar(line: str) -> None:
    out = tags_of(_ics(OWN, line))
    assert out.end_action == PhoneAction.profile_switch("mob")
    assert out.start_action == PhoneAction.forward("00701234567")
    assert out.refused == ()


@pytest.mark.parametrize("line", ICS_MISSING)
def test_ics_without_organizer_on_a_shared_calendar_is_external(line: str) -> None:
    event = _ics(SHARED, line)
    assert event.organizer_kind is EXTERNAL
    out = tags_of(event)
    assert (out.start_action, out.end_action) == (None, None)
    assert [r.tag for r in out.refused] == ["#fwd:0701234567", "#mobile"]


@pytest.mark.parametrize(
    "line",
    [
        "ORGANIZER:mailto:evil@vendor.com@example.se\r\n",
        "ORGANIZER;CN=Eve:mailto:evil@vendor.com?@example.se\r\n",
        'ORGANIZER:mailto:"evil@vendor.com"@example.se\r\n',
        "ORGANIZER:mailto:eve@example.se.evil.com\r\n",
    ],
)
def test_ics_hostile_organizers_are_external_on_the_own_calendar_too(line: str) -> None:
    event = _ics(OWN, line)
    assert event.organizer_kind is EXTERNAL
    assert tags_of(event).end_action is None


@pytest.mark.parametrize("organizer", [None, {}, {"emailAddress": {"name": "X", "address": ""}}])
def test_graph_without_organizer_own_versus_shared(organizer: Any) -> None:
    assert _graph(OWN, organizer).organizer_kind is SELF
    assert tags_of(_graph(OWN, organizer)).end_action == PhoneAction.profile_switch("mob")
    shared = _graph(SHARED, organizer)
    assert shared.organizer_kind is EXTERNAL
    out = tags_of(shared)
    assert (out.start_action, out.end_action) == (None, None)
    assert len(out.refused) == 2


def test_graph_hostile_organizer_is_external() -> None:
    hostile = {"emailAddress": {"name": "Eve", "address": "evil@vendor.com@example.se"}}
    assert _graph(OWN, hostile).organizer_kind is EXTERNAL


@pytest.mark.parametrize("organizer", [None, {}, {"email": ""}])
def test_google_without_organizer_own_versus_shared(organizer: Any) -> None:
    assert _google(OWN, organizer).organizer_kind is SELF
    shared = _google(SHARED, organizer)
    assert shared.organizer_kind is EXTERNAL
    assert len(tags_of(shared).refused) == 2


def test_google_organizer_self_is_the_user_only_on_their_own_calendar() -> None:
    secondary = {"email": "c_8f2a@group.calendar.google.com", "displayName": "Gym", "self": True}
    assert _google(OWN, secondary).organizer_kind is SELF
    assert tags_of(_google(OWN, secondary)).end_action == PhoneAction.profile_switch("mob")
    assert _google(SHARED, secondary).organizer_kind is EXTERNAL
    team = {"email": "team@example.se", "self": True}
    assert _google(SHARED, team).organizer_kind is INTERNAL


def test_google_hostile_organizer_is_external() -> None:
    assert _google(OWN, {"email": "evil@vendor.com?@example.se"}).organizer_kind is EXTERNAL


# The `shared:` key of a calendar entry, read centrally by the config loader.

CONFIG = """\
organization:
  domains: [example.se]
connections:
  caldav: {{url: "https://dav.example.se/"}}
users:
  - id: alice
    name: Alice
    email: alice@example.se
    extension: "1234"
    profiles:
      - {{id: mobile, name: Mobile, number: "0701234567", tags: [mobile]}}
    calendars:
      - {{kind: ics, path: own.ics}}
      - {{kind: ics, path: team.ics, shared: true}}
      - {{kind: ics, path: also-own.ics, shared: false}}
      - {{kind: caldav, url: team/, name: team, shared: {shared}}}
"""
NO_ORGANIZER = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n"
    "SUMMARY:Dentist #mobile\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _config(tmp_path: Any, shared: str = "true") -> Any:
    from sync.config import load_config

    for name in ("own.ics", "team.ics", "also-own.ics"):
        (tmp_path / name).write_text(NO_ORGANIZER, encoding="utf-8")
    path = tmp_path / "calref.yaml"
    path.write_text(CONFIG.format(shared=shared), encoding="utf-8")
    return load_config(path)


def test_shared_calendars_get_a_mailbox_that_is_not_the_users_own(tmp_path: Any) -> None:
    from connectors.calendars.base import SyncWindow

    app = _config(tmp_path)
    window = SyncWindow(WINDOW_START, datetime(2026, 1, 12, tzinfo=UTC))
    own, team, also_own = (source.sync(window, None) for source in app.sources("alice")[:3])
    assert [e.organizer_kind for e in own.events] == [SELF]
    assert [e.organizer_kind for e in team.events] == [EXTERNAL]
    assert [e.organizer_kind for e in also_own.events] == [SELF]
    caldav = app.sources("alice")[3]
    assert caldav._mailbox.own_calendar is False  # the connector's own key list never saw it


@pytest.mark.parametrize("value", ['"yes"', "1", "[true]", "null"])
def test_shared_must_be_true_or_false_and_is_reported_where_it_stands(
    tmp_path: Any, value: str
) -> None:
    from rules.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, value)
    message = str(caught.value)
    assert "calref.yaml:16:48:" in message and "shared must be true" in message


@pytest.mark.parametrize("domain", ["@example.se", "*.example.se", "exa mple.se", ""])
def test_organisation_domains_must_be_domain_names(tmp_path: Any, domain: str) -> None:
    from rules.errors import ConfigError
    from sync.config import load_config

    path = tmp_path / "calref.yaml"
    path.write_text(f'organization:\n  domains: ["{domain}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a domain name"):
        load_config(path)


def test_the_calendar_entries_in_docs_organisation_md_are_valid() -> None:
    import re
    from pathlib import Path

    from ruamel.yaml import YAML

    from connectors.calendars.base import split_shared
    from sync.config.calendars import CONNECTORS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "organisation.md").read_text("utf-8")
    blocks = [YAML(typ="safe").load(b) for b in re.findall(r"```yaml\n(.*?)```", doc, re.S)]
    entries = [e for b in blocks for u in b.get("users", []) for e in u["calendars"]]
    assert {e["kind"] for e in entries} == {"graph", "ics", "ews", "caldav", "google"}
    for raw in entries:
        entry, shared = split_shared(raw)
        assert shared is (raw.get("shared") is True)
        CONNECTORS[entry["kind"]].CalendarConfig.model_validate(entry)


def test_overlong_organizers_are_external_and_not_parsed() -> None:
    local = "a" * 60
    assert classify_organizer(f"{local}@example.se", OWN) is INTERNAL
    display = "B" * 600
    assert classify_organizer(f"{display} <bob@example.se>", OWN) is EXTERNAL


def test_an_entry_reading_another_mailbox_is_never_the_users_own() -> None:
    from connectors.calendars.organizer import is_own_calendar

    assert is_own_calendar({"kind": "graph"}, False, "alice@example.se")
    assert is_own_calendar(
        {"kind": "graph", "mailbox": "Alice@Example.se"}, False, "alice@example.se"
    )
    assert not is_own_calendar({"kind": "graph"}, True, "alice@example.se")
    for other in ("reception@example.se", "alice@example.se.evil.com", "not an address"):
        entry = {"kind": "ews", "mailbox": other}
        assert not is_own_calendar(entry, False, "alice@example.se")
