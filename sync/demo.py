"""``calref demo``: the example organisation on embedded defaults.

Writes the example organisation (config and calendars for the current week)
to a folder and prints each user's week as ``calref preview`` shows it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import typer

from sync.config import load_config
from sync.example_org import TIMEZONE, write_example_org
from sync.preview import preview_table, preview_user


def run_demo(folder: Path, now: datetime | None = None) -> None:
    now = (now or datetime.now(TIMEZONE)).astimezone(TIMEZONE)
    monday = (now - timedelta(days=now.weekday())).date()
    config_path = write_example_org(folder, monday)
    app = load_config(config_path)
    start = datetime.combine(monday, datetime.min.time(), tzinfo=TIMEZONE)
    end = start + timedelta(days=7)
    typer.echo(f"The example organisation's week ({config_path}):\n")
    for user in app.users:
        typer.echo(preview_table(preview_user(app, user, start, end)) + "\n")
