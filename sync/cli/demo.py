"""``calref demo``: the example organisation end to end, in accelerated time.

Writes the example organisation (config and calendars around the current
time) to a folder, builds the real service on embedded defaults (SQLite, the
built-in switchboard simulator, ICS calendars) and runs six hours on a
virtual clock. Along the way the story edits a calendar (a course is
cancelled while it runs) and a user changes her phone by hand (the end action
leaves it alone). Each action is printed as it is carried out, with where a
call to that person would ring afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import typer

from connectors.clock import SystemClock, VirtualClock
from connectors.switchboard.sim_state import SimulatedSwitchboard
from rules.model import PhoneAction
from sync.cli.example_org import TIMEZONE, scenario, write_calendar, write_example_org
from sync.cli.preview import preview_table, preview_user
from sync.cli.runtime import build_service
from sync.config import load_config
from sync.service.executor import ActionEvent

RUN_FOR = timedelta(hours=6)


def _local(moment: datetime) -> str:
    return moment.astimezone(TIMEZONE).strftime("%H:%M")


def run_demo(
    folder: Path, now: datetime | None = None, echo: Callable[[str], None] = typer.echo
) -> int:
    """Run the story; return how many phone actions the simulator received."""
    start = (now or SystemClock().now()).astimezone(TIMEZONE).replace(second=0, microsecond=0)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("calref.db*"):
        leftover.unlink()
    config_path = write_example_org(folder, start)
    app = load_config(config_path)

    echo(f"The example organisation ({config_path}), today from {_local(start)}:\n")
    for user in app.users:
        echo(preview_table(preview_user(app, user, start, start + RUN_FOR)) + "\n")

    clock = VirtualClock(start)
    switchboard = SimulatedSwitchboard(app.users, clock=clock)
    service = build_service(app, clock, switchboard=switchboard)

    def show(event: ActionEvent) -> None:
        route = switchboard.route(event.user)
        late = (
            f" (due {_local(event.due_at)}, applied late)" if event.late_by > timedelta(0) else ""
        )
        echo(
            f"  {_local(event.at)}  {event.user:<6} {event.moment:<6} {event.action!s:<24} "
            f"{event.outcome:<6}{late} → calls ring {route.target}: {route.why}"
        )

    service.add_action_listener(show)
    echo(
        f"Running the service for {RUN_FOR} of virtual time (SQLite store, simulated switchboard):"
    )
    service.run_virtual(start + timedelta(minutes=60))

    echo("  -- Carin's course is cancelled while it runs; calref ends her referral now --")
    carin = [
        dataclasses.replace(m, cancelled=True) if m.uid == "carin-course" else m
        for m in scenario(start)["carin"]
    ]
    write_calendar(folder, "carin", carin)
    service.run_virtual(start + timedelta(minutes=150))

    echo("  -- Alice opens her phone from the mobile app during her visit; calref keeps it --")
    switchboard.manual_change("alice", PhoneAction.open(), client="mobile-app")
    service.run_virtual(start + RUN_FOR)

    sent = [c for c in switchboard.log() if c.op == "action" and c.client == "calref"]
    replays = sum(1 for c in sent if c.replayed)
    echo(
        f"\nDone: {len(sent)} phone actions sent to the switchboard, {replays} replayed, "
        f"store in {folder / 'calref.db'}."
    )
    service.store.close()
    return len(sent)
