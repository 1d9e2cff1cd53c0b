"""Rows 1 and 2 of the scale benchmark: a running ``calref run`` while nothing changes.

Over ``steady_seconds`` (after the first full plan, files untouched) the process's
CPU time is read from ``/proc`` and each calendar's last poll from the store
(sampled every 5 s), so that one idle poll's CPU (row 1: the window's CPU over
the polls in it, vs one ``os.stat``), the share of a core (row 2a) and whether every
poll ran on time (row 2b) come from the same window. The service logs nothing
per poll; its warnings that a poll was skipped or a sync still ran are counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from scale_procs import LogTail, Proc, process_cpu, source_polls, stored_time
from scale_report import Result, Settings, failed, seconds

POLL_SECONDS = 60.0
ON_TIME = 2.0  # a poll counts as on time when it ran within this many seconds of its due time
SKIPPED = "skipped: maximum number of running instances"
STILL_SYNCING = "still syncing after"
IDLE_FACTOR = 2.0  # "≈ the cost of a stat": at most this many times the floor


@dataclass
class Steady:
    cpu: float
    wall: float
    polls: int
    due: float
    late_sources: int  # sources whose poll was once more than ON_TIME late
    max_age: float
    never: int
    skipped: int
    still_syncing: int


def measure(proc: Proc, tail: LogTail, db: Path, s: Settings) -> Steady | str:
    """CPU and polls over ``steady_seconds`` of nothing changing."""
    period = min(5.0, POLL_SECONDS / 4)
    tail.read()
    skipped0, syncing0 = tail.counts[SKIPPED], tail.counts[STILL_SYNCING]
    cpu0, t0 = process_cpu(proc.pid), time.monotonic()
    last = source_polls(db)
    if cpu0 is None or last is None:
        return "the process's CPU or the store's sources could not be read"
    polls, max_age, late = 0, 0.0, set()
    end = t0 + s.steady_seconds
    while time.monotonic() < end:
        time.sleep(max(0.0, min(period, end - time.monotonic())))
        if not proc.alive():
            return f"calref run exited with {proc.popen.returncode}"
        now = time.time()
        seen = source_polls(db)
        if seen is None:
            continue
        for source, at in seen.items():
            if at is not None and at != last.get(source):
                polls += 1
            if at is not None:
                age = now - stored_time(at)
                max_age = max(max_age, age)
                if age > POLL_SECONDS + ON_TIME:
                    late.add(source)
        last = seen
    cpu1, wall = process_cpu(proc.pid), time.monotonic() - t0
    tail.read()
    return Steady(
        cpu=(cpu1 or cpu0) - cpu0,
        wall=wall,
        polls=polls,
        due=len(last) * wall / POLL_SECONDS,
        late_sources=len(late),
        max_age=max_age,
        never=sum(1 for at in last.values() if at is None),
        skipped=tail.counts[SKIPPED] - skipped0,
        still_syncing=tail.counts[STILL_SYNCING] - syncing0,
    )


def results(n: str, steady: Steady | str | None, stat_floor: float, s: Settings) -> list[Result]:
    what1, what2a = "CPU of one idle poll", "idle polling: CPU"
    what2b = "idle polling: every poll on time"
    goal1 = f"≈ a stat (≤ {seconds(2 * stat_floor)})"
    floor1 = f"{seconds(stat_floor)} (os.stat)"
    if steady is None:
        why = "start-up did not finish"
        return [
            failed("1", n, what1, goal1, why),
            failed("2a", n, what2a, "< 2 % of a core", why),
            failed("2b", n, what2b, "all", why),
        ]
    if isinstance(steady, str):
        return [
            failed("1", n, what1, goal1, steady),
            failed("2a", n, what2a, "< 2 %", steady),
            failed("2b", n, what2b, "all", steady),
        ]
    out = []
    window = f"{steady.wall:.0f} s window, {steady.cpu:.1f} s CPU"
    if steady.polls:
        per = steady.cpu / steady.polls
        out.append(
            Result(
                "1",
                n,
                what1,
                seconds(per),
                goal1,
                floor1,
                met=per <= 2 * stat_floor,
                value=per,
                unit="s",
                notes=[f"{window}, {steady.polls:,} polls; {per / stat_floor:,.0f} × the floor"],
            )
        )
    else:
        out.append(failed("1", n, what1, goal1, "no poll recorded in the store in the window"))
    share = steady.cpu / steady.wall * 100
    out.append(
        Result(
            "2a",
            n,
            what2a,
            f"{share:.1f} % of a core",
            "< 2 % of a core",
            met=share < 2.0,
            value=share,
            unit="%",
            notes=[window],
        )
    )
    ran = steady.polls / steady.due * 100 if steady.due else 0.0
    on_time = steady.late_sources == 0 and steady.never == 0 and ran >= 95.0
    notes = [
        f"{steady.polls:,} polls of ~{steady.due:,.0f} due ({ran:.0f} %); "
        f"{steady.late_sources:,} calendars once over {POLL_SECONDS:.0f}+{ON_TIME:.0f} s since "
        f"their last poll (worst {steady.max_age:.0f} s); {steady.never:,} never polled",
        f"log: {steady.skipped:,} '{SKIPPED}', {steady.still_syncing:,} '{STILL_SYNCING}' warnings",
    ]
    out.append(
        Result(
            "2b",
            n,
            what2b,
            f"{ran:.0f} % ran, worst gap {steady.max_age:.0f} s",
            f"all, gap ≤ {POLL_SECONDS + ON_TIME:.0f} s",
            f"{POLL_SECONDS:.0f} s (interval)",
            met=on_time,
            value=ran,
            unit="%",
            notes=notes,
        )
    )
    return out
