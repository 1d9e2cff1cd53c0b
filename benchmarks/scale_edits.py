"""Row 3 of the scale benchmark: a calendar edited, until its new referral is on the switchboard.

For each (poll interval, users) case, a ``calref simulator`` and a ``calref run``
on a fresh store; once every user has a referral on the simulator, ``edits``
calendars (random users) get a new busy meeting (a Saturday evening, where no
generated meeting is) at random moments of an ``edit_window``. The lag of one
edit runs from the file's atomic replacement to the simulator receiving the
publication of the referral whose message is the new meeting's subject (the
time the simulator logged it). An edit not seen within ``edit_timeout`` counts
as not reached.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scale_calendars import (
    TZ,
    Span,
    edit_meeting,
    edit_start,
    user_id,
    with_events,
    write_atomically,
    write_calendars,
    write_config,
    write_simulator_config,
)
from scale_procs import Children, Simulator, calref_command, free_port, parse_at, wait_healthy
from scale_report import Result, Settings, failed, median, seconds

CASES = ((5.0, 50), (2.0, 100))
READY_TIMEOUT = 300.0


def _ready(sim: Simulator, users: int) -> bool:
    listing = sim.get("/api/users")["users"]
    return sum(1 for u in listing if u["referrals"]) >= users


def run_case(
    row: str, interval: float, users: int, folder: Path, children: Children, s: Settings
) -> Result:
    n, what = f"{users}", f"edit -> referral, poll {interval:g} s"
    goal = f"≤ {interval + 1:g} s (interval + 1 s)"
    folder.mkdir(parents=True)
    now = datetime.now(UTC)
    quiet = Span(now - timedelta(hours=1), now + timedelta(hours=4))
    texts = write_calendars(
        folder / "calendars", users, now.astimezone(TZ).date(), quiet, seed=s.seed
    )
    port = free_port()
    sim = Simulator(f"http://127.0.0.1:{port}")
    write_simulator_config(folder / "simulator.yaml", users, sim.url)
    write_config(folder / "config.yaml", users, sim.url, poll_seconds=interval)
    server = children.start_simulator(folder, port, s.latency)
    proc = None
    try:
        wait_healthy(sim, server, 60 + users * 0.05)
        proc = children.start(calref_command("run", "--config", "config.yaml"), folder, "run")
        deadline = time.monotonic() + READY_TIMEOUT
        while not _ready(sim, users):
            if not proc.alive():
                return failed(row, n, what, goal, f"calref run exited with {proc.popen.returncode}")
            if time.monotonic() > deadline:
                return failed(row, n, what, goal, f"start-up not done after {READY_TIMEOUT:.0f} s")
            time.sleep(1.0)
        time.sleep(2 * interval)  # settled: every calendar polled again since
        return _edits(row, n, what, goal, interval, users, folder, texts, sim, s)
    finally:
        if proc is not None:
            children.kill(proc)
        children.kill(server)


def _edits(
    row: str,
    n: str,
    what: str,
    goal: str,
    interval: float,
    users: int,
    folder: Path,
    texts: dict[int, str],
    sim: Simulator,
    s: Settings,
) -> Result:
    rng = random.Random(f"{s.seed}/edits/{interval}")
    count = min(s.edits, users)
    chosen = rng.sample(range(users), count)
    moments = sorted(rng.uniform(0, s.edit_window) for _ in chosen)
    start = edit_start(datetime.now(UTC))
    t0 = time.time()
    written: dict[int, tuple[float, str]] = {}  # user -> (write time, subject)
    seen: dict[int, float] = {}
    pending = list(zip(moments, chosen, strict=True))
    while pending or any(
        u not in seen and time.time() - t < s.edit_timeout for u, (t, _) in written.items()
    ):
        now = time.time()
        while pending and t0 + pending[0][0] <= now:
            _, index = pending.pop(0)
            subject = f"Bench edit {index} at {now:.0f}"
            meeting = edit_meeting(f"edit-{index}-{now:.0f}", subject, start)
            write_atomically(
                folder / "calendars" / f"{user_id(index)}.ics", with_events(texts[index], meeting)
            )
            written[index] = (time.time(), subject)
        for index, (at, subject) in written.items():
            if index in seen or time.time() - at >= s.edit_timeout:
                continue
            ids = [r["id"] for r in sim.referrals(user_id(index)) if r["message"] == subject]
            if ids:
                published = [
                    parse_at(c["at"])
                    for c in sim.log(user_id(index))
                    if c["op"] == "publish_referral"
                    and c["detail"] in ids
                    and parse_at(c["at"]) >= at
                ]
                seen[index] = (min(published) if published else time.time()) - at
        time.sleep(0.1)
    lags = sorted(seen.values())
    missing = count - len(lags)
    everything = lags + [float("inf")] * missing
    mid, top = median(everything), max(everything)
    shown = (
        f"median {seconds(mid) if mid != float('inf') else f'> {s.edit_timeout:.0f} s'}, "
        f"max {seconds(top) if top != float('inf') else f'> {s.edit_timeout:.0f} s'}"
    )
    notes = [
        f"{count} edits at random moments of {s.edit_window:.0f} s; lags "
        + ", ".join(seconds(x) for x in lags)
    ]
    if missing:
        notes.append(f"{missing} of {count} not reached after {s.edit_timeout:.0f} s")
    return Result(
        row,
        n,
        what,
        shown,
        goal,
        f"{interval:g} s (interval)",
        met=missing == 0 and top <= interval + 1,
        value=mid if lags else None,
        unit="s",
        notes=notes,
    )


def run_rows(folder: Path, children: Children, s: Settings) -> list[Result]:
    out = []
    for (interval, users), row in zip(CASES, ("3a", "3b"), strict=True):
        out.append(run_case(row, interval, users, folder / f"edits-{row}", children, s))
    return out
