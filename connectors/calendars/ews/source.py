"""Exchange Server on premises through EWS (exchangelib), read with a service account.

For on-premises Exchange Server only: EWS in Exchange Online is blocked by
default from 1 October 2026 and switched off on 1 April 2027 (use the Graph
connector there). A service account holding the ApplicationImpersonation role
(or delegate rights) reads each user's calendar with NTLM or Kerberos.

Each sync reads the whole window again with FindItem + CalendarView
(``calendar.view(...)``, which expands recurring series into occurrences) and
GetItem for the fields below, so one poll costs one FindItem and one GetItem
round trip. The Calendar folder is opened by its distinguished folder id, never
through the mailbox root, so delegate access with Reviewer rights on the Calendar
folder alone works (``calendar_folder``). EWS offers no
occurrence-level delta (SyncFolderItems reports series masters only), so every
result is ``full=True``. exchangelib runs with ``FailFast``; server-busy
answers are retried here a bounded number of times with the server's
``BackOffMilliseconds`` through an injectable sleep, then raised as
``ThrottledError``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.organizer import classify_organizer, parse_address
from connectors.retry import Retrying, RetryLater, Sleep
from connectors.secrets import read_secret
from rules.errors import CalendarError, CalendarUnavailable, CalrefError, ThrottledError
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs

FIELDS = (
    "subject",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "my_response_type",
    "sensitivity",
    "is_cancelled",
    "categories",
    "organizer",
    "uid",
    "recurrence_id",
    "original_start",
    "type",
)
SHOW_AS = {
    "Free": ShowAs.FREE,
    "Tentative": ShowAs.TENTATIVE,
    "Busy": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WorkingElsewhere": ShowAs.WORKING_ELSEWHERE,
    "NoData": ShowAs.BUSY,
}
RESPONSES = {
    "Accept": Response.ACCEPTED,
    "Organizer": Response.ACCEPTED,
    "Tentative": Response.TENTATIVE,
    "Decline": Response.DECLINED,
    "NoResponseReceived": Response.NONE,
    "Unknown": Response.NONE,
}
VERSIONS = ("2013", "2013_SP1", "2016", "2019")


class EwsConnection(BaseModel):
    """The organisation-level ``connections.ews`` block: endpoint, service account, limits."""

    model_config = ConfigDict(extra="forbid")

    server: str | None = Field(default=None, description="host name, e.g. mail.example.se")
    service_endpoint: str | None = Field(default=None, description="full EWS URL")
    username: str | None = Field(default=None, description=r"DOMAIN\user or user@domain")
    password_env: str | None = None
    password_file: str | None = None
    auth_type: Literal["NTLM", "GSSAPI"] = "NTLM"
    version: Literal["2013", "2013_SP1", "2016", "2019"] = "2016"
    access_type: Literal["impersonation", "delegate"] = "impersonation"
    throttle_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> EwsConnection:
        if (self.server is None) == (self.service_endpoint is None):
            raise ValueError("give exactly one of server or service_endpoint")
        if self.service_endpoint is not None and not self.service_endpoint.startswith("https://"):
            raise ValueError("service_endpoint must be an https:// URL")
        if self.server is not None and not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", self.server):
            raise ValueError(
                "server must be a host name such as mail.example.se (no scheme or path)"
            )
        if self.auth_type == "NTLM":
            if not self.username:
                raise ValueError("NTLM needs username")
            if (self.password_env is None) == (self.password_file is None):
                raise ValueError("NTLM needs exactly one of password_env or password_file")
        return self

    @property
    def endpoint(self) -> str:
        return self.service_endpoint or f"https://{self.server}/EWS/Exchange.asmx"


class EwsCalendar(BaseModel):
    """One user's calendar entry ``{kind: ews}``; ``mailbox`` defaults to the user's email."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ews"] = "ews"
    mailbox: str | None = None


class EventMapper:
    """Turns exchangelib ``CalendarItem``s into ``CalendarEvent``s for one mailbox."""

    def __init__(self, source: str, mailbox: Mailbox) -> None:
        self.source = source
        self.mailbox = mailbox
        self.zone = mailbox.zone(source)

    def _moment(self, value: Any, what: str, item_id: str) -> datetime | date:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise CalendarError(self.source, f"item {item_id}: {what} has no time zone")
            return datetime.fromtimestamp(value.timestamp(), tz=UTC)
        if isinstance(value, date):
            return date(value.year, value.month, value.day)
        raise CalendarError(self.source, f"item {item_id}: {what} is missing")

    def _all_day(self, value: Any, what: str, item_id: str) -> date:
        """The local date of an all-day boundary (EWS sends local midnight as a UTC instant)."""
        moment = self._moment(value, what, item_id)
        if isinstance(moment, datetime):
            return moment.astimezone(self.zone).date()
        return moment

    def organizer(self, item: Any) -> tuple[str | None, OrganizerKind]:
        """Self when the mailbox's owner organised it on their own calendar (MyResponseType
        Organizer); internal for an Exchange directory (``EX``, legacyDN) address, which the
        server resolved from its own directory; otherwise ``classify_organizer``."""
        box = getattr(item, "organizer", None)
        address = getattr(box, "email_address", None) if box is not None else None
        if self.mailbox.own_calendar and getattr(item, "my_response_type", None) == "Organizer":
            return address, OrganizerKind.SELF
        if address and getattr(box, "routing_type", None) == "EX":
            return address, OrganizerKind.INTERNAL
        return address, classify_organizer(address, self.mailbox)

    def recurrence_id(self, item: Any) -> str | None:
        value = getattr(item, "recurrence_id", None) or getattr(item, "original_start", None)
        if value is None or getattr(item, "type", "Single") == "Single":
            return None
        if isinstance(value, datetime):
            return datetime.fromtimestamp(value.timestamp(), tz=UTC).isoformat()
        return str(value)

    def event(self, item: Any) -> CalendarEvent:
        item_id = str(getattr(item, "id", None) or "?")
        if getattr(item, "is_all_day", False):
            start: datetime | date = self._all_day(item.start, "start", item_id)
            end: datetime | date = self._all_day(item.end, "end", item_id)
            if not isinstance(item.end, datetime):
                end += timedelta(days=1)  # exchangelib turned the exclusive end into the last day
        else:
            start = self._moment(item.start, "start", item_id)
            end = self._moment(item.end, "end", item_id)
        organizer, kind = self.organizer(item)
        uid = getattr(item, "uid", None) or item_id
        status = getattr(item, "legacy_free_busy_status", None) or "Busy"
        return CalendarEvent(
            uid=str(uid),
            start=start,
            end=end,
            subject=str(getattr(item, "subject", None) or ""),
            recurrence_id=self.recurrence_id(item),
            show_as=SHOW_AS.get(status, ShowAs.BUSY),
            response=RESPONSES.get(getattr(item, "my_response_type", None) or "", Response.NONE),
            cancelled=bool(getattr(item, "is_cancelled", False)),
            private=getattr(item, "sensitivity", None) in ("Private", "Confidential"),
            categories=tuple(getattr(item, "categories", None) or ()),
            organizer_kind=kind,
            organizer=organizer,
            source=self.source,
        )


class EwsCalendarSource:
    """One user's Exchange calendar as a ``CalendarSource`` (full window read on every sync)."""

    def __init__(
        self,
        account_factory: Callable[[], Any],
        mailbox: Mailbox,
        address: str,
        *,
        throttle_retries: int = 3,
        max_retry_wait: float = 60.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._account_factory = account_factory
        self._calendar: Any = None
        self._mailbox = mailbox
        self._retrying = Retrying(throttle_retries, max_retry_wait, sleep)
        self._id = f"ews:{address}"
        self._mapper = EventMapper(self._id, mailbox)

    @property
    def id(self) -> str:
        return self._id

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        if window.start.tzinfo is None or window.end.tzinfo is None:
            raise CalrefError("sync window: start and end must be timezone-aware")
        items = self._call(lambda: list(self._view(window)))
        events: dict[str, CalendarEvent] = {}
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
        for item in items:
            if isinstance(item, Exception):  # exchangelib yields per-item errors as values
                raise self._translate(item)
            event = self._mapper.event(item)
            if self._bound(event.end) <= start or self._bound(event.start) >= end:
                continue  # CalendarView also returns items ending exactly at the window start
            events[event.key] = event
        window_state = {"v": 1, "window": [start.isoformat(), end.isoformat()]}
        return SyncResult(events=list(events.values()), full=True, state=json.dumps(window_state))

    def _bound(self, when: datetime | date) -> datetime:
        if isinstance(when, datetime):
            return when
        return datetime(when.year, when.month, when.day, tzinfo=self._mapper.zone).astimezone(UTC)

    def _view(self, window: SyncWindow) -> Any:
        from exchangelib import EWSDateTime
        from exchangelib.errors import ErrorItemNotFound  # gone between FindItem and GetItem

        if self._calendar is None:
            self._calendar = calendar_folder(self._account_factory())
        calendar = self._calendar
        start = EWSDateTime.from_datetime(window.start.astimezone(UTC))
        end = EWSDateTime.from_datetime(window.end.astimezone(UTC))
        # FindItem (ids only: CalendarView cannot return categories, organizer or UID), then
        # GetItem with the fields; fetch() validates them against this folder, where
        # view().only() would fetch the mailbox root for that (GetFolder, see calendar_folder)
        ids = calendar.view(start=start, end=end).only("id", "changekey")
        items = calendar.account.fetch(ids=ids, folder=calendar, only_fields=FIELDS)
        return (item for item in items if not isinstance(item, ErrorItemNotFound))

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run ``action`` retrying server-busy answers; translate exchangelib errors."""
        try:
            return self._retrying.call(action, classify=_server_busy, give_up=self._gave_up)
        except CalrefError:
            raise
        except Exception as err:
            raise self._translate(err) from None

    def _gave_up(self, _err: Exception, _attempts: int, back_off: float | None) -> Exception:
        return ThrottledError(
            self._id, "Exchange server busy, try again later", retry_after=back_off
        )

    def _translate(self, err: Exception) -> CalendarError:
        """A CalendarError naming the problem; never the password or the raw response."""
        import requests
        from exchangelib import errors as ews

        name = type(err).__name__
        if isinstance(err, ews.ErrorServerBusy):
            return ThrottledError(self._id, "Exchange server busy", retry_after=err.back_off)
        if isinstance(err, ews.ErrorImpersonateUserDenied):
            return CalendarError(
                self._id,
                "the service account may not impersonate this mailbox "
                "(grant ApplicationImpersonation with a scope that includes it)",
            )
        if isinstance(err, ews.ErrorNonExistentMailbox):
            return CalendarError(self._id, "no such mailbox on the Exchange server")
        if isinstance(err, ews.ErrorAccessDenied):
            return CalendarError(
                self._id,
                "access to the calendar denied (delegate access needs Reviewer rights on the "
                "user's Calendar folder; impersonation needs ApplicationImpersonation)",
            )
        if isinstance(err, ews.UnauthorizedError):
            return CalendarError(self._id, "the Exchange server refused the service account login")
        if isinstance(err, ews.CASError):
            return CalendarUnavailable(self._id, "Exchange front end (CAS) error")
        transient = (
            ews.ErrorInternalServerTransientError,
            ews.ErrorTimeoutExpired,
            ews.ErrorMailboxStoreUnavailable,
            ews.ErrorConnectionFailed,
            ews.ErrorConnectionFailedTransientError,
            ews.ErrorTooManyObjectsOpened,
        )
        if isinstance(err, transient):
            return CalendarUnavailable(self._id, f"Exchange temporarily unavailable ({name})")
        if isinstance(err, ews.TransportError | requests.RequestException | OSError):
            return CalendarUnavailable(self._id, f"cannot reach the Exchange server ({name})")
        return CalendarError(self._id, f"Exchange answered with an error ({name})")


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
    connection: EwsConnection, address: str, timezone: str = "Europe/Stockholm"
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


def build_source(
    connection: EwsConnection,
    entry: EwsCalendar,
    mailbox: Mailbox,
    *,
    sleep: Sleep = time.sleep,
) -> EwsCalendarSource:
    """The source for ``mailbox``'s Exchange calendar (``entry.mailbox`` overrides the address).

    Another mailbox's calendar is never the user's own, whatever the entry says.
    """
    address = entry.mailbox or mailbox.email
    if parse_address(address) != parse_address(mailbox.email):
        mailbox = replace(mailbox, own_calendar=False)
    return EwsCalendarSource(
        make_account_factory(connection, address, mailbox.timezone),
        mailbox,
        address,
        throttle_retries=connection.throttle_retries,
        max_retry_wait=connection.max_retry_wait,
        sleep=sleep,
    )
