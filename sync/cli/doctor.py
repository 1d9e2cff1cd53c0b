"""``calref check``: is this config ready to run? One line per thing checked.

Loading the config already validates it (and the rule file) completely, and
for ``check`` also that a SQLite store could be written. With ``connect``,
each calendar of every user is set up and read once for the coming day, and the
switchboard is asked for its users, so an administrator sees every credential,
permission or address problem before starting the service: every calendar is
tried, whatever failed before it. Nothing is changed anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.calendars.base import SyncWindow
from connectors.switchboard.base import Switchboard
from rules.errors import CalrefError
from rules.wording import plural
from sync.config import AppConfig, UnbuiltSource


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
    calendars = sum(len(u.calendars) for u in app.file.users)
    source = app.file.rules or "built-in defaults"
    users = plural(len(app.users), "user")
    return [
        Finding("config", True, f"{users}, {plural(calendars, 'calendar')}, {app.timezone.key}"),
        Finding("rules", True, f"{plural(len(app.rules.rules), 'rule')} from {source}"),
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
        for source in app.sources_or_failures(user.id):
            if isinstance(source, UnbuiltSource):
                findings.append(Finding(source.id, False, str(source.error)))
                continue
            try:
                result = source.sync(window, None)
            except CalrefError as err:
                findings.append(Finding(source.id, False, str(err)))
                continue
            except Exception as err:  # a connector's bug must not hide the other checks
                why = f"unexpected {type(err).__name__}: {err!r:.200}"
                findings.append(Finding(source.id, False, why))
                continue
            detail = f"{plural(len(result.events), 'event')} in the next 24 h"
            if result.warnings:
                detail += f"; {len(result.warnings)} skipped: {result.warnings[0]}"
            findings.append(Finding(source.id, True, detail))
    findings.append(_check_switchboard(app, switchboard))
    return findings


def _check_switchboard(app: AppConfig, switchboard: Callable[[], Switchboard]) -> Finding:
    try:
        known = {u.id for u in switchboard().list_users()}
    except CalrefError as err:
        return Finding("switchboard", False, str(err))
    except Exception as err:  # an adapter's bug is one failed check, not a traceback
        return Finding("switchboard", False, f"unexpected {type(err).__name__}: {err!r:.200}")
    missing = [u.id for u in app.users if u.id not in known]
    if missing:
        return Finding("switchboard", False, f"does not know user(s) {', '.join(missing)}")
    kind = app.file.switchboard.kind
    where = "the embedded simulator" if kind == "simulator" else app.file.switchboard.url
    everyone = "the 1 user" if len(app.users) == 1 else f"all {len(app.users)} users"
    return Finding("switchboard", True, f"{where} knows {everyone}")
