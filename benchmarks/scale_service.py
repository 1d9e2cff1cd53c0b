"""Rows 1, 2, 4, 5, 6 and 7 of the scale benchmark: ``calref run`` with N users, for real.

One ``calref simulator`` and, in turn, these ``calref run`` processes on the N
generated ICS calendars (poll every 60 s, SQLite store):

1. a fresh store (rows 4 and 7): from the launch until the first due actions
   were sent (``#close`` meetings of a few users start ``due_after`` seconds after
   the launch) and until the first full plan was on the simulator (every user has
   a referral and no publication came for ``quiet_seconds``; the figure is the last
   publication's time). Then the steady window of rows 1 and 2 (``scale_idle``).
   Peak memory (row 7) is read before it is stopped.
2. the same store again (row 5), started just after another ``#close`` meeting
   began: one due user a ``due_spacing`` apart all the way, so that one falls due
   while no process runs; how long its close takes to reach the simulator.
3. a fresh store each, SIGTERM during start-up (row 6): ``sigterm_after`` seconds
   after the launch, and 1 s after its first log line (start-up under way). An exit
   by the signal itself (code -15) means no handler was set yet: no clean stop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import scale_idle
from scale_calendars import due_meeting, user_id, with_events, write_atomically, write_config
from scale_procs import (
    STOP_WAIT,
    Children,
    LogTail,
    Proc,
    Simulator,
    calref_command,
    parse_at,
    peak_memory,
)
from scale_report import Result, Settings, failed, not_reached, seconds

RUNNING = "calref running"
MEMORY_GOAL_MIB = 200.0
FIRST_RUN_ROWS = ("1", "2a", "2b", "4a", "4b", "5", "7")


@dataclass(frozen=True)
class DuePlan:
    """Which users get a ``#close`` meeting at a known moment after the first launch."""

    first: tuple[int, ...]  # due ``due_after`` s after the launch (row 4)
    grid: tuple[int, ...]  # one every ``spacing`` s after that (row 5)
    spacing: float

    @property
    def users(self) -> frozenset[int]:
        return frozenset(self.first + self.grid)


def due_plan(users: int, settings: Settings) -> DuePlan:
    """Enough due users that one falls due whenever the second start comes."""
    span = settings.startup_timeout + settings.steady_seconds + STOP_WAIT + 60
    first = max(1, min(5, users // 10))
    room = max(1, users // 2 - first)
    spacing = max(settings.due_spacing, span / room)
    grid = math.ceil(span / spacing) + 2
    return DuePlan(tuple(range(first)), tuple(range(first, first + grid)), spacing)


@dataclass
class Startup:
    """What the first start showed."""

    first_sent: dict[str, float] = field(default_factory=dict)  # user -> wall time of the close
    plan_done_at: float | None = None  # wall time of the last publication of the full plan
    users_with_referrals: int = 0
    publications: int = 0
    running_at: float | None = None  # wall time "calref running" was read
    died: str | None = None


def _closes(sim: Simulator, user: str, after: float) -> list[float]:
    """When the simulator received a ``close`` for ``user`` at or after ``after``."""
    out = []
    for c in sim.log(user):
        if c["op"] == "action" and c["error"] is None and str(c["detail"]).startswith("close"):
            at = parse_at(c["at"])
            if at >= after:
                out.append(at)
    return out


def _watch_startup(
    proc: Proc, tail: LogTail, sim: Simulator, users: int, first: list[str], s: Settings
) -> Startup:
    out = Startup()
    deadline = proc.started + s.startup_timeout
    plan_period = max(5.0, users / 100)  # a full log fetch costs the simulator CPU
    next_plan = time.monotonic() + 1.0
    last_count, last_change = -1, time.monotonic()
    plan_done = False
    while time.monotonic() < deadline:
        tail.read()
        if out.running_at is None and RUNNING in tail.first_seen:
            out.running_at = tail.first_seen[RUNNING]
        if not proc.alive():
            out.died = f"calref run exited with {proc.popen.returncode}:\n{proc.tail()}"
            return out
        for uid in first:
            if uid not in out.first_sent:
                sent = _closes(sim, uid, proc.started_wall)
                if sent:
                    out.first_sent[uid] = min(sent)
        if not plan_done and time.monotonic() >= next_plan:
            log = [c for c in sim.log() if c["op"] == "publish_referral" and c["error"] is None]
            out.users_with_referrals = len({c["user"] for c in log})
            out.publications = len(log)
            if len(log) != last_count:
                last_count, last_change = len(log), time.monotonic()
            quiet = time.monotonic() - last_change >= s.quiet_seconds
            if out.users_with_referrals == users and quiet and log:
                plan_done = True
                out.plan_done_at = max(parse_at(c["at"]) for c in log)
            next_plan = time.monotonic() + plan_period
        if plan_done and len(out.first_sent) == len(first):
            break
        time.sleep(0.5)
    return out


def _launch(children: Children, folder: Path, config: str, name: str) -> tuple[Proc, LogTail]:
    proc = children.start(calref_command("run", "--config", config), folder, name)
    return proc, LogTail(proc.err, (RUNNING, scale_idle.SKIPPED, scale_idle.STILL_SYNCING))


def run_rows(
    users: int,
    folder: Path,
    texts: dict[int, str],
    due: DuePlan,
    sim: Simulator,
    children: Children,
    s: Settings,
    *,
    stat_floor: float,
    raw_seconds: float | None,
    out: list[Result],
) -> None:
    """The rows of this module for ``users`` users (calendars in ``folder/calendars``), each
    added to ``out`` as soon as it is measured."""
    calendars = folder / "calendars"
    if any(s.wants(r) for r in "12457"):
        write_config(folder / "config.yaml", users, sim.url, poll_seconds=scale_idle.POLL_SECONDS)
        _first_and_second_start(
            users,
            folder,
            calendars,
            texts,
            due,
            sim,
            children,
            s,
            stat_floor=stat_floor,
            raw_seconds=raw_seconds,
            out=out,
        )
    if s.wants("6"):
        _sigterm_rows(users, folder, sim, children, s, out)


def _first_and_second_start(
    users: int,
    folder: Path,
    calendars: Path,
    texts: dict[int, str],
    due: DuePlan,
    sim: Simulator,
    children: Children,
    s: Settings,
    *,
    stat_floor: float,
    raw_seconds: float | None,
    out: list[Result],
) -> None:
    n = f"{users:,}"
    # the due meetings, written just before the launch they are timed from
    launch = time.time()
    starts: dict[int, float] = {}
    for k, index in enumerate(due.first + due.grid):
        offset = 0 if index in due.first else k - len(due.first) + 1
        moment = math.ceil(launch + s.due_after + offset * due.spacing)  # ICS: whole seconds
        at = datetime.fromtimestamp(moment, UTC)
        starts[index] = at.timestamp()
        meeting = due_meeting(f"due-{index}-{int(launch)}", at)
        write_atomically(calendars / f"{user_id(index)}.ics", with_events(texts[index], meeting))
    proc, tail = _launch(children, folder, "config.yaml", "run1")
    first = [user_id(i) for i in due.first]
    up = _watch_startup(proc, tail, sim, users, first, s)
    hwm = peak_memory(proc.pid)
    if up.died:
        children.kill(proc)
        why = up.died.splitlines()[0]
        out += [failed(row, n, "calref run (fresh store)", "-", why) for row in FIRST_RUN_ROWS]
        return
    goal_act = "≤ 10 s"
    due_offset = min(starts[i] for i in due.first) - proc.started_wall
    if len(up.first_sent) == len(first):
        last = max(up.first_sent.values()) - proc.started_wall
        out.append(
            Result(
                "4a",
                n,
                "start-up, fresh store: due actions sent",
                seconds(last),
                goal_act,
                f"{due_offset:.1f} s (due)",
                met=last <= 10.0,
                value=last,
                unit="s",
                notes=[
                    f"the {len(first)} closes due {due_offset:.1f} s after the launch: first "
                    f"{min(up.first_sent.values()) - proc.started_wall:.1f} s"
                ],
            )
        )
    else:
        out.append(
            not_reached(
                "4a",
                n,
                "start-up, fresh store: due actions sent",
                goal_act,
                s.startup_timeout,
                notes=[f"{len(up.first_sent)} of {len(first)} closes sent"],
            )
        )
    floor = f"{raw_seconds:.1f} s (raw parse)" if raw_seconds else "-"
    goal_plan = f"≤ {1.5 * raw_seconds:.1f} s (1.5 × floor)" if raw_seconds else "1.5 × raw parse"
    notes = []
    if up.running_at is not None:
        notes.append(f"'{RUNNING}' logged after {up.running_at - proc.started_wall:.1f} s")
    if up.plan_done_at is not None:
        took = up.plan_done_at - proc.started_wall
        notes.append(f"{up.publications:,} referral publications for {users:,} users")
        out.append(
            Result(
                "4b",
                n,
                "start-up, fresh store: first full plan",
                seconds(took),
                goal_plan,
                floor,
                met=raw_seconds is not None and took <= 1.5 * raw_seconds,
                value=took,
                unit="s",
                notes=notes,
            )
        )
    else:
        notes.append(
            f"{up.users_with_referrals:,} of {users:,} users had referrals, "
            f"{up.publications:,} publications"
        )
        out.append(
            not_reached(
                "4b",
                n,
                "start-up, fresh store: first full plan",
                goal_plan,
                s.startup_timeout,
                floor=floor,
                notes=notes,
            )
        )
    steady: scale_idle.Steady | str | None = None
    if up.plan_done_at is not None and (s.wants("1") or s.wants("2")):
        steady = scale_idle.measure(proc, tail, folder / "store.db", s)
    hwm = max(hwm or 0.0, peak_memory(proc.pid) or 0.0) or None
    code, took = children.terminate(proc)
    stopped = time.time()
    out += scale_idle.results(n, steady, stat_floor, s)
    if hwm is None:
        out.append(failed("7", n, "peak memory (VmHWM)", "≤ 200 MiB", "/proc unreadable"))
    else:
        phase = "start-up and steady window" if steady else "start-up"
        out.append(
            Result(
                "7",
                n,
                "peak memory (VmHWM)",
                f"{hwm:.0f} MiB",
                "≤ 200 MiB",
                met=hwm <= MEMORY_GOAL_MIB,
                value=hwm,
                unit="MiB",
                notes=[f"over the {phase}; first run stopped in {took:.1f} s (exit {code})"],
            )
        )
    if s.wants("5"):
        out.append(_second_start(users, folder, starts, due, stopped, sim, children, s))


def _second_start(
    users: int,
    folder: Path,
    starts: dict[int, float],
    due: DuePlan,
    stopped: float,
    sim: Simulator,
    children: Children,
    s: Settings,
) -> Result:
    """Row 5: a meeting starts while no process runs; the next start sends its close."""
    n, what, goal = f"{users:,}", "second start, existing store: due actions sent", "≤ 10 s"
    later = sorted(t for i, t in starts.items() if i in due.grid and t > stopped + 0.5)
    if not later:
        return failed("5", n, what, goal, "the first run outlasted the due meetings")
    time.sleep(max(0.0, later[0] + 1.0 - time.time()))
    proc, tail = _launch(children, folder, "config.yaml", "run2")
    overdue = [user_id(i) for i, t in starts.items() if stopped < t <= proc.started_wall]
    sent: dict[str, float] = {}
    deadline = proc.started + s.restart_timeout
    while time.monotonic() < deadline and len(sent) < len(overdue) and proc.alive():
        for uid in overdue:
            if uid not in sent:
                found = _closes(sim, uid, stopped)
                if found:
                    sent[uid] = min(found)
        time.sleep(0.2)
    tail.read()
    notes = [
        f"{len(overdue)} close(s) fell due while no process ran, "
        f"{proc.started_wall - later[0]:.1f} s before the launch"
    ]
    if RUNNING in tail.first_seen:
        notes.append(
            f"'{RUNNING}' logged after {tail.first_seen[RUNNING] - proc.started_wall:.1f} s"
        )
    alive = proc.alive()
    code, _took = children.terminate(proc)
    if len(sent) < len(overdue):
        if not alive:
            return failed("5", n, what, goal, f"calref run exited with {code}")
        return not_reached("5", n, what, goal, s.restart_timeout, notes=notes)
    last = max(sent.values()) - proc.started_wall
    return Result(
        "5", n, what, seconds(last), goal, met=last <= 10.0, value=last, unit="s", notes=notes
    )


def _sigterm_rows(
    users: int, folder: Path, sim: Simulator, children: Children, s: Settings, out: list[Result]
) -> None:
    n, goal = f"{users:,}", "≤ 1 s"
    for row, label in (
        ("6a", f"SIGTERM {s.sigterm_after:g} s after the launch"),
        ("6b", "SIGTERM 1 s after its first log line"),
    ):
        name = f"sigterm_{row}"
        write_config(
            folder / f"{name}.yaml",
            users,
            sim.url,
            poll_seconds=scale_idle.POLL_SECONDS,
            store=f"sqlite:///{name}.db",
        )
        proc = children.start(calref_command("run", "--config", f"{name}.yaml"), folder, name)
        if row == "6a":
            time.sleep(s.sigterm_after)
            when = f"{s.sigterm_after:g} s"
        else:
            deadline = proc.started + s.startup_timeout
            while time.monotonic() < deadline and proc.alive() and not proc.stderr().strip():
                time.sleep(0.05)
            if not proc.stderr().strip():
                children.kill(proc)
                out.append(
                    not_reached(
                        row, n, label, goal, s.startup_timeout, notes=["no log line appeared"]
                    )
                )
                continue
            time.sleep(1.0)
            when = f"{time.monotonic() - proc.started:.1f} s"
        code, took = children.terminate(proc)
        how = "killed: did not exit" if code is None else f"exit code {code}"
        if code is not None and code < 0:
            how += " (the default signal action: no clean stop, before its handler was set)"
        out.append(
            Result(
                row,
                n,
                label,
                seconds(took) if code is not None else f"> {STOP_WAIT:.0f} s",
                goal,
                met=code is not None and took <= 1.0,
                value=took,
                unit="s",
                notes=[f"sent {when} after the launch; {how}"],
            )
        )
