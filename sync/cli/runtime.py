"""Building the running service from a config: store, switchboard, sources, planner.

``calref run``, ``calref status``, the demo and the end-to-end tests all go
through here, so they assemble the service the same way.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from connectors.calendars.base import CalendarSource, SyncWindow
from connectors.clock import Clock
from connectors.secrets import read_secret
from connectors.switchboard.base import Switchboard
from connectors.switchboard.http import HttpSwitchboard
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.model import CalendarEvent, Plan, User
from rules.planner import plan_user
from sync.config import AppConfig, UnbuiltSource
from sync.service.lease import LeaderLease
from sync.service.service import Planner, Service
from sync.service.settings import ServiceSettings
from sync.store import Store

log = logging.getLogger(__name__)


def store_url(app: AppConfig) -> str:
    """The store URL, with a relative SQLite path taken relative to the config file."""
    url = app.file.store
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((app.base_dir / url[len(prefix) :]).resolve())
    return url


def open_store(app: AppConfig, *, readonly: bool = False) -> Store:
    """The configured store, migrated; ``readonly`` (``calref status``): never created or
    changed, and a ``StoreError`` when it does not exist or is not at the newest schema."""
    store = Store.open(store_url(app), readonly=readonly)
    if not readonly:
        store.migrate()
    return store


def build_switchboard(app: AppConfig, clock: Clock) -> Switchboard:
    """The configured switchboard: the HTTP adapter, or the embedded simulator."""
    cfg = app.file.switchboard
    if cfg.kind == "simulator":
        log.info("switchboard: the embedded simulator (no real phones are changed)")
        return SimulatedSwitchboard(app.users, clock=clock)
    token = None
    if cfg.token_env or cfg.token_file:
        token = read_secret(env=cfg.token_env, file=cfg.token_file, what="switchboard token")
    assert cfg.url is not None  # checked when the config was loaded
    return HttpSwitchboard(
        cfg.url,
        token,
        client_name=cfg.client_name,
        timeout=cfg.timeout_seconds,
        max_connections=cfg.concurrency,
    )


def build_sources(app: AppConfig) -> dict[str, list[CalendarSource]]:
    """Every user's calendar sources; one that cannot be set up is logged and kept as an
    ``UnbuiltSource``, which fails every sync, so the store and ``calref status`` show it."""
    sources: dict[str, list[CalendarSource]] = {}
    for user in app.users:
        sources[user.id] = app.sources_or_failures(user.id)
        for source in sources[user.id]:
            if isinstance(source, UnbuiltSource):
                log.error("user %s: calendar %s not set up: %s", user.id, source.id, source.error)
    return sources


def make_planner(app: AppConfig) -> Planner:
    ctx = app.evaluation_context()

    def planner(user: User, events: list[CalendarEvent], window: SyncWindow) -> Plan:
        return plan_user(user, events, ctx)

    return planner


def service_settings(app: AppConfig) -> ServiceSettings:
    return ServiceSettings(
        horizon=timedelta(days=app.file.sync.horizon_days),
        poll_interval=timedelta(seconds=app.file.sync.poll_seconds),
        concurrency=app.file.switchboard.concurrency,
    )


def build_service(
    app: AppConfig,
    clock: Clock,
    *,
    switchboard: Switchboard | None = None,
    store: Store | None = None,
    lease: LeaderLease | None = None,
) -> Service:
    """Assemble the service for ``app`` (nothing is contacted until ``start``).

    ``lease``: the leader lease on ``store`` (``calref run``); None: the only process.
    """
    return Service(
        store=store or open_store(app),
        switchboard=switchboard or build_switchboard(app, clock),
        sources=build_sources(app),
        users=app.users,
        planner=make_planner(app),
        clock=clock,
        settings=service_settings(app),
        lease=lease,
    )
