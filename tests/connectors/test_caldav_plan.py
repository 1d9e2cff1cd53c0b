"""See the plan follow the CalDAV calendar: Radicale -> CalDAVSource -> rules.planner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from caldav_ics import single
from radicale_server import CalendarWriter, RadicaleServer

from connectors.calendars.base import Mailbox, SyncResult, SyncWindow
from connectors.calendars.caldav.source import CalDAVSource
from rules import rulefile
from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext
from rules.model import CalendarEvent, Plan, User
from rules.planner import plan_user

WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC))
MAILBOX = Mailbox(user_id="alice", email="alice@example.se")
USER = User(id="alice", name="Alice", email="alice@example.se", extension="1234")
# Read next to rules/rulefile.py: under plain `pytest` the name "rules" can resolve to the
# tests/rules folder (a namespace package), which breaks rulefile.default_rules().
RULES_TEXT = (Path(rulefile.__file__).parent / "default_rules.yaml").read_text(encoding="utf-8")
CTX = EvaluationContext(
    timezone=ZoneInfo("Europe/Stockholm"),
    policy=ForwardPolicy(),
    rules=rulefile.parse_rules(RULES_TEXT, "default_rules.yaml"),
)


def apply(known: dict[str, CalendarEvent], result: SyncResult) -> dict[str, CalendarEvent]:
    out = {} if result.full else dict(known)
    for key in result.removed:
        out.pop(key, None)
    out.update({e.key: e for e in result.events})
    return out


def plan(known: dict[str, CalendarEvent]) -> Plan:
    return plan_user(USER, sorted(known.values(), key=lambda e: e.key), CTX)


def test_referrals_follow_create_move_cancel_and_delete_in_the_calendar() -> None:
    with RadicaleServer() as server:
        calendar = CalendarWriter(server, "/alice/calendar/").create()
        calendar.put("m.ics", single("m", "20260303T130000Z", "20260303T140000Z", "Budget"))
        source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX)
        first = source.sync(WINDOW, None)
        known = apply({}, first)
        referrals = plan(known).referrals
        assert [(r.start, r.end, r.events) for r in referrals] == [
            (datetime(2026, 3, 3, 13, tzinfo=UTC), datetime(2026, 3, 3, 14, tzinfo=UTC), ("m",))
        ]

        calendar.put("m.ics", single("m", "20260304T090000Z", "20260304T103000Z", "Budget"))
        moved = source.sync(WINDOW, first.state)
        known = apply(known, moved)
        assert [(r.start, r.end) for r in plan(known).referrals] == [
            (datetime(2026, 3, 4, 9, tzinfo=UTC), datetime(2026, 3, 4, 10, 30, tzinfo=UTC))
        ]

        calendar.put(
            "m.ics",
            single("m", "20260304T090000Z", "20260304T103000Z", "Budget", "STATUS:CANCELLED\n"),
        )
        cancelled = source.sync(WINDOW, moved.state)
        known = apply(known, cancelled)
        after_cancel = plan(known)
        assert after_cancel.referrals == () and after_cancel.actions == ()
        assert [(i.event, i.why) for i in after_cancel.ignored] == [("m", "cancelled")]

        calendar.delete("m.ics")
        known = apply(known, source.sync(WINDOW, cancelled.state))
        assert plan(known) == Plan(user="alice")
