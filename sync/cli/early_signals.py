"""SIGTERM before ``calref run`` is up: stop start-up at once, cleanly.

``calref run`` spends its first seconds in the main thread (imports, reading the
config, opening and migrating the store, building every calendar source). From
``stop_on_signal_during_startup`` on, SIGTERM and SIGINT raise
``StartupInterrupted`` (a ``SystemExit`` with code 0) wherever the main thread
is, so it unwinds (an open store
transaction rolls back) and ``calref run`` exits with code 0 within a fraction of
a second; ``sync/cli/shutdown.py``'s handlers take over once the service runs.
This module imports nothing but ``signal``, so ``main`` can install it first.
"""

from __future__ import annotations

import signal


class StartupInterrupted(SystemExit):
    """SIGTERM or SIGINT arrived while the main thread was still starting up.

    A ``SystemExit`` with code 0: wherever it is not caught (an import under way)
    the process still ends cleanly and quietly.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(0)
        self.signum = signum


#: the signal received during start-up, if any (a library's bare ``except:`` may swallow
#: the exception: ``check`` and ``run_until_stopped`` look here too)
received: list[int] = []


def _interrupt_startup(signum: int, _frame: object) -> None:
    received.append(signum)
    raise StartupInterrupted(signum)


def check() -> None:
    """Raise ``StartupInterrupted`` if a signal came during start-up (and was swallowed)."""
    if received:
        raise StartupInterrupted(received[0])


def stop_on_signal_during_startup() -> None:
    """From now until ``run_until_stopped`` takes over: a signal stops start-up at once."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt_startup)
