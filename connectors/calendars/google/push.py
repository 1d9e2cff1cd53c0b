"""Google Calendar push: ``events.watch`` channels, their renewal, and notification handling.

A channel (``events.watch``) makes Google POST to our HTTPS address whenever a
user's calendar changes. The POST carries no event data, only headers:
``X-Goog-Channel-ID``, ``X-Goog-Channel-Token`` (the secret token we set, used
here to verify the sender), ``X-Goog-Resource-State`` (``sync`` right after
creation, then ``exists``/``not_exists``) and ``X-Goog-Resource-ID``. On a
change the service runs the source's incremental sync.

Channels are not renewed by Google (default TTL 7 days): ``GoogleChannelManager``
creates a new overlapping channel ``renew_before`` the old one expires and then
stops the old one with ``channels.stop``. It reads time only from the injected
clock. ``handle_google_notification`` is framework independent: the web layer
passes the request headers and answers with ``outcome.http_status``.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from connectors.calendars.google.source import GoogleCalendarSource
from connectors.clock import Clock
from rules.errors import CalendarError, CalrefError

DEFAULT_TTL = timedelta(days=7)
DEFAULT_RENEW_BEFORE = timedelta(days=1)


@dataclass(frozen=True)
class Channel:
    """One watch channel on one user's calendar. ``token`` is secret and not shown in repr."""

    id: str
    resource_id: str
    expiration: datetime
    user_id: str
    source_id: str
    token: str = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "resource_id": self.resource_id,
            "expiration": self.expiration.isoformat(),
            "user_id": self.user_id,
            "source_id": self.source_id,
            "token": self.token,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> Channel:
        return cls(
            id=data["id"],
            resource_id=data["resource_id"],
            expiration=datetime.fromisoformat(data["expiration"]),
            user_id=data["user_id"],
            source_id=data["source_id"],
            token=data["token"],
        )


class NotificationKind(StrEnum):
    """What a notification asks of the service."""

    SYNC = "sync"  # the channel's first message: acknowledge, nothing changed
    CHANGED = "changed"  # run the user's incremental sync now
    REJECTED = "rejected"  # unknown channel or wrong token: ignore it


@dataclass(frozen=True)
class NotificationOutcome:
    """The verdict on one POST; ``http_status`` is what the web layer should answer."""

    kind: NotificationKind
    http_status: int
    why: str = ""
    user_id: str | None = None
    channel_id: str | None = None
    resource_id: str | None = None


def handle_google_notification(
    headers: Mapping[str, str], lookup: Callable[[str], Channel | None]
) -> NotificationOutcome:
    """Check a notification's channel and token, and say what to do about it."""
    lower = {k.lower(): v for k, v in headers.items()}
    channel_id = lower.get("x-goog-channel-id", "")
    resource_id = lower.get("x-goog-resource-id")
    state = lower.get("x-goog-resource-state", "")
    if not channel_id:
        return NotificationOutcome(NotificationKind.REJECTED, 400, "no X-Goog-Channel-ID header")
    channel = lookup(channel_id)
    if channel is None:
        # 200 so Google does not retry; the caller may stop the stray channel by its ids.
        return NotificationOutcome(
            NotificationKind.REJECTED, 200, "unknown channel", None, channel_id, resource_id
        )
    token = lower.get("x-goog-channel-token", "")
    if not hmac.compare_digest(token.encode(), channel.token.encode()):
        return NotificationOutcome(
            NotificationKind.REJECTED, 403, "channel token does not match", None, channel_id
        )
    if state == "sync":
        return NotificationOutcome(
            NotificationKind.SYNC, 200, "channel created", channel.user_id, channel_id, resource_id
        )
    if state in ("exists", "not_exists"):
        return NotificationOutcome(
            NotificationKind.CHANGED, 200, state, channel.user_id, channel_id, resource_id
        )
    return NotificationOutcome(
        NotificationKind.REJECTED, 200, f"unknown resource state {state!r}", None, channel_id
    )


def _parse_expiration(value: Any, source: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError):
        raise CalendarError(source, "events.watch answered without a valid expiration") from None


class GoogleChannelManager:
    """Creates, renews and stops watch channels; routes notifications to users."""

    def __init__(
        self,
        address: str,
        *,
        clock: Clock,
        ttl: timedelta = DEFAULT_TTL,
        renew_before: timedelta = DEFAULT_RENEW_BEFORE,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        if not address.startswith("https://"):
            raise CalrefError(f"google push address {address!r}: must be an HTTPS URL")
        if renew_before >= ttl:
            raise CalrefError("google push: renew_before must be shorter than the channel ttl")
        self._address = address
        self._clock = clock
        self._ttl = ttl
        self._renew_before = renew_before
        self._new_id = new_id
        self._new_token = new_token
        self._by_user: dict[str, Channel] = {}
        self._by_id: dict[str, Channel] = {}

    @property
    def address(self) -> str:
        """Where this manager's channels deliver notifications."""
        return self._address

    def channels(self) -> list[Channel]:
        return list(self._by_user.values())

    def lookup(self, channel_id: str) -> Channel | None:
        return self._by_id.get(channel_id)

    def restore(self, channel: Channel) -> None:
        """Register a channel kept in the store across a restart."""
        self._register(channel)

    def handle(self, headers: Mapping[str, str]) -> NotificationOutcome:
        return handle_google_notification(headers, self.lookup)

    def _register(self, channel: Channel) -> None:
        old = self._by_user.get(channel.user_id)
        if old is not None:
            self._by_id.pop(old.id, None)
        self._by_user[channel.user_id] = channel
        self._by_id[channel.id] = channel

    def due(self, user_id: str) -> bool:
        channel = self._by_user.get(user_id)
        return channel is None or self._clock.now() >= channel.expiration - self._renew_before

    def next_renewal(self) -> datetime | None:
        """When the earliest channel needs renewing (for the scheduler), or None."""
        times = [c.expiration - self._renew_before for c in self._by_user.values()]
        return min(times, default=None)

    def ensure(self, user_id: str, source: GoogleCalendarSource) -> Channel:
        """The user's live channel: created if missing, renewed (overlapping) when due."""
        current = self._by_user.get(user_id)
        if current is not None and not self.due(user_id):
            return current
        channel = self._watch(user_id, source)
        self._register(channel)
        if current is not None:
            self.stop_channel(source, current.id, current.resource_id)
        return channel

    def stop(self, user_id: str, source: GoogleCalendarSource) -> None:
        channel = self._by_user.pop(user_id, None)
        if channel is not None:
            self._by_id.pop(channel.id, None)
            self.stop_channel(source, channel.id, channel.resource_id)

    def stop_channel(self, source: GoogleCalendarSource, channel_id: str, resource_id: str) -> None:
        """``channels.stop``; a channel Google no longer knows (404) counts as stopped."""
        request = source.service.channels().stop(body={"id": channel_id, "resourceId": resource_id})
        try:
            source.execute(request)
        except CalendarError as err:
            if "HTTP 404" not in err.problem:
                raise

    def _watch(self, user_id: str, source: GoogleCalendarSource) -> Channel:
        channel_id, token = self._new_id(), self._new_token()
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": self._address,
            "token": token,
            "params": {"ttl": str(int(self._ttl.total_seconds()))},
        }
        request = source.service.events().watch(calendarId=source.calendar_id, body=body)
        answer = source.execute(request)
        if not isinstance(answer, dict) or not answer.get("resourceId"):
            raise CalendarError(source.id, "events.watch answered without a resourceId")
        if answer.get("id", channel_id) != channel_id:
            raise CalendarError(source.id, "events.watch answered for another channel id")
        if "expiration" in answer:
            expiration = _parse_expiration(answer["expiration"], source.id)
        else:
            expiration = self._clock.now() + self._ttl
        return Channel(channel_id, str(answer["resourceId"]), expiration, user_id, source.id, token)
