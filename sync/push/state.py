"""Push subscriptions across restarts: restoring them from the store, saving, retiring stale ones.

``PushHub`` keeps one Graph subscription per mailbox and one Google channel per
source. ``PushState`` mirrors what the managers hold into the store
(``sync.store.push``): on start it hands the stored, unexpired ones back to the
managers (``SubscriptionManager.restore``, ``GoogleChannelManager.restore``), so
a restart reuses them instead of creating new ones; after every create, renew
and removal the hub calls ``save``. Stored ones that can no longer be used (the
source left the config, the notification address or Graph's clientState
changed, a duplicate, a replaced channel whose stop failed) are *orphans*:
``retire_orphans`` deletes them remotely (Graph ``DELETE /subscriptions/{id}``,
Google ``channels.stop``) and then from the store; a failure is logged and tried
again at the next upkeep. Expired ones are only dropped from the store (the
provider has dropped them already). Nothing here logs a Google channel token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from connectors.calendars.google.push import Channel, GoogleChannelManager
from connectors.calendars.google.source import GoogleCalendarSource
from connectors.calendars.graph.push import Subscription, SubscriptionManager
from connectors.clock import Clock
from rules.errors import CalrefError
from sync.store.push import PushKind, PushStore, StoredPush

log = logging.getLogger(__name__)

#: builds a source acting as a Google account (to stop a channel of a source no longer configured)
GoogleSourceFor = Callable[[str], GoogleCalendarSource]

Key = tuple[PushKind, str]


class PushState:
    """The store's copy of the hub's subscriptions and channels, and the orphans to retire."""

    def __init__(
        self,
        store: PushStore,
        *,
        graph: SubscriptionManager | None,
        google: GoogleChannelManager | None,
        graph_sources: dict[str, str],
        google_sources: dict[str, GoogleCalendarSource],
        clock: Clock,
        google_source_for: GoogleSourceFor | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.google = google
        self.graph_sources = graph_sources  # mailbox -> source id
        self.google_sources = google_sources  # source id -> source
        self.clock = clock
        self.google_source_for = google_source_for
        self.saved: dict[Key, StoredPush] = {}  # what the store holds
        self.orphans: dict[Key, StoredPush] = {}  # stored, to delete remotely, then forget
        self.restored = False

    # -- start -----------------------------------------------------------------------------

    def restore(self) -> list[StoredPush]:
        """Give the stored, usable, unexpired subscriptions to the managers; returns them."""
        self.restored = True
        try:
            rows = self.store.push_subscriptions()
        except Exception as err:
            log.warning("push: stored subscriptions not read, new ones are made: %s", err)
            return []
        now = self.clock.now()
        taken: list[StoredPush] = []
        claimed: set[tuple[PushKind, str]] = set()  # (kind, source id) already given a subscription
        # the latest expiry of a source first: a duplicate (older) one becomes an orphan
        for row in sorted(rows, key=lambda r: r.expires, reverse=True):
            self.saved[row.key] = row
            if row.expires <= now:
                self._forget(row)  # the provider has dropped it already
                continue
            why = self._unusable(row)
            if why is None and (row.kind, row.source_id) in claimed:
                why = "a newer one is kept"
            if why == "":
                continue  # no manager of its kind: left to expire, dropped from the store then
            if why is not None:
                log.info(
                    "source %s: stored %s subscription %s is retired (%s)",
                    row.source_id,
                    row.kind,
                    row.remote_id,
                    why,
                )
                self.orphans[row.key] = row
                continue
            claimed.add((row.kind, row.source_id))
            if row.kind == PushKind.GRAPH and self.graph is not None:
                self.graph.restore(Subscription(row.remote_id, row.account, row.expires))
            elif self.google is not None:
                self.google.restore(_channel(row))
            taken.append(row)
        if taken:
            log.info("push: %d stored subscriptions/channels reused", len(taken))
        return taken

    def _unusable(self, row: StoredPush) -> str | None:
        """Why ``row`` cannot be reused (None: it can; "": its kind of push is off)."""
        if row.kind == PushKind.GRAPH:
            if self.graph is None:
                return ""
            if self.graph_sources.get(row.account) != row.source_id:
                return "the calendar is no longer configured"
            if row.address != self.graph.notification_url:
                return "the notification address changed"
            if not self.graph.client_state_matches(row.client_state_ref):
                return "the clientState secret changed"
            return None
        if self.google is None:
            return ""
        if row.source_id not in self.google_sources:
            return "the calendar is no longer configured"
        if row.address != self.google.address:
            return "the notification address changed"
        if not row.token or not row.resource_id:
            return "incomplete"
        return None

    # -- after every change ----------------------------------------------------------------

    def current(self) -> dict[Key, StoredPush]:
        """What the managers hold now, as store records."""
        out: dict[Key, StoredPush] = {}
        if self.graph is not None:
            for sub in list(self.graph.subscriptions.values()):
                key = (PushKind.GRAPH, sub.id)
                saved = self.saved.get(key)
                ref = saved.client_state_ref if saved else self.graph.client_state_ref()
                out[key] = StoredPush(
                    kind=PushKind.GRAPH,
                    remote_id=sub.id,
                    source_id=self.graph_sources.get(sub.mailbox, f"graph:{sub.mailbox}"),
                    account=sub.mailbox,
                    address=self.graph.notification_url,
                    expires=sub.expires,
                    client_state_ref=ref,
                )
        if self.google is not None:
            for channel in self.google.channels():
                out[(PushKind.GOOGLE, channel.id)] = StoredPush(
                    kind=PushKind.GOOGLE,
                    remote_id=channel.id,
                    source_id=channel.user_id,
                    account=google_account(channel.source_id),
                    address=self.google.address,
                    expires=channel.expiration,
                    resource_id=channel.resource_id,
                    token=channel.token,
                )
        return out

    def save(self) -> None:
        """Store new and changed subscriptions, forget those the managers dropped.

        A subscription leaves a manager only when the provider no longer has it
        (Graph: 404 or ``subscriptionRemoved``; Google: stopped after renewal), so
        its row is just deleted. Orphans stay stored until they are retired.
        """
        try:
            current = self.current()
            for key, sub in current.items():
                if self.saved.get(key) != sub:
                    self.store.save_push_subscription(sub)
                    self.saved[key] = sub
            for key, row in list(self.saved.items()):
                if key not in current and key not in self.orphans:
                    self._forget(row)
        except Exception as err:
            log.warning("push: subscriptions not saved (tried again at the next change): %s", err)

    def ensure_google(self, source_id: str, source: GoogleCalendarSource) -> None:
        """``GoogleChannelManager.ensure``; a replaced channel whose stop failed is an orphan."""
        assert self.google is not None
        before = self._google_channel(source_id)
        failed = True
        try:
            self.google.ensure(source_id, source)
            failed = False
        finally:
            after = self._google_channel(source_id)
            if failed and before is not None and (after is None or after.id != before.id):
                old = self.saved.get((PushKind.GOOGLE, before.id))  # replaced, but its stop failed
                if old is not None:
                    self.orphans[old.key] = old
            self.save()

    def _google_channel(self, source_id: str) -> Channel | None:
        assert self.google is not None
        return next((c for c in self.google.channels() if c.user_id == source_id), None)

    # -- upkeep ----------------------------------------------------------------------------

    def retire_orphans(self) -> None:
        """Delete orphans remotely, then from the store; failures wait for the next upkeep."""
        now = self.clock.now()
        for key, row in list(self.orphans.items()):
            if row.expires > now:
                try:
                    self._remove_remote(row)
                except Exception as err:
                    if not isinstance(err, CalrefError):
                        log.exception("source %s: removing a stale subscription", row.source_id)
                    log.warning(
                        "source %s: stale %s subscription %s not removed, tried again at the "
                        "next upkeep: %s",
                        row.source_id,
                        row.kind,
                        row.remote_id,
                        err,
                    )
                    continue
                log.info(
                    "source %s: stale %s subscription %s removed",
                    row.source_id,
                    row.kind,
                    row.remote_id,
                )
            del self.orphans[key]
            self._forget(row)

    def _remove_remote(self, row: StoredPush) -> None:
        if row.kind == PushKind.GRAPH:
            if self.graph is None:
                raise CalrefError("graph push is off, so it cannot be deleted")
            self.graph.delete(row.remote_id, row.account)
            return
        if row.kind != PushKind.GOOGLE or self.google is None:
            raise CalrefError(f"{row.kind} push is off, so it cannot be stopped")
        source = self.google_sources.get(row.source_id)
        if source is None:
            if self.google_source_for is None or not row.account:
                raise CalrefError("no google connection to stop it with")
            source = self.google_source_for(row.account)
        self.google.stop_channel(source, row.remote_id, row.resource_id or "")

    def _forget(self, row: StoredPush) -> None:
        try:
            self.store.delete_push_subscription(row.kind, row.remote_id)
        except Exception as err:
            log.warning("push: stored subscription %s not deleted: %s", row.remote_id, err)
            return
        self.saved.pop(row.key, None)


def google_account(source_id: str) -> str:
    """The account of a Google source id (``google:<email>`` or ``google:<email>/<calendar>``)."""
    return source_id.removeprefix("google:").split("/", 1)[0]


def _channel(row: StoredPush) -> Channel:
    assert row.token is not None and row.resource_id is not None
    return Channel(
        id=row.remote_id,
        resource_id=row.resource_id,
        expiration=row.expires,
        user_id=row.source_id,
        source_id=row.source_id,
        token=row.token,
    )
