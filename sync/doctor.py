"""``calref check``: is this config ready to run? One line per thing checked.

Loading the config already validates it (and the rule file) completely. With
``connect``, each calendar is read once for the coming day and the switchboard
is asked for its users, so an administrator sees every credential, permission
or address problem before starting the service. Nothing is changed anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.calendars.base import SyncWindow
from connectors.switchboard.base import Switchboard
from rules.errors import CalrefError
from sync.config import AppConfig


@dataclass(frozen=True)
class Finding:
    """One thing checked: what, whether it is fine, and the detail."""

    what: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.detail}"


def check_config(app: AppConfig) -> list[Finding]:
    """What loading the config established (it would not have loaded otherwise)."""
    calendars = sum(len(app.calendar_entries(u.id)) for u in app.users)
    source = app.file.rules or "built-in defaults"
    return [
        Finding(
            "config", True, f"{len(app.users)} users, {calendars} calendars, {app.timezone.key}"
        ),
        Finding("rules", True, f"{len(app.rules.rules)} rules from {source}"),
    ]


def check_connections(
    app: AppConfig,
    now: datetime,
    switchboard: Callable[[], Switchboard],
) -> list[Finding]:
    """Read every calendar for the next day and ask the switchboard who it knows."""
    findings: list[Finding] = []
    window = SyncWindow(now, now + timedelta(days=1))
    for user in app.users:
        try:
            sources = app.sources(user.id)
        except CalrefError as err:
            findings.append(Finding(f"calendars of {user.id}", False, str(err)))
            continue
        for source in sources:
            try:
                result = source.sync(window, None)
            except CalrefError as err:
                findings.append(Finding(source.id, False, str(err)))
                continue
            detail = f"{len(result.events)} events in the next 24 h"
            if result.warnings:
                detail += f"; {len(result.warnings)} skipped: {result.warnings[0]}"
            findings.append(Finding(source.id, True, detail))
    try:
        known = {u.id for u in switchboard().list_users()}
    except CalrefError as err:
        findings.append(Finding("switchboard", False, str(err)))
        return findings
    missing = [u.id for u in app.users if u.id not in known]
    if missing:
        findings.append(
            Finding("switchboard", False, f"does not know user(s) {', '.join(missing)}")
        )
    else:
        kind = app.file.switchboard.kind
        where = "the embedded simulator" if kind == "simulator" else app.file.switchboard.url
        findings.append(Finding("switchboard", True, f"{where} knows all {len(app.users)} users"))
    return findings
