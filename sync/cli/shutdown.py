"""``calref run``'s life cycle: start in the background, stop promptly on SIGTERM or SIGINT.

The main thread only waits for a signal (or a fatal error of the service) and
then stops the process; start-up, the scheduler's jobs and calendar syncs run
in other threads. So SIGTERM is honoured at any moment (during start-up,
during a hung calendar sync, during a switchboard call): the service starts no
new call or sync, the calls in flight get at most the switchboard's timeout
(plus a grace) to finish, the lease is released (a standby takes over at
once), and the process exits. A call still in flight then is abandoned: its
action stays ``sending`` in the store and is re-sent with the same
idempotency key on the next start (the switchboard replays its answer).
Threads stuck in a calendar or a call never hold the exit up (``os._exit``
once the clean-up is done or its time is up).

Before that (reading the config, opening and migrating the store, building the
sources: all in the main thread), ``sync/cli/early_signals.py`` makes SIGTERM and
SIGINT raise ``StartupInterrupted`` wherever the main thread is, and ``calref
run`` exits cleanly (code 0, "stopped during start-up") within a fraction of a
second; ``sync/cli/main.py`` installs it before anything heavy is imported.

Exit codes: 0 after a signal; 3 when the store's file was deleted or replaced
while running (``StoreLost``; the message is printed); 2 for a ``CalrefError`` at
start-up and 1 for any other start-up failure (both printed here).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from rules.errors import CalrefError, StoreLost
from rules.wording import plural
from sync.cli import early_signals
from sync.config import AppConfig
from sync.service.scheduler import ServiceScheduler
from sync.service.service import Service

log = logging.getLogger(__name__)

#: seconds the clean-up (push listener, lease, store) gets after the calls ended
CLEANUP_GRACE = 0.8
#: how often the waiting main thread wakes up to run a pending signal handler (seconds)
WAKE_EVERY = 0.1
#: exit code when the store was lost while running
STORE_LOST_EXIT = 3


def run_until_stopped(cfg: AppConfig, service: Service) -> int:
    """Run ``service`` under a scheduler until a signal or a fatal error; the exit code."""
    stop = threading.Event()
    problems: list[BaseException] = []

    def fatal(err: StoreLost) -> None:
        problems.append(err)
        stop.set()

    service.add_fatal_listener(fatal)
    service.add_action_listener(
        lambda e: log.info(
            "%s: %s %s at %s: %s %s",
            e.user,
            e.moment,
            e.action,
            e.at.isoformat(),
            e.outcome,
            e.detail,
        )
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if early_signals.received:  # a signal during start-up that something swallowed
        stop.set()
    scheduler = ServiceScheduler(service)
    store_name = cfg.file.store.split("@")[-1]
    push: list[Any] = []  # the push runtime while this process leads

    def before_lead() -> None:
        if cfg.file.push is not None and not stop.is_set():
            from sync.push.setup import start_push

            # the listener is up before subscriptions are made, and both before the catch-up
            runtime = start_push(cfg, service, scheduler)
            if runtime is not None:
                push.append(runtime)

    def after_lead() -> None:
        for runtime in push:
            runtime.activate()
        log.info("calref running: %s, store %s", plural(len(cfg.users), "user"), store_name)

    def stop_push() -> None:
        while push:
            push.pop().stop()  # no new notifications, then the push worker ends

    def start() -> None:
        try:
            scheduler.start()
            if not scheduler.leading and not stop.is_set():
                log.info("calref standby: %s, store %s", plural(len(cfg.users), "user"), store_name)
        except BaseException as err:  # reported by the main thread
            problems.append(err)
            stop.set()

    scheduler.on_lead(before=before_lead, after=after_lead, standby=stop_push)
    starter = threading.Thread(target=start, name="calref-start", daemon=True)
    starter.start()
    # a signal delivered to another thread runs its handler only when the main thread wakes
    # up: it wakes every WAKE_EVERY seconds, so a stop never waits on a busy start-up
    while not stop.wait(WAKE_EVERY):
        pass
    log.info("stopping")
    service.stop()
    _quietly(lambda: scheduler.shutdown(wait=False))
    call_timeout = float(getattr(service.switchboard, "timeout", 0.0) or 0.0)
    if not service.wait_idle(call_timeout + 0.2):
        log.warning("a switchboard call is still in flight; it is re-sent on the next start")
    cleanup = threading.Thread(
        target=lambda: _cleanup(service, stop_push), name="calref-cleanup", daemon=True
    )
    cleanup.start()
    cleanup.join(CLEANUP_GRACE)
    code = _report(problems)
    log.info("stopped")
    _exit_if_stuck(code)
    return code


def _cleanup(service: Service, stop_push: Callable[[], None]) -> None:
    _quietly(stop_push)
    if service.fatal is None:
        _quietly(service.release_lease)
    _quietly(service.store.close)


def _quietly(step: Callable[[], object]) -> None:
    try:
        step()
    except Exception:
        log.exception("while stopping")


def _report(problems: list[BaseException]) -> int:
    """Print the fatal problem, if any; the exit code."""
    if not problems:
        return 0
    err = problems[0]
    if isinstance(err, StoreLost):
        print(f"calref: {err}", file=sys.stderr)
        return STORE_LOST_EXIT
    if isinstance(err, CalrefError):
        print(f"calref: {err}", file=sys.stderr)
        return 2
    log.error("start-up failed", exc_info=err)
    print(f"calref: start-up failed: {type(err).__name__}: {err}", file=sys.stderr)
    return 1


def _exit_if_stuck(code: int) -> None:
    """Exit now if a thread that is not a daemon still runs (it would hold the exit up)."""
    main = threading.main_thread()
    stuck = [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
    if stuck:
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
