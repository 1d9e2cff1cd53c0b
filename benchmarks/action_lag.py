"""Benchmark: lag from due time to acknowledgement when many phone actions fall due at once.

N users (default 10,000) each have one in-memory calendar with one busy
``#close`` meeting starting at the same second T. Everything on the way is the
production code: the config loader, ``service.start()`` (store migration, sync,
planning with the default rules, referral publication), the executor with the
configured switchboard concurrency, a temporary SQLite store, ``SystemClock``,
and ``HttpSwitchboard`` talking real HTTP on 127.0.0.1 to the switchboard
simulator with a fixed latency per call. The simulator runs as a separate
process (``calref simulator``, the default: client and server do not share one
GIL) or in a thread of this process (``run_in_thread``).

At T (real time) ``service.execute_due()`` runs until every action is
acknowledged; an action listener stamps each acknowledgement with the wall
clock (the listener runs once the switchboard has answered and the outcome is
committed to the store). Duplicates come from the simulator's command log
(``GET /api/log``); misses are actions never acknowledged.

The floor: with C calls in flight and L seconds per call, the last of N actions
cannot be acknowledged before N x L / C after T (10,000 x 0.02 s / 16 = 12.5 s),
and no run can beat C / L actions per second. Setup (about 8 ms per user on 2
cores) happens before T; if it overruns T the run stops and asks for a larger
``--lead``.

    .venv/bin/python benchmarks/action_lag.py [--actions 10000] [--latency 0.02]
        [--concurrency 16] [--server process|thread|both] [--lead SECONDS] [--store URL]

``--store`` runs on another store (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
instead of a fresh SQLite file; the calref tables in that database are dropped first, so
every run starts from an empty store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connectors.calendars.base import SyncResult, SyncWindow
from connectors.clock import SystemClock
from connectors.switchboard.simulator import create_app, run_in_thread
from rules.model import CalendarEvent
from sync.cli.runtime import build_switchboard, make_planner, open_store, service_settings
from sync.config import AppConfig, load_config
from sync.service.service import Service
from sync.service.settings import ServiceSettings
from sync.store import create_store_engine
from sync.store.models import Base

CLIENT = "calref-bench"
SUBJECT = "Board meeting #close"


class OneMeeting:
    """An in-memory calendar source holding one busy meeting (full sync every time)."""

    def __init__(self, source_id: str, event: CalendarEvent) -> None:
        self._id = source_id
        self.event = event

    @property
    def id(self) -> str:
        return self._id

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        return SyncResult(events=[self.event], full=True, state="v1")


@dataclass
class Ack:
    """One action event as the listener saw it, stamped with the wall clock."""

    wall: float
    user: str
    outcome: str
    key: str
    moment: str


@dataclass
class RunResult:
    mode: str
    actions: int
    latency: float
    concurrency: int
    setup_seconds: float
    slack_seconds: float
    lags: list[float]
    outcomes: Counter[str]
    executes: int
    missed_users: int
    applied_dup_keys: int
    users_applied_twice: int
    replays: int
    errors_logged: int
    client_cpu: float
    server_cpu: float | None
    window: float
    notes: list[str] = field(default_factory=list)


# -- the machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load:.2f} at start"
    )


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux), None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the simulator -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    directory: Path, actions: int, url: str, concurrency: int, store: str | None = None
) -> Path:
    users = [
        {
            "id": f"u{i:05d}",
            "name": f"User {i}",
            "email": f"u{i:05d}@example.se",
            "extension": str(100000 + i),
        }
        for i in range(actions)
    ]
    doc = {
        "store": store or "sqlite:///store.db",
        "switchboard": {
            "kind": "http",
            "url": url,
            "client_name": CLIENT,
            "concurrency": concurrency,
        },
        "users": users,
    }
    path = directory / "calref.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    return path


def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"the simulator exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the simulator at {url} did not answer within {timeout:.0f} s")


@contextmanager
def simulator(
    mode: str, app: AppConfig, config: Path, latency: float
) -> Iterator[tuple[str, int | None]]:
    """The simulator's base URL and (separate process) its pid, for the duration."""
    if mode == "thread":
        running = run_in_thread(create_app(app.users, latency=latency))
        try:
            yield running.url, None
        finally:
            running.stop()
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    calref = Path(sys.executable).with_name("calref")
    command = [str(calref)] if calref.exists() else [sys.executable, "-m", "sync.cli.main"]
    command += ["simulator", "--config", str(config), "--port", str(port)]
    command += ["--latency", str(latency)]
    log = config.with_name("simulator.log")
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc, log, timeout=120)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- one run -------------------------------------------------------------------------------------


def say(text: str) -> None:
    print(f"[action_lag] {text}", file=sys.stderr, flush=True)


def fresh_store(url: str) -> None:
    """Drop calref's tables (and Alembic's version table) in the database at ``url``."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


def run(
    mode: str,
    actions: int,
    latency: float,
    concurrency: int,
    lead: float,
    store_url: str | None = None,
) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="calref-lag-") as tmp:
        directory = Path(tmp)
        started = time.monotonic()
        clock = SystemClock()
        # T: a whole second, far enough ahead for the setup below
        due = (clock.now() + timedelta(seconds=lead)).replace(microsecond=0)
        placeholder = "http://127.0.0.1:9"
        if store_url is not None:
            fresh_store(store_url)
        config = write_config(directory, actions, placeholder, concurrency, store_url)
        app = load_config(config)
        say(f"[{mode}] config with {actions} users loaded; T = {due.isoformat()}")
        with simulator(mode, app, config, latency) as (url, server_pid):
            cfg = app.file.switchboard.model_copy(update={"url": url})
            app.file = app.file.model_copy(update={"switchboard": cfg})
            end = due + timedelta(minutes=30)
            sources = {
                user.id: [
                    OneMeeting(f"cal-{user.id}", CalendarEvent(f"m-{user.id}", due, end, SUBJECT))
                ]
                for user in app.users
            }
            store = open_store(app)
            switchboard = build_switchboard(app, clock)
            service = Service(
                store=store,
                switchboard=switchboard,
                sources=sources,
                users=app.users,
                planner=make_planner(app),
                clock=clock,
                settings=service_settings(app),
            )
            acks: list[Ack] = []
            service.add_action_listener(
                lambda e: acks.append(
                    Ack(time.time(), e.user, e.outcome, e.idempotency_key, e.moment)
                )
            )
            say(f"[{mode}] service.start(): sync, plan, publish {actions} referrals")
            early = service.start()
            setup = time.monotonic() - started
            slack = due.timestamp() - time.time()
            say(f"[{mode}] setup took {setup:.1f} s; {slack:.1f} s left before T")
            if early:
                raise SystemExit(f"{len(early)} actions ran during setup; T was not in the future")
            if slack < 1.0:
                raise SystemExit(
                    f"setup took {setup:.0f} s, past T (slack {slack:.1f} s): raise --lead"
                )
            planned = [a for a in store.actions() if a.moment == "start" and a.due_at == due]
            if len(planned) != actions:
                raise SystemExit(f"planning made {len(planned)} start actions, expected {actions}")
            wanted = {a.user_id for a in planned}

            time.sleep(max(0.0, due.timestamp() - time.time()))
            cpu0, server0 = own_cpu(), process_cpu(server_pid) if server_pid else None
            floor = actions * latency / concurrency
            deadline = due.timestamp() + 4 * floor + 60
            executes = 0
            while time.time() < deadline:
                service.execute_due()
                executes += 1
                done = {a.user for a in acks if a.outcome == "sent" and a.moment == "start"}
                if wanted <= done:
                    break
                time.sleep(0.05)
            window = time.time() - due.timestamp()
            client_cpu = own_cpu() - cpu0
            server1 = process_cpu(server_pid) if server_pid else None
            server_cpu = None if server0 is None or server1 is None else server1 - server0

            commands = httpx.get(f"{url}/api/log", timeout=60).json()["commands"]
            switchboard.close()
            store.close()

    first: dict[str, float] = {}
    for ack in acks:
        if ack.outcome == "sent" and ack.moment == "start" and ack.user not in first:
            first[ack.user] = ack.wall
    lags = sorted(wall - due.timestamp() for wall in first.values())
    ours = [c for c in commands if c["op"] == "action" and c["client"] == CLIENT]
    applied = [c for c in ours if not c["replayed"] and c["error"] is None]
    per_key = Counter(c["idempotency_key"] for c in applied)
    per_user = Counter(c["user"] for c in applied)
    return RunResult(
        mode=mode,
        actions=actions,
        latency=latency,
        concurrency=concurrency,
        setup_seconds=setup,
        slack_seconds=slack,
        lags=lags,
        outcomes=Counter(a.outcome for a in acks),
        executes=executes,
        missed_users=len(wanted - set(first)),
        applied_dup_keys=sum(1 for n in per_key.values() if n > 1),
        users_applied_twice=sum(1 for n in per_user.values() if n > 1),
        replays=sum(1 for c in ours if c["replayed"]),
        errors_logged=sum(1 for c in ours if c["error"] is not None),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        window=window,
    )


# -- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


def report(result: RunResult) -> list[str]:
    r = result
    floor = r.actions * r.latency / r.concurrency
    ceiling = r.concurrency / r.latency
    where = {
        "process": "separate process (calref simulator)",
        "thread": "thread in the client process (run_in_thread)",
    }[r.mode]
    last = r.lags[-1] if r.lags else float("nan")
    rate = len(r.lags) / last if r.lags and last > 0 else float("nan")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
    server = f", simulator {r.server_cpu:.1f} s" if r.server_cpu is not None else ""
    lines = [
        f"simulator: {where}, {r.latency * 1000:g} ms per call, HttpSwitchboard over 127.0.0.1",
        f"  setup (config, start(): sync + plan + publish {r.actions:,}): {r.setup_seconds:.1f} s",
        f"  lag due -> ack: min {r.lags[0] if r.lags else float('nan'):.2f} s, "
        f"p50 {percentile(r.lags, 50):.2f} s, p99 {percentile(r.lags, 99):.2f} s, "
        f"max {last:.2f} s",
        f"  floor for the last ack: {r.actions:,} x {r.latency:g} s / {r.concurrency} = "
        f"{floor:.2f} s  (measured max {last:.2f} s, {last / floor:.2f}x the floor)",
        f"  throughput: {rate:,.0f} actions/s  (ceiling {r.concurrency} / {r.latency:g} s = "
        f"{ceiling:,.0f}/s)",
        f"  per action per worker: {last * r.concurrency / max(1, len(r.lags)) * 1000:.1f} ms "
        f"(of which {r.latency * 1000:g} ms switchboard latency)",
        f"  acknowledged {len(r.lags):,}/{r.actions:,}; misses {r.missed_users}; duplicates "
        f"{r.applied_dup_keys + r.users_applied_twice} (key applied twice {r.applied_dup_keys}, "
        f"user changed twice {r.users_applied_twice}); replays {r.replays}; "
        f"switchboard errors {r.errors_logged}",
        f"  outcomes: {outcomes}; execute_due calls {r.executes}",
        f"  CPU during the {r.window:.1f} s after T: client {r.client_cpu:.1f} s{server}",
        f"  calref CPU per action: {r.client_cpu / max(1, len(r.lags)) * 1000:.2f} ms "
        f"(goal <= 1 ms); last ack {last / floor:.2f}x the floor (goal <= 1.5x)",
    ]
    return lines


def store_kind(url: str | None) -> str:
    if url is None:
        return "SQLite (fresh file)"
    parsed = make_url(url)
    return f"{parsed.get_backend_name()} ({parsed.host or 'local'}/{parsed.database})"


def main(argv: list[str] | None = None) -> int:
    defaults = ServiceSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=10_000, help="actions due at T (users)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per switchboard call")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help=f"switchboard calls in flight (default: the service's {defaults.concurrency})",
    )
    parser.add_argument("--server", choices=("process", "thread", "both"), default="process")
    parser.add_argument(
        "--lead",
        type=float,
        default=None,
        help="seconds from the start of setup to T (default: 30 + 10 ms per action)",
    )
    parser.add_argument(
        "--store",
        default=None,
        help="store URL (default: a fresh SQLite file); its calref tables are dropped first",
    )
    args = parser.parse_args(argv)
    if args.actions < 1 or args.latency < 0 or args.concurrency < 1:
        parser.error("--actions and --concurrency must be positive, --latency not negative")
    lead = args.lead if args.lead is not None else 30 + 0.010 * args.actions
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    modes = ("process", "thread") if args.server == "both" else (args.server,)
    head = [
        "calref action lag (benchmarks/action_lag.py)",
        machine_line(),
        f"workload: {args.actions:,} users x 1 '#close' meeting starting at the same second T; "
        f"{store_kind(args.store)} store; concurrency {args.concurrency}",
    ]
    body: list[str] = []
    for mode in modes:
        result = run(mode, args.actions, args.latency, args.concurrency, lead, args.store)
        body += report(result)
    print("\n".join(head + body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
