"""The push hub: routes webhook notifications to sources, runs their syncs and subscription upkeep.

Microsoft Graph change notifications (``connectors.calendars.graph.push``) and
Google ``events.watch`` channels (``connectors.calendars.google.push``) only say
*that* a calendar changed; the source's own incremental sync is still the truth.
``PushHub`` maps each Graph mailbox and Google channel to a service source id,
answers notifications at once and hands the syncs (``Service.poll_source``) to
one worker thread, so the webhook answers well inside Graph's 3 s limit. The
same worker runs subscription upkeep (create, renew, recreate) and keeps each
source's poll interval at the safety interval while its subscription is live,
and at the normal interval when it is not (push failures never stop the
service: the source is simply polled). Subscriptions and channels are kept in
the store (``sync.push.state.PushState``): the first upkeep restores them, so a
restart reuses them; every change is saved; stale ones are deleted remotely.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial

from connectors.calendars.google.push import GoogleChannelManager, NotificationKind
from connectors.calendars.google.push import NotificationOutcome as GoogleOutcome
from connectors.calendars.google.source import GoogleCalendarSource
from connectors.calendars.graph.push import NotificationOutcome as GraphOutcome
from connectors.calendars.graph.push import SubscriptionManager
from connectors.calendars.graph.source import GraphCalendarSource
from rules.errors import CalrefError
from sync.push.state import GoogleSourceFor, PushState
from sync.service.service import Service

log = logging.getLogger(__name__)

_MAINTAIN = "\0maintain"  # the worker's task key for subscription upkeep

SetInterval = Callable[[str, timedelta], None]


class PushHub:
    """Routes notifications to source ids, runs their syncs and the subscription upkeep."""

    def __init__(
        self,
        service: Service,
        *,
        graph: SubscriptionManager | None,
        google: GoogleChannelManager | None,
        safety_interval: timedelta,
        set_interval: SetInterval,
        google_source_for: GoogleSourceFor | None = None,
    ) -> None:
        self.service = service
        self.graph = graph
        self.google = google
        self.safety_interval = safety_interval
        self._set_interval = set_interval
        self.graph_sources: dict[str, str] = {}  # mailbox -> source id
        self.google_sources: dict[str, GoogleCalendarSource] = {}  # source id -> source
        for source_id, (_user, source) in service.sources.items():
            if graph is not None and isinstance(source, GraphCalendarSource):
                self.graph_sources[source.address] = source_id
            elif google is not None and isinstance(source, GoogleCalendarSource):
                self.google_sources[source_id] = source
        self._normal = {sid: service.settings.interval_for(sid) for sid in self.source_ids}
        self.active: set[str] = set()  # source ids whose subscription or channel is live
        self._pending: dict[str, None] = {}  # ordered set of worker tasks
        self._busy = False
        self._stopping = False
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self.state = PushState(
            service.store,
            graph=graph,
            google=google,
            graph_sources=self.graph_sources,
            google_sources=self.google_sources,
            clock=service.clock,
            google_source_for=google_source_for,
        )

    @property
    def source_ids(self) -> list[str]:
        return [*self.graph_sources.values(), *self.google_sources]

    # -- notifications (request threads; never block) ------------------------------------

    def graph_notification(
        self, query: dict[str, str], body: bytes, *, lifecycle: bool
    ) -> GraphOutcome:
        """Answer a POST to the Graph notification or lifecycle URL and queue its syncs."""
        if self.graph is None:
            return GraphOutcome(404, "graph push is not configured")
        outcome = self.graph.handle_notification_request(query, body)
        sources = [
            self.graph_sources[m] for m in outcome.mailboxes_to_sync if m in self.graph_sources
        ]
        self.trigger(sources)
        if lifecycle and outcome.status == 202:
            self.request_maintenance()  # reauthorize / recreate now, not at the next timer
        if outcome.status >= 400:
            log.warning("graph notification refused (%d): %s", outcome.status, outcome.body)
        return outcome

    def google_notification(self, headers: dict[str, str]) -> GoogleOutcome:
        """Answer a POST to the Google channel address and queue the channel's source sync."""
        if self.google is None:
            return GoogleOutcome(NotificationKind.REJECTED, 404, "google push is not configured")
        outcome = self.google.handle(headers)
        if outcome.kind is NotificationKind.CHANGED and outcome.channel_id:
            channel = self.google.lookup(outcome.channel_id)
            if channel is not None:
                self.trigger([channel.source_id])
        elif outcome.kind is NotificationKind.REJECTED:
            log.log(
                logging.WARNING if outcome.http_status >= 400 else logging.INFO,
                "google notification ignored (%d, channel %s): %s",
                outcome.http_status,
                outcome.channel_id,
                outcome.why,
            )
        return outcome

    # -- the worker ----------------------------------------------------------------------

    def trigger(self, source_ids: Iterable[str]) -> None:
        """Queue a sync of each source (a source already queued is not queued twice)."""
        self._queue(source_ids)

    def request_maintenance(self) -> None:
        """Queue subscription upkeep on the worker (the scheduler's periodic job calls this)."""
        self._queue([_MAINTAIN])

    def _queue(self, keys: Iterable[str]) -> None:
        with self._cond:
            for key in keys:
                self._pending[key] = None
            self._cond.notify_all()

    def start_worker(self) -> None:
        """Start working through the queue (after the service has started)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="calref-push", daemon=True)
            self._worker.start()

    def stop_worker(self, timeout: float = 30.0) -> None:
        """Finish the task in hand, drop the rest and end the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the queue is empty and nothing runs; False when ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    return
                key = next(iter(self._pending))
                del self._pending[key]
                self._busy = True
            try:
                if key == _MAINTAIN:
                    self.maintain()
                else:
                    self.service.poll_source(key)
            except Exception:
                log.exception("push: %s failed; the next poll or notification retries", key)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # -- upkeep (the worker, or start-up before it runs) -----------------------------------

    def ensure_all(self) -> set[str]:
        """Create missing subscriptions and channels, renew due channels; returns live sources.

        The first call reuses the stored ones (renewing those due); stale stored
        ones are deleted remotely. A source whose subscription cannot be made is
        logged and polled as usual.
        """
        self._restore_once()
        graph, google = self.graph, self.google
        if graph is not None:
            live = self._live()
            for mailbox, source_id in self.graph_sources.items():
                if source_id not in live:
                    self._attempt(source_id, partial(graph.ensure, [mailbox]))
        if google is not None:
            for source_id, source in self.google_sources.items():
                self._attempt(source_id, partial(self.state.ensure_google, source_id, source))
        self.state.save()
        self.state.retire_orphans()
        return self._update_coverage()

    def maintain(self) -> set[str]:
        """Renew what is due, do queued lifecycle work, retry failed sources; sync what needs it."""
        self._restore_once()
        to_sync: list[str] = []
        if self.graph is not None and self.graph_sources:
            try:
                mailboxes = self.graph.maintain()
            except CalrefError as err:
                log.warning("graph subscriptions: upkeep failed, renewing one by one: %s", err)
                mailboxes = []
                self._renew_each(self.graph)
            self.state.save()
            to_sync += [self.graph_sources[m] for m in mailboxes if m in self.graph_sources]
        before = set(self.active)
        live = self.ensure_all()
        to_sync += sorted(live - before)  # (re)covered: catch up on what push may have missed
        self.trigger(to_sync)
        return live

    def _restore_once(self) -> None:
        """Reuse the stored subscriptions and channels (once), renewing the Graph ones due."""
        if not self.state.restored:
            self.state.restore()
            if self.graph is not None:
                self._renew_each(self.graph)  # a reused one may be due before the first upkeep

    def _renew_each(self, graph: SubscriptionManager) -> None:
        """Renew every due subscription on its own, so one failure does not hold back the rest."""
        due = self.service.clock.now() + graph.renew_before
        for sub in list(graph.subscriptions.values()):
            source_id = self.graph_sources.get(sub.mailbox)
            if source_id is not None and sub.expires <= due:
                self._attempt(source_id, partial(graph.renew, sub))

    def _attempt(self, source_id: str, action: Callable[[], object]) -> None:
        """Run one subscription action for a source, then save; a failure is logged."""
        try:
            action()
        except Exception as err:
            if not isinstance(err, CalrefError):
                log.exception("source %s: push subscription failed unexpectedly", source_id)
            log.warning(
                "source %s: push upkeep failed: %s (while it has no live subscription "
                "it is polled every %s)",
                source_id,
                err,
                self._normal[source_id],
            )
        finally:
            self.state.save()  # what was created, renewed or dropped, even on a failure

    def _live(self) -> set[str]:
        now = self.service.clock.now()
        live: set[str] = set()
        if self.graph is not None:
            for sub in list(self.graph.subscriptions.values()):
                if sub.expires > now and sub.mailbox in self.graph_sources:
                    live.add(self.graph_sources[sub.mailbox])
        if self.google is not None:
            for channel in self.google.channels():
                if channel.expiration > now and channel.source_id in self.google_sources:
                    live.add(channel.source_id)
        return live

    def _update_coverage(self) -> set[str]:
        """Safety interval for sources with live push, their normal interval for the rest."""
        live = self._live()
        for source_id in self.source_ids:
            on = source_id in live
            if on != (source_id in self.active):
                log.info(
                    "source %s: push %s, polled every %s",
                    source_id,
                    "active" if on else "inactive",
                    self.safety_interval if on else self._normal[source_id],
                )
            self._set_interval(source_id, self.safety_interval if on else self._normal[source_id])
        self.active = live
        return set(live)
