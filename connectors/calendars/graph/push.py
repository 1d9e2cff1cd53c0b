"""Graph change notifications for events: subscriptions and the webhook handler.

Graph has no calendarView subscription, so calref subscribes to
``/users/{mailbox}/events`` and treats every notification as a trigger to run
that mailbox's calendarView delta (notifications can be lost, so the delta,
not the notification, is the truth). ``SubscriptionManager`` creates, renews
and repairs subscriptions with an injectable clock; ``handle_notification_request``
is framework-independent: the web app passes the decoded query and raw body
and sends back the ``NotificationOutcome``. It never calls Graph itself, so it
answers well within Graph's 3 s (10 s for validation) limits; follow-up work
(reauthorize, recreate) is queued for ``maintain()``. ``restore`` takes back a
subscription kept across a restart, ``delete`` removes a stale one, and
``client_state_ref`` is what may be stored in place of the clientState secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from connectors.calendars.graph.client import GraphClient, GraphNotFound
from connectors.clock import Clock, SystemClock
from connectors.secrets import Secret
from rules.errors import CalendarError

# Under both documented maxima for Outlook events (4,230 min in older pages,
# 10,080 min in the 2024 include), see CALENDAR_APIS.md §1.4.
DEFAULT_LIFETIME = timedelta(minutes=4200)
DEFAULT_RENEW_BEFORE = timedelta(hours=24)
CHANGE_TYPES = "created,updated,deleted"


@dataclass(frozen=True)
class NotificationOutcome:
    """What to answer Graph, and which mailboxes now need a delta sync."""

    status: int
    body: str = ""
    content_type: str = "text/plain"
    mailboxes_to_sync: tuple[str, ...] = ()


@dataclass
class Subscription:
    id: str
    mailbox: str
    expires: datetime


@dataclass
class _Pending:
    reauthorize: set[str] = field(default_factory=set)
    recreate: set[str] = field(default_factory=set)  # mailboxes


class SubscriptionManager:
    """Keeps one event subscription per mailbox alive and routes notifications."""

    def __init__(
        self,
        client: GraphClient,
        *,
        notification_url: str,
        lifecycle_url: str,
        client_state: Secret,
        clock: Clock | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
        renew_before: timedelta = DEFAULT_RENEW_BEFORE,
    ) -> None:
        if len(client_state.reveal()) > 128:
            raise CalendarError("graph:subscriptions", "clientState is longer than 128 characters")
        if not notification_url.startswith("https://") or not lifecycle_url.startswith("https://"):
            raise CalendarError("graph:subscriptions", "notification URLs must be https:// URLs")
        self.client = client
        self.notification_url = notification_url
        self.lifecycle_url = lifecycle_url
        self._client_state = client_state
        self.clock = clock or SystemClock()
        self.lifetime = lifetime
        self.renew_before = renew_before
        self.subscriptions: dict[str, Subscription] = {}  # by subscription id
        self._pending = _Pending()
        self._lock = threading.Lock()
        self._state_ref: str | None = None
        self._fingerprints: dict[bytes, bytes] = {}

    # -- subscriptions ------------------------------------------------------

    def subscribe(self, mailbox: str) -> Subscription:
        """Create the mailbox's subscription (Graph first validates the notification URL)."""
        mailbox = mailbox.strip().lower()
        expires = self.clock.now() + self.lifetime
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "resource": f"/users/{quote(mailbox, safe='@')}/events",
            "expirationDateTime": _iso(expires),
            "clientState": self._client_state.reveal(),
        }
        answer = self._call("POST", "/subscriptions", mailbox, "create subscription", body)
        sub = Subscription(str(answer["id"]), mailbox, _expiry(answer, expires))
        with self._lock:
            self.subscriptions[sub.id] = sub
        return sub

    def renew(self, sub: Subscription) -> Subscription:
        """Extend ``sub``; a subscription Graph no longer knows is created again."""
        expires = self.clock.now() + self.lifetime
        try:
            answer = self._call(
                "PATCH",
                f"/subscriptions/{quote(sub.id, safe='')}",
                sub.mailbox,
                "renew subscription",
                {"expirationDateTime": _iso(expires)},
            )
        except GraphNotFound:
            with self._lock:
                self.subscriptions.pop(sub.id, None)
            return self.subscribe(sub.mailbox)
        sub.expires = _expiry(answer, expires)
        return sub

    def restore(self, sub: Subscription) -> None:
        """Take over a subscription kept in the store across a restart (no Graph call)."""
        sub = Subscription(sub.id, sub.mailbox.strip().lower(), sub.expires)
        with self._lock:
            self.subscriptions[sub.id] = sub

    def delete(self, subscription_id: str, mailbox: str) -> None:
        """``DELETE /subscriptions/{id}``; one Graph no longer knows (404) counts as deleted."""
        with self._lock:
            self.subscriptions.pop(subscription_id, None)
        with contextlib.suppress(GraphNotFound):
            self.client.request(
                "DELETE",
                f"{self.client.graph_url}/subscriptions/{quote(subscription_id, safe='')}",
                source=f"graph:{mailbox}",
                mailbox=mailbox,
                what="delete subscription",
            )

    def client_state_ref(self) -> str:
        """A salted fingerprint of the clientState, to store in its place (never the secret)."""
        if self._state_ref is None:
            salt = secrets.token_bytes(16)
            self._state_ref = f"scrypt${salt.hex()}${self._fingerprint(salt).hex()}"
        return self._state_ref

    def client_state_matches(self, ref: str | None) -> bool:
        """Whether ``ref`` (from ``client_state_ref``) was made from the current clientState."""
        try:
            scheme, salt_hex, digest_hex = (ref or "").split("$")
            salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        except ValueError:
            return False
        return scheme == "scrypt" and hmac.compare_digest(self._fingerprint(salt), digest)

    def _fingerprint(self, salt: bytes) -> bytes:
        if salt not in self._fingerprints:  # scrypt is slow on purpose: once per salt
            self._fingerprints[salt] = hashlib.scrypt(
                self._client_state.reveal().encode(), salt=salt, n=2**14, r=8, p=1, dklen=32
            )
        return self._fingerprints[salt]

    def ensure(self, mailboxes: list[str]) -> list[str]:
        """Subscribe every mailbox that has no subscription; returns the newly covered ones."""
        have = {s.mailbox for s in self.subscriptions.values()}
        new = [m.strip().lower() for m in mailboxes if m.strip().lower() not in have]
        for mailbox in new:
            self.subscribe(mailbox)
        return new

    def maintain(self) -> list[str]:
        """Renew what is due, do queued lifecycle work; returns mailboxes to delta-sync."""
        with self._lock:
            reauthorize, self._pending.reauthorize = self._pending.reauthorize, set()
            recreate, self._pending.recreate = self._pending.recreate, set()
        to_sync: list[str] = []
        for mailbox in sorted(recreate):
            self.subscribe(mailbox)
            to_sync.append(mailbox)
        due = self.clock.now() + self.renew_before
        for sub in list(self.subscriptions.values()):
            if sub.id in reauthorize or sub.expires <= due:
                self.renew(sub)
        return to_sync

    def mailbox_for(self, subscription_id: str) -> str | None:
        sub = self.subscriptions.get(subscription_id)
        return sub.mailbox if sub else None

    def _call(
        self, method: str, path: str, mailbox: str, what: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.client.request(
            method,
            f"{self.client.graph_url}{path}",
            source=f"graph:{mailbox}",
            mailbox=mailbox,
            what=what,
            json_body=body,
        ).body

    # -- the webhook --------------------------------------------------------

    def handle_notification_request(
        self, query: Mapping[str, Any], body: bytes
    ) -> NotificationOutcome:
        """Answer one POST to the notification or lifecycle URL."""
        token = query.get("validationToken")
        if isinstance(token, list):
            token = token[0] if token else None
        if token is not None:
            return NotificationOutcome(200, str(token), "text/plain")
        try:
            payload = json.loads(body.decode("utf-8"))
            items = payload["value"]
            if not isinstance(items, list):
                raise TypeError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return NotificationOutcome(400, "expected a Graph notification collection")
        expected = self._client_state.reveal().encode()
        accepted = 0
        to_sync: list[str] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            state = str(item.get("clientState") or "").encode()
            if not hmac.compare_digest(state, expected):
                continue  # not from our subscription: ignore it
            mailbox = self.mailbox_for(str(item.get("subscriptionId") or ""))
            if mailbox is None:
                continue
            accepted += 1
            event = item.get("lifecycleEvent")
            with self._lock:
                if event == "reauthorizationRequired":
                    self._pending.reauthorize.add(str(item["subscriptionId"]))
                elif event == "subscriptionRemoved":
                    self.subscriptions.pop(str(item["subscriptionId"]), None)
                    self._pending.recreate.add(mailbox)
            if event in (None, "missed", "subscriptionRemoved") and mailbox not in to_sync:
                to_sync.append(mailbox)
        if items and not accepted:
            return NotificationOutcome(403, "unknown subscription or clientState mismatch")
        return NotificationOutcome(202, "", "text/plain", tuple(to_sync))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _expiry(answer: dict[str, Any], fallback: datetime) -> datetime:
    text = answer.get("expirationDateTime")
    if not isinstance(text, str):
        return fallback
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
