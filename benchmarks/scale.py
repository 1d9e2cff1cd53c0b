"""Benchmark: calref at an organisation's size (issue 9's table), with real processes.

For N generated users (``--users 1000`` and ``--users 10000``, both in turn by
default) with ICS-file calendars, a SQLite store and the switchboard simulator,
it measures in one run every row of the table and prints each figure beside
its goal and, where there is one, its floor:

1. CPU of one idle poll (files unchanged), vs one ``os.stat`` of a calendar file;
2. N users polled every 60 s, nothing changing: % of one core, and whether every
   poll ran on time (from each calendar's last poll in the store);
3. a calendar edited -> its new referral on the switchboard (poll 5 s with 50
   users, 2 s with 100 users; does not depend on N);
4. start-up on a fresh store: the first due actions sent, and the first full plan
   on the simulator vs the raw library cost of parsing and expanding the calendars;
5. a second start on the same store: due actions sent;
6. SIGTERM during start-up: time to exit;
7. peak memory (VmHWM) of the ``calref run`` process;
8. the planning pipeline vs raw ``recurring_ical_events`` ``between()`` (in-process);
9. 2,000 actions due in one second (``benchmarks/action_lag.py --actions 2000``; once).

``calref simulator`` and ``calref run`` run as child processes on a generated config
in a temporary folder: the organisation is in ``scale_calendars``, the processes and
their readers in ``scale_procs``, rows 4 to 7 in ``scale_service`` (rows 1 and 2 in
``scale_idle``, during its first run), row 3 in ``scale_edits``, the in-process floors
and row 8 in ``scale_core``, the table in ``scale_report``. Every wait is bounded, a
row that times out says "not reached after X s", and every child is ended at the end,
also on Ctrl-C or SIGTERM (then the rows measured so far are printed). The machine is
printed with the table; ``--json FILE`` writes both.

    .venv/bin/python benchmarks/scale.py [--users 1000 --users 10000] [--only ROW[,ROW...]]
        [--steady-seconds 180] [--startup-timeout 600] [--json FILE] [--keep]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import scale_core
import scale_edits
import scale_service
from scale_calendars import (
    DOMAIN,
    HORIZON_DAYS,
    LOOKBACK,
    TZ,
    TZID,
    Span,
    user_id,
    write_calendars,
    write_simulator_config,
)
from scale_procs import Children, Simulator, free_port, wait_healthy
from scale_report import (
    Result,
    Settings,
    failed,
    machine,
    machine_line,
    not_reached,
    table,
    write_json,
)
from scale_report import seconds as fmt

HERE = Path(__file__).resolve().parent
ROWS = ("1", "2", "3", "4", "5", "6", "7", "8", "9")


def say(text: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def core_rows(
    users: int, texts: dict[int, str], paths: list[Path], s: Settings
) -> tuple[list[Result], float, float | None]:
    """Row 8 and the floors (stat, raw library cost), all in this process."""
    now = datetime.now(UTC)
    start, end = now - LOOKBACK, now + timedelta(days=HORIZON_DAYS)
    stat = scale_core.stat_cost(paths)
    ordered = [texts[i] for i in range(users)]
    say(f"raw library cost of {users:,} calendars (icalendar + recurring_ical_events)")
    raw = scale_core.raw_cost(ordered, start, end)
    out: list[Result] = []
    if s.wants("8"):
        say(f"calref's parse and plan of {users:,} calendars")
        ids = [user_id(i) for i in range(users)]
        pipe = scale_core.pipeline_cost(ordered, ids, DOMAIN, TZID, start, end)
        n, what, goal = f"{users:,}", "planning pipeline vs raw between()", "≤ 1.5 ×"
        if pipe.error:
            out.append(failed("8", n, what, goal, pipe.error))
        else:
            ratio = pipe.seconds / raw.seconds
            out.append(
                Result(
                    "8",
                    n,
                    what,
                    f"{ratio:.2f} ×",
                    goal,
                    f"{fmt(raw.seconds)} (raw)",
                    met=ratio <= 1.5,
                    value=ratio,
                    unit="x",
                    notes=[
                        f"calref {pipe.per_calendar_ms:.1f} ms, raw {raw.per_calendar_ms:.1f} "
                        f"ms per calendar; {raw.occurrences:,} occurrences (raw), "
                        f"{pipe.occurrences:,} (calref)"
                    ],
                )
            )
    return out, stat, raw.seconds


def n_rows(users: int, base: Path, children: Children, s: Settings, out: list[Result]) -> None:
    """Every row that depends on N, for ``users`` users, added to ``out`` as they come."""
    folder = base / f"users-{users}"
    folder.mkdir()
    now = datetime.now(UTC)
    quiet = Span(now - timedelta(hours=1), now + timedelta(hours=4))
    due = scale_service.due_plan(users, s)
    say(f"{users:,} users: writing calendars")
    texts = write_calendars(
        folder / "calendars",
        users,
        now.astimezone(TZ).date(),
        quiet,
        seed=s.seed,
        quiet_users=due.users,
    )
    paths = [folder / "calendars" / f"{user_id(i)}.ics" for i in range(users)]
    core, stat, raw = core_rows(users, texts, paths, s)
    out += core
    if not any(s.wants(r) for r in "124567"):
        return
    port = free_port()
    sim = Simulator(f"http://127.0.0.1:{port}")
    write_simulator_config(folder / "simulator.yaml", users, sim.url)
    say(f"{users:,} users: starting calref simulator")
    server = children.start_simulator(folder, port, s.latency)
    try:
        wait_healthy(sim, server, 120 + users * 0.05)
        say(f"{users:,} users: calref run (fresh store, steady window, second start, SIGTERM)")
        scale_service.run_rows(
            users, folder, texts, due, sim, children, s, stat_floor=stat, raw_seconds=raw, out=out
        )
    except (OSError, RuntimeError, ValueError, KeyError) as err:  # the simulator failed, say
        out.append(failed("-", f"{users:,}", "the rows of this N", "-", _why(err)))
    finally:
        children.kill(server)


def lag_rows(base: Path, children: Children, s: Settings) -> list[Result]:
    """Row 9: ``benchmarks/action_lag.py --actions 2000`` as it is, and its figures."""
    what_a, what_b = "2,000 actions due at once: last ack", "2,000 actions: calref CPU per action"
    folder = base / "action-lag"
    folder.mkdir()
    say("action_lag.py --actions 2000")
    proc = children.start(
        [sys.executable, str(HERE / "action_lag.py"), "--actions", "2000"], folder, "action_lag"
    )
    try:
        proc.popen.wait(timeout=s.lag_timeout)
    except subprocess.TimeoutExpired:
        children.kill(proc)
        return [not_reached("9a", "2,000", what_a, "≤ 1.5 × floor", s.lag_timeout)]
    text = proc.out.read_text(encoding="utf-8", errors="replace")
    floor = re.search(r"= ([\d.]+) s\s+\(measured max ([\d.]+) s, ([\d.]+)x the floor\)", text)
    cpu = re.search(r"CPU during the [\d.]+ s after T: client ([\d.]+) s", text)
    acked = re.search(r"acknowledged ([\d,]+)/([\d,]+)", text)
    if proc.popen.returncode != 0 or floor is None or cpu is None:
        why = f"exit code {proc.popen.returncode}: {proc.tail(300).strip().splitlines()[-1:]}"
        return [failed("9a", "2,000", what_a, "≤ 1.5 × floor", why)]
    ratio, last, floor_s = float(floor.group(3)), float(floor.group(2)), float(floor.group(1))
    per = float(cpu.group(1)) / 2000
    notes = [acked.group(0)] if acked else []
    return [
        Result(
            "9a",
            "2,000",
            what_a,
            f"{last:.2f} s = {ratio:.2f} × floor",
            "≤ 1.5 × floor",
            f"{floor_s:.2f} s (N × latency / concurrency)",
            met=ratio <= 1.5,
            value=ratio,
            unit="x",
            notes=notes,
        ),
        Result("9b", "2,000", what_b, fmt(per), "≤ 1 ms", met=per <= 0.001, value=per, unit="s"),
    ]


def parse_args(argv: list[str] | None) -> tuple[Settings, Path | None]:
    d = Settings(users=[])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--users", type=int, action="append", help="N (repeatable; default 1000 and 10000)"
    )
    p.add_argument("--only", type=_rows, help="run only this row (or these, comma-separated)")
    p.add_argument("--steady-seconds", type=float, default=d.steady_seconds, help="rows 1 and 2")
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=d.startup_timeout,
        help="bound of each start-up wait (rows 4, 6b)",
    )
    p.add_argument("--restart-timeout", type=float, default=d.restart_timeout, help="row 5")
    p.add_argument(
        "--quiet-seconds",
        type=float,
        default=d.quiet_seconds,
        help="no publication for this long ends the first full plan (row 4)",
    )
    p.add_argument("--sigterm-after", type=float, default=d.sigterm_after, help="row 6a")
    p.add_argument("--latency", type=float, default=d.latency, help="simulator seconds per call")
    p.add_argument("--edits", type=int, default=d.edits, help="row 3: edits per case")
    p.add_argument("--edit-timeout", type=float, default=d.edit_timeout, help="row 3")
    p.add_argument("--lag-timeout", type=float, default=d.lag_timeout, help="row 9")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, stores)")
    a = p.parse_args(argv)
    s = Settings(
        users=a.users or [1000, 10000],
        only=None if a.only is None else tuple(a.only),
        steady_seconds=a.steady_seconds,
        startup_timeout=a.startup_timeout,
        restart_timeout=a.restart_timeout,
        quiet_seconds=a.quiet_seconds,
        sigterm_after=a.sigterm_after,
        latency=a.latency,
        edits=a.edits,
        edit_timeout=a.edit_timeout,
        lag_timeout=a.lag_timeout,
        seed=a.seed,
        keep=a.keep,
    )
    if any(n < 10 for n in s.users):
        p.error("--users must be at least 10")
    return s, a.json


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def _number(text: str) -> int:
    digits = "".join(c for c in text if c.isdigit())
    return int(digits) if digits else 0


def _rows(text: str) -> list[str]:
    rows = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad or not rows:
        raise argparse.ArgumentTypeError(f"rows are {', '.join(ROWS)}; not {', '.join(bad)}")
    return rows


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    s, json_path = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    info = machine()
    children = Children()
    results: list[Result] = []
    base = Path(tempfile.mkdtemp(prefix="calref-scale-"))
    started = time.monotonic()
    try:
        for users in s.users:
            if any(s.wants(r) for r in "1245678"):
                n_rows(users, base, children, s, results)
        if s.wants("3"):
            say("edit -> referral (poll 5 s with 50 users, 2 s with 100 users)")
            try:
                results += scale_edits.run_rows(base, children, s)
            except (OSError, RuntimeError, ValueError, KeyError) as err:
                results.append(failed("3", "50/100", "edit -> referral", "-", _why(err)))
        if s.wants("9"):
            results += lag_rows(base, children, s)
    except KeyboardInterrupt:
        say("interrupted: the results so far")
    finally:
        children.close()
        if s.keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    info_end = machine()
    info["load_average_end"] = info_end["load_average"]
    results = [r for r in results if not r.row[0].isdigit() or s.wants(r.row[0])]
    results.sort(key=lambda r: (r.row[0], r.row, _number(r.users)))
    print("calref scale benchmark (benchmarks/scale.py), issue 9's table")
    print(
        machine_line(info)
        + f" at start, {', '.join(f'{x:.2f}' for x in info_end['load_average'])} at end"
    )
    print(
        f"ICS-file calendars, SQLite store, calref simulator (latency {s.latency:g} s); "
        f"ran {time.monotonic() - started:.0f} s"
    )
    print(table(results))
    if json_path is not None:
        write_json(json_path, info, asdict(s), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
