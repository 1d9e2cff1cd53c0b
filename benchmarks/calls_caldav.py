"""CalDAV API calls per user per hour when nothing changes, against a real Radicale server.

Runs the CalDAV source for one user for one simulated hour (a virtual clock,
no sleeping): one initial window sync, then a poll every 60 s, in each sync
mode (sync-token, ctag, window re-read). Counts the HTTP requests the server
saw and the response bytes. CalDAV has no standard push (WebDAV-Push is an
IETF draft), so there is no push mode to measure.

Run: .venv/bin/python benchmarks/calls_caldav.py
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "connectors"))

from caldav_ics import single, weekly
from radicale_server import CalendarWriter, RadicaleServer

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.caldav.source import CalDAVSource
from connectors.clock import VirtualClock

POLL_SECONDS = 60
HOUR = 3600
MAILBOX = Mailbox(user_id="alice", email="alice@example.se")


def window_at(now: datetime) -> SyncWindow:
    """The service's planning window: from the start of today, 14 days ahead."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return SyncWindow(day, day + timedelta(days=14))


def run(server: RadicaleServer, calendar: CalendarWriter, mode: str) -> tuple[int, int, int, int]:
    """(initial requests, requests during the hour, response bytes during the hour, polls)."""
    clock = VirtualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX, mode=mode)  # type: ignore[arg-type]
    server.reset_count()
    result = source.sync(window_at(clock.now()), None)
    initial = len(server.requests)
    server.reset_count()
    state = result.state
    polls = 0
    for _ in range(HOUR // POLL_SECONDS):
        clock.advance(timedelta(seconds=POLL_SECONDS))
        result = source.sync(window_at(clock.now()), state)
        state = result.state
        polls += 1
    return initial, len(server.requests), server.bytes_out, polls


def main() -> None:
    with RadicaleServer() as server:
        calendar = CalendarWriter(server, "/alice/calendar/").create()
        for day in range(2, 14):
            calendar.put(
                f"m{day}.ics",
                single(f"m{day}", f"202603{day:02d}T130000Z", f"202603{day:02d}T140000Z"),
            )
        calendar.put("series.ics", weekly("series"))
        print("CalDAV (Radicale 3, 13 resources), one user, one hour, poll every 60 s, no changes")
        for mode in ("sync-token", "ctag", "window"):
            initial, calls, size, polls = run(server, calendar, mode)
            floor = HOUR // POLL_SECONDS
            print(
                f"polling ({mode}): {calls} calls/user/h (floor: {floor} = one call per poll; "
                f"{polls} polls), {size / 1024:.1f} KiB/h answered, "
                f"+{initial} calls once for the initial window sync"
            )
        print("push: not available (CalDAV has no standard push; WebDAV-Push is a draft)")


if __name__ == "__main__":
    main()
