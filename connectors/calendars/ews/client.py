"""Talking to Exchange Server over EWS (exchangelib): the account, requests, retries, errors.

``make_client`` sets up the exchangelib ``Account`` for one mailbox (no
autodiscover, a fixed Exchange version, NTLM with the service account's password
or Kerberos, impersonation or delegate access) and ``EwsClient.calendar_items``
reads the Calendar folder's items in a window with one FindItem (CalendarView,
which expands recurring series into occurrences) and GetItem for the ``FIELDS`` the
mapping reads. The folder is opened by its distinguished folder id, never through
the mailbox root (``calendar_folder``), so delegate access with Reviewer rights on
the Calendar folder alone works. exchangelib runs with ``FailFast``; server-busy
answers are retried here through ``connectors/retry.py`` a bounded number of times
with the server's ``BackOffMilliseconds``, then raised as ``ThrottledError``.
``translate`` turns every other failure into a ``CalendarError`` that names the
problem, never the password or the raw response.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from connectors.calendars.ews.config import EwsConnectionConfig
from connectors.calendars.ews.mapping import FIELDS
from connectors.retry import Retrying, RetryLater, Sleep
from connectors.secrets import read_secret
from rules.errors import CalendarError, CalendarUnavailable, CalrefError, ThrottledError


class EwsClient:
    """One mailbox's Calendar folder on an Exchange server (the account is opened on first use)."""

    def __init__(
        self,
        account_factory: Callable[[], Any],
        address: str,
        *,
        throttle_retries: int = 3,
        max_retry_wait: float = 60.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._account_factory = account_factory
        self.address = address
        self._calendar: Any = None
        self._retrying = Retrying(throttle_retries, max_retry_wait, sleep)

    def calendar_items(self, start: datetime, end: datetime, source: str) -> Iterator[Any]:
        """Every item of the Calendar folder in [start, end) (occurrences expanded), with
        ``FIELDS``; failures, also those exchangelib yields per item, as ``CalendarError``s."""
        items = self._call(lambda: list(self._view(start, end)), source)
        for item in items:
            if isinstance(item, Exception):  # exchangelib yields per-item errors as values
                raise translate(item, source)
            yield item

    def _view(self, start: datetime, end: datetime) -> Any:
        from exchangelib import EWSDateTime
        from exchangelib.errors import ErrorItemNotFound  # gone between FindItem and GetItem

        if self._calendar is None:
            self._calendar = calendar_folder(self._account_factory())
        calendar = self._calendar
        first = EWSDateTime.from_datetime(start.astimezone(UTC))
        last = EWSDateTime.from_datetime(end.astimezone(UTC))
        # FindItem (ids only: CalendarView cannot return categories, organizer or UID), then
        # GetItem with the fields; fetch() validates them against this folder, where
        # view().only() would fetch the mailbox root for that (GetFolder, see calendar_folder)
        ids = calendar.view(start=first, end=last).only("id", "changekey")
        items = calendar.account.fetch(ids=ids, folder=calendar, only_fields=FIELDS)
        return (item for item in items if not isinstance(item, ErrorItemNotFound))

    def _call(self, action: Callable[[], Any], source: str) -> Any:
        """Run ``action`` retrying server-busy answers; translate exchangelib errors."""

        def gave_up(_err: Exception, _attempts: int, back_off: float | None) -> Exception:
            return ThrottledError(
                source, "Exchange server busy, try again later", retry_after=back_off
            )

        try:
            return self._retrying.call(action, classify=_server_busy, give_up=gave_up)
        except CalrefError:
            raise
        except Exception as err:
            raise translate(err, source) from None


def make_client(
    connection: EwsConnectionConfig,
    address: str,
    timezone: str = "Europe/Stockholm",
    *,
    sleep: Sleep = time.sleep,
) -> EwsClient:
    """The client for ``address``'s calendar under ``connection`` (reads the password);
    ``sleep`` replaces the wait between server-busy retries (tests, benchmarks)."""
    return EwsClient(
        make_account_factory(connection, address, timezone),
        address,
        throttle_retries=connection.throttle_retries,
        max_retry_wait=connection.max_retry_wait,
        sleep=sleep,
    )


def translate(err: Exception, source: str) -> CalendarError:
    """A CalendarError naming the problem; never the password or the raw response."""
    import requests
    from exchangelib import errors as ews

    name = type(err).__name__
    if isinstance(err, ews.ErrorServerBusy):
        return ThrottledError(source, "Exchange server busy", retry_after=err.back_off)
    if isinstance(err, ews.ErrorImpersonateUserDenied):
        return CalendarError(
            source,
            "the service account may not impersonate this mailbox "
            "(grant ApplicationImpersonation with a scope that includes it)",
        )
    if isinstance(err, ews.ErrorNonExistentMailbox):
        return CalendarError(source, "no such mailbox on the Exchange server")
    if isinstance(err, ews.ErrorAccessDenied):
        return CalendarError(
            source,
            "access to the calendar denied (delegate access needs Reviewer rights on the "
            "user's Calendar folder; impersonation needs ApplicationImpersonation)",
        )
    if isinstance(err, ews.UnauthorizedError):
        return CalendarError(source, "the Exchange server refused the service account login")
    if isinstance(err, ews.CASError):
        return CalendarUnavailable(source, "Exchange front end (CAS) error")
    transient = (
        ews.ErrorInternalServerTransientError,
        ews.ErrorTimeoutExpired,
        ews.ErrorMailboxStoreUnavailable,
        ews.ErrorConnectionFailed,
        ews.ErrorConnectionFailedTransientError,
        ews.ErrorTooManyObjectsOpened,
    )
    if isinstance(err, transient):
        return CalendarUnavailable(source, f"Exchange temporarily unavailable ({name})")
    if isinstance(err, ews.MalformedResponseError):  # a TransportError, but the server answered
        return CalendarError(
            source,
            "the Exchange server answered with something that is not EWS SOAP "
            "(a proxy or sign-in page? check the ews url in connections)",
        )
    if isinstance(err, ews.TransportError | requests.RequestException | OSError):
        return CalendarUnavailable(source, f"cannot reach the Exchange server ({name})")
    return CalendarError(source, f"Exchange answered with an error ({name})")


def calendar_folder(account: Any) -> Any:
    """The mailbox's Calendar folder, addressed by its distinguished folder id.

    exchangelib's ``account.calendar`` first fetches the mailbox root (GetFolder on
    ``root``), which a delegate holding only Reviewer rights on the Calendar folder may not
    do (ErrorAccessDenied). ``DistinguishedFolderId("calendar")`` with the mailbox's address
    is what exchangelib itself falls back to; the root here is only a holder of the account
    and is never fetched, so a sync costs no GetFolder at all, with impersonation too.
    """
    from exchangelib.folders import Calendar, Root
    from exchangelib.properties import DistinguishedFolderId
    from exchangelib.properties import Mailbox as EwsMailbox

    folder_id = DistinguishedFolderId(
        id=Calendar.DISTINGUISHED_FOLDER_ID,
        mailbox=EwsMailbox(email_address=account.primary_smtp_address),
    )
    return Calendar(root=Root(account=account), _distinguished_id=folder_id)


def _server_busy(err: Exception) -> RetryLater | None:
    """Exchange's ``ErrorServerBusy`` is worth another try after its ``BackOffMilliseconds``."""
    from exchangelib.errors import ErrorServerBusy

    return RetryLater(err.back_off) if isinstance(err, ErrorServerBusy) else None


def _version(name: str) -> Any:
    from exchangelib import Version
    from exchangelib.version import EXCHANGE_2013, EXCHANGE_2013_SP1, EXCHANGE_2016, EXCHANGE_2019

    builds = {
        "2013": EXCHANGE_2013,
        "2013_SP1": EXCHANGE_2013_SP1,
        "2016": EXCHANGE_2016,
        "2019": EXCHANGE_2019,
    }
    return Version(build=builds[name])


def make_account_factory(
    connection: EwsConnectionConfig, address: str, timezone: str = "Europe/Stockholm"
) -> Callable[[], Any]:
    """A factory for the exchangelib ``Account`` (no autodiscover, fixed version, FailFast)."""
    from exchangelib import (
        DELEGATE,
        GSSAPI,
        IMPERSONATION,
        NTLM,
        Account,
        Configuration,
        EWSTimeZone,
    )
    from exchangelib import Credentials as EwsCredentials
    from exchangelib.protocol import FailFast
    from exchangelib.transport import AUTH_TYPE_MAP

    if connection.auth_type == "GSSAPI" and GSSAPI not in AUTH_TYPE_MAP:
        # exchangelib registers Kerberos only when requests_gssapi imports; else a KeyError later
        raise CalrefError(
            "connections.ews: auth_type GSSAPI (Kerberos) needs the requests_gssapi package, "
            "which is not installed or cannot load its GSSAPI library; install calref with "
            "the kerberos extra: pip install 'calref[kerberos]' (and the system's libkrb5)"
        )
    credentials = None
    if connection.auth_type == "NTLM":
        password = read_secret(
            env=connection.password_env,
            file=connection.password_file,
            what="exchange service account password",
        )
        credentials = EwsCredentials(str(connection.username), password.reveal())
    config = Configuration(
        credentials=credentials,
        service_endpoint=connection.endpoint,
        auth_type=NTLM if connection.auth_type == "NTLM" else GSSAPI,
        version=_version(connection.version),
        retry_policy=FailFast(),
    )
    access = IMPERSONATION if connection.access_type == "impersonation" else DELEGATE

    def factory() -> Any:
        return Account(
            primary_smtp_address=address,
            config=config,
            autodiscover=False,
            access_type=access,
            default_timezone=EWSTimeZone(timezone),
        )

    return factory
