"""``calref preview`` and ``calref explain``: what the core decides, without touching anything.

Reads each calendar of a user once, runs the same ``plan_user`` the service
uses, and renders the referrals, phone actions, ignored events and refused
tags that fall in the asked window, as a table or as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.calendars.base import SyncWindow
from rules.errors import CalendarError, CalrefError
from rules.evaluate import explain_event, to_utc
from rules.model import CalendarEvent, Plan, User
from rules.planner import plan_user
from sync.config import AppConfig

# Events are read this far beyond the asked window, so a referral that starts
# before it (a chain of meetings, a long absence) is shown whole.
READ_MARGIN = timedelta(days=7)


@dataclass
class UserPreview:
    """One user's plan restricted to a window, plus the calendars that failed."""

    user: User
    timezone: ZoneInfo
    start: datetime
    end: datetime
    plan: Plan
    events: dict[str, CalendarEvent]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_moment(text: str, tz: ZoneInfo, *, option: str) -> datetime:
    """A date (local midnight) or a date-time (local unless it carries an offset)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CalrefError(
            f"{option}: '{text}' is not a date (2026-12-01) or date-time (2026-12-01T08:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


@dataclass
class CalendarRead:
    """Every event of a user's calendars, with what could not be read."""

    events: list[CalendarEvent]
    errors: list[str]  # a whole calendar that failed
    warnings: list[str]  # entries a calendar skipped (one broken event among good ones)


def read_events(app: AppConfig, user: User, window: SyncWindow) -> CalendarRead:
    """Read each calendar of ``user`` once; a failing calendar becomes an error line."""
    read = CalendarRead([], [], [])
    for source in app.sources(user.id):
        try:
            result = source.sync(window, None)
        except CalendarError as err:
            read.errors.append(str(err))
            continue
        read.events.extend(result.events)
        read.warnings.extend(f"{source.id}: {warning}" for warning in result.warnings)
    return read


def preview_user(app: AppConfig, user: User, start: datetime, end: datetime) -> UserPreview:
    if end <= start:
        raise CalrefError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    window = SyncWindow(start - READ_MARGIN, end + READ_MARGIN)
    read = read_events(app, user, window)
    plan = plan_user(user, read.events, app.evaluation_context())
    return UserPreview(
        user=user,
        timezone=app.timezone,
        start=start,
        end=end,
        plan=plan,
        events={e.key: e for e in read.events},
        errors=read.errors,
        warnings=read.warnings,
    )


def _local(moment: datetime | date, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset at that instant; a date is local midnight."""
    return to_utc(moment, tz).astimezone(tz).isoformat()


def _event_in_window(preview: UserPreview, key: str) -> bool:
    event = preview.events.get(key)
    if event is None:
        return False
    tz = preview.timezone
    start, end = to_utc(event.start, tz), to_utc(event.end, tz)
    return start < preview.end and (end > preview.start or start >= preview.start)


def preview_json(preview: UserPreview) -> dict[str, Any]:
    """The ``calref preview --json`` document for one user."""
    tz, plan = preview.timezone, preview.plan
    return {
        "user": preview.user.id,
        "timezone": tz.key,
        "from": _local(preview.start, tz),
        "to": _local(preview.end, tz),
        "referrals": [
            {
                "start": _local(r.start, tz),
                "end": _local(r.end, tz),
                "reason": r.reason,
                "message": r.message,
                "start_action": r.start_action.to_json(),
                "end_action": r.end_action.to_json(),
                "events": list(r.events),
            }
            for r in plan.referrals
            if r.start < preview.end and r.end > preview.start
        ],
        "actions": [
            {"at": _local(a.at, tz), "action": a.action.to_json(), "events": list(a.events)}
            for a in plan.actions
            if preview.start <= a.at < preview.end
        ],
        "ignored": [
            {"event": i.event, "start": _local(i.start, tz), "why": i.why}
            for i in plan.ignored
            if _event_in_window(preview, i.event)
        ],
        "refused": [
            {"event": r.event, "tag": r.tag, "why": r.why}
            for r in plan.refused
            if _event_in_window(preview, r.event)
        ],
    }


def _hm(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%a %d %b %H:%M")


def preview_table(preview: UserPreview) -> str:
    """A readable rendering of the same content as ``preview_json``."""
    doc = preview_json(preview)
    tz = preview.timezone
    user = preview.user
    lines = [
        f"{user.name} ({user.id}, ext {user.extension}) — "
        f"{_hm(preview.start, tz)} to {_hm(preview.end, tz)} {tz.key}",
    ]
    referrals = [
        r for r in preview.plan.referrals if r.start < preview.end and r.end > preview.start
    ]
    if not referrals:
        lines.append("  no referrals")
    for r in referrals:
        lines.append(
            f"  {_hm(r.start, tz)} – {_hm(r.end, tz)}  {r.reason:<14} {r.message!r:<30} "
            f"start: {r.start_action}  end: {r.end_action}"
        )
    if doc["actions"]:
        lines.append("  phone actions:")
        for a in preview.plan.actions:
            if preview.start <= a.at < preview.end:
                lines.append(f"    {_hm(a.at, tz)}  {a.action}  ({a.moment})")
    if doc["ignored"]:
        lines.append(
            "  ignored: " + ", ".join(f"{i['event']} ({i['why']})" for i in doc["ignored"])
        )
    for r in doc["refused"]:
        lines.append(f"  refused: {r['tag']} in {r['event']}: {r['why']}")
    for error in preview.errors:
        lines.append(f"  calendar error: {error}")
    for warning in preview.warnings:
        lines.append(f"  calendar warning: {warning}")
    return "\n".join(lines)


def explain_text(app: AppConfig, user: User, uid: str, start: datetime, end: datetime) -> str:
    """Which rule matched each occurrence of ``uid`` and why the earlier rules did not."""
    read = read_events(app, user, SyncWindow(start, end))
    matching = [e for e in read.events if e.uid == uid]
    if not matching:
        problems = read.errors + read.warnings
        detail = f" ({'; '.join(problems)})" if problems else ""
        raise CalrefError(
            f"no event with UID '{uid}' in {user.id}'s calendars between "
            f"{start.date().isoformat()} and {end.date().isoformat()}{detail}"
        )
    ctx = app.evaluation_context()
    tz = app.timezone
    out: list[str] = []
    for event in sorted(matching, key=lambda e: to_utc(e.start, tz)):
        out.append(f"{event.key}  {_local(event.start, tz)} – {_local(event.end, tz)}")
        out.extend(f"  {verdict}" for verdict in explain_event(event, user, ctx))
    return "\n".join(out)
