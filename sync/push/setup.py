"""Push in ``calref run``: wiring the webhook listener, the hub and subscription upkeep.

Microsoft Graph and Google Workspace calendars can notify calref of changes
instead of waiting for the next poll. The parts: ``sync.push.hub.PushHub``
(notification routing, the sync worker, subscription upkeep),
``sync.push.app.create_push_app`` (the webhook FastAPI app) and
``connectors.http_server.serve_in_thread`` (the uvicorn listener thread).
This module builds the hub from the config (``build_hub``) and starts it all
for ``calref run`` (``start_push``, ``PushRuntime``). See docs/calendars-graph.md
and docs/calendars-google.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from connectors.calendars.base import Mailbox
from connectors.calendars.google.config import GoogleCalendarConfig, GoogleConnectionConfig
from connectors.calendars.google.push import GoogleChannelManager
from connectors.calendars.google.source import GoogleCalendarSource
from connectors.calendars.google.source import build_source as build_google_source
from connectors.calendars.graph.push import SubscriptionManager
from connectors.calendars.graph.source import GraphCalendarSource
from connectors.http_server import RunningServer, serve_in_thread
from connectors.secrets import read_secret
from rules.errors import CalrefError
from rules.wording import plural
from sync.config import AppConfig, PushConfig
from sync.push.app import GOOGLE_PATH, GRAPH_LIFECYCLE_PATH, GRAPH_PATH, create_push_app
from sync.push.hub import PushHub, SetInterval
from sync.push.state import GoogleSourceFor
from sync.service.scheduler import ServiceScheduler
from sync.service.service import Service

__all__ = ["PushRuntime", "build_hub", "start_push"]

log = logging.getLogger(__name__)


def build_hub(app: AppConfig, service: Service, set_interval: SetInterval) -> PushHub:
    """The hub for ``app``'s push block over ``service``'s Graph and Google sources."""
    cfg = app.file.push
    if cfg is None:
        raise CalrefError("push: the config has no push block")
    sources = [source for _user, source in service.sources.values()]
    graph_sources = [s for s in sources if isinstance(s, GraphCalendarSource)]
    graph = _graph_manager(app, cfg, service, graph_sources[0]) if graph_sources else None
    google = None
    if any(isinstance(s, GoogleCalendarSource) for s in sources):
        google = GoogleChannelManager(cfg.url(GOOGLE_PATH), clock=service.clock)
    return PushHub(
        service,
        graph=graph,
        google=google,
        safety_interval=timedelta(seconds=cfg.safety_poll_seconds),
        set_interval=set_interval,
        google_source_for=_google_source_for(app),
    )


def _google_source_for(app: AppConfig) -> GoogleSourceFor | None:
    """Builds a source acting as an account, to stop channels of calendars no longer configured."""
    if "google" not in app.file.connections:
        return None

    def source_for(account: str) -> GoogleCalendarSource:
        connection = app.connection("google", GoogleConnectionConfig)
        mailbox = Mailbox(account, account, app.org_domains, app.file.timezone)
        return build_google_source(connection, GoogleCalendarConfig(), mailbox)

    return source_for


def _graph_manager(
    app: AppConfig, cfg: PushConfig, service: Service, source: GraphCalendarSource
) -> SubscriptionManager | None:
    """One manager on the Graph sources' shared client; None (and logged) when it cannot be."""
    file = cfg.client_state_file
    if file is not None and not Path(file).is_absolute():
        file = str(app.base_dir / file)
    try:
        state = read_secret(env=cfg.client_state_env, file=file, what="push client_state")
        return SubscriptionManager(
            source.client,
            notification_url=cfg.url(GRAPH_PATH),
            lifecycle_url=cfg.url(GRAPH_LIFECYCLE_PATH),
            client_state=state,
            clock=service.clock,
        )
    except CalrefError as err:
        log.error("graph push disabled, graph calendars are polled: %s", err)
        return None


@dataclass
class PushRuntime:
    """The push listener and hub of a running ``calref run``."""

    hub: PushHub
    server: RunningServer
    scheduler: ServiceScheduler
    maintenance: timedelta

    def activate(self) -> None:
        """After the scheduler started: work the queue and renew subscriptions periodically."""
        self.hub.start_worker()
        self.scheduler.add_periodic(
            "push-maintenance",
            self.hub.request_maintenance,
            self.maintenance,
            name="renew push subscriptions",
        )

    def stop(self) -> None:
        """Stop taking notifications, then stop the worker (SIGTERM)."""
        self.server.stop()
        self.hub.stop_worker()


def start_push(app: AppConfig, service: Service, scheduler: ServiceScheduler) -> PushRuntime | None:
    """Start the listener and create subscriptions (before ``scheduler.start()``).

    Returns None when push is not configured, there are no Graph or Google
    calendars, or the listener cannot start (then everything is polled).
    """
    cfg = app.file.push
    if cfg is None:
        return None
    hub = build_hub(app, service, scheduler.set_source_interval)
    if not hub.source_ids:
        log.info("push: no graph or google calendars to subscribe to; the listener is not started")
        return None
    try:
        server = serve_in_thread(
            create_push_app(hub), cfg.listen_host, cfg.listen_port, name="push listener"
        )
    except CalrefError as err:
        log.error("push disabled, every calendar is polled: %s", err)
        return None
    log.info("push listener on %s, public address %s", server.url, cfg.public_url)
    live = hub.ensure_all()
    log.info("push active for %d of %s", len(live), plural(len(hub.source_ids), "calendar"))
    return PushRuntime(hub, server, scheduler, timedelta(seconds=cfg.maintenance_seconds))
