"""EWS connector at the SOAP level: the calls it makes, window reads, and error mapping.

The cases every source shares (including ErrorServerBusy) are in ``test_ews_contract``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from ews_doubles import calendar_item, error_message, soap_fault
from ews_fixture import Harness, harness

from connectors.calendars.base import SyncWindow
from rules.errors import CalendarError, is_retryable


@pytest.fixture
def ews(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    yield from harness(monkeypatch)


WINDOW = SyncWindow(datetime(2026, 1, 5, 7, 0, tzinfo=UTC), datetime(2026, 1, 12, 7, 0, tzinfo=UTC))
A1 = calendar_item("a1", "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", subject="Standup")
B1 = calendar_item("b1", "2026-01-07T12:00:00Z", "2026-01-07T13:30:00Z", subject="Review")


def test_a_sync_reads_the_window_with_calendar_view_and_impersonation(ews: Harness) -> None:
    ews.server.items = [A1, B1]
    result = ews.source().sync(WINDOW, None)
    assert result.full is True
    assert sorted(e.subject for e in result.events) == ["Review", "Standup"]
    assert ews.server.operations == ["FindItem", "GetItem"]  # no GetFolder: see calendar_folder
    find = ews.server.bodies[0]
    assert '<m:CalendarView StartDate="2026-01-05T07:00:00Z" EndDate="2026-01-12T07:00:00Z"' in find
    assert "<t:PrimarySmtpAddress>alice@example.se</t:PrimarySmtpAddress>" in find
    assert '<t:TimeZoneDefinition Id="W. Europe Standard Time"/>' in find
    assert 'RequestServerVersion Version="Exchange2016"' in find


def test_delegate_access_with_reviewer_rights_on_the_calendar_folder_alone(ews: Harness) -> None:
    ews.server.items = [A1, B1]
    result = ews.source(access_type="delegate").sync(WINDOW, None)
    assert sorted(e.subject for e in result.events) == ["Review", "Standup"]
    assert ews.server.operations == ["FindItem", "GetItem"]
    find = ews.server.bodies[0]
    assert "ExchangeImpersonation" not in find
    assert '<t:DistinguishedFolderId Id="calendar"><t:Mailbox>' in find
    assert "<t:EmailAddress>alice@example.se</t:EmailAddress>" in find


def test_the_double_refuses_a_delegate_what_exchange_refuses(ews: Harness) -> None:
    """exchangelib's account.calendar opens the mailbox root first: a Reviewer may not."""
    from exchangelib.errors import ErrorAccessDenied

    from connectors.calendars.ews.client import make_account_factory
    from connectors.calendars.ews.config import EwsConnectionConfig

    conn = EwsConnectionConfig(
        service_endpoint=ews.endpoint,
        username="EXAMPLE\\svc-calref",
        password_env="CALREF_TEST_EWS_PASSWORD",
        access_type="delegate",
    )
    account = make_account_factory(conn, "alice@example.se")()
    with pytest.raises(ErrorAccessDenied):
        _ = account.calendar
    assert ews.server.operations[0] == "GetFolder"
    assert 'DistinguishedFolderId Id="root"' in ews.server.bodies[0]
    impersonating = make_account_factory(
        conn.model_copy(update={"access_type": "impersonation"}), "alice@example.se"
    )()
    assert impersonating.calendar.name == "Calendar"  # the impersonated user may


def test_a_delegate_without_rights_on_the_calendar_gets_a_clear_error(ews: Harness) -> None:
    ews.server.delegate_folders = ()
    with pytest.raises(CalendarError, match="Reviewer rights") as caught:
        ews.source(access_type="delegate").sync(WINDOW, None)
    assert not is_retryable(caught.value)


def test_later_polls_reuse_the_account_and_cost_one_find_and_one_get(ews: Harness) -> None:
    ews.server.items = [A1]
    source = ews.source()
    first = source.sync(WINDOW, None)
    ews.server.operations.clear()
    second = source.sync(WINDOW, first.state)
    assert second.full is True
    assert ews.server.operations == ["FindItem", "GetItem"]
    assert [e.key for e in second.events] == [e.key for e in first.events]


def test_requests_ask_only_for_the_needed_properties(ews: Harness) -> None:
    ews.server.items = [A1]
    ews.source().sync(WINDOW, None)
    get = ews.server.bodies[1]
    for uri in (
        "item:Subject",
        "calendar:Start",
        "calendar:End",
        "calendar:IsAllDayEvent",
        "calendar:LegacyFreeBusyStatus",
        "calendar:MyResponseType",
        "item:Sensitivity",
        "calendar:IsCancelled",
        "item:Categories",
        "calendar:Organizer",
        "calendar:UID",
    ):
        assert f'FieldURI="{uri}"' in get
    assert "item:Body" not in get and "AllProperties" not in get


def test_items_ending_exactly_at_the_window_start_are_left_out(ews: Harness) -> None:
    ews.server.items = [calendar_item("x", "2026-01-05T06:00:00Z", "2026-01-05T07:00:00Z"), A1]
    result = ews.source().sync(WINDOW, None)
    assert [e.uid for e in result.events] == ["A1-UID"]


def test_impersonation_denied_names_the_role_to_grant(ews: Harness) -> None:
    ews.server.push(
        "FindItem",
        500,
        soap_fault(
            "ErrorImpersonateUserDenied",
            "The account does not have permission to impersonate the requested user.",
        ),
    )
    with pytest.raises(CalendarError, match="ApplicationImpersonation") as caught:
        ews.source().sync(WINDOW, None)
    assert not is_retryable(caught.value)


def test_unknown_mailbox_is_a_clear_error(ews: Harness) -> None:
    ews.server.push(
        "FindItem",
        200,
        error_message("FindItem", "ErrorNonExistentMailbox", "No mailbox with such guid."),
    )
    with pytest.raises(CalendarError, match="no such mailbox"):
        ews.source().sync(WINDOW, None)


def test_rejected_login_does_not_leak_the_password(ews: Harness) -> None:
    ews.server.push("FindItem", 401, "")
    with pytest.raises(CalendarError) as caught:
        ews.source().sync(WINDOW, None)
    assert "refused the service account login" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_http_503_is_retried_and_persistent_503_is_a_transient_error(ews: Harness) -> None:
    ews.server.items = [A1]
    source = ews.source(throttle_retries=2)
    source.sync(WINDOW, None)
    ews.server.push("FindItem", 503, "Service Unavailable")
    assert len(source.sync(WINDOW, None).events) == 1
    assert len(ews.sleeps) == 1
    for _ in range(3):
        ews.server.push("FindItem", 503, "Service Unavailable")
    with pytest.raises(CalendarError) as caught:
        source.sync(WINDOW, None)
    assert is_retryable(caught.value)
    assert len(ews.sleeps) == 3


def test_connection_failure_is_a_transient_error(ews: Harness) -> None:
    import requests

    ews.mocker.post(
        "https://mail.example.se/EWS/Exchange.asmx", exc=requests.exceptions.ConnectTimeout
    )
    with pytest.raises(CalendarError, match=r"^ews:alice@example.se: Exchange") as caught:
        ews.source().sync(WINDOW, None)
    assert is_retryable(caught.value)
