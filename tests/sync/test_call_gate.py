"""``CallGate``: waiting for the switchboard calls in flight is bounded (SIGTERM during a call)."""

from __future__ import annotations

import threading
import time

from sync.service.call_gate import CallGate


def test_wait_idle_returns_when_the_last_call_ends() -> None:
    gate = CallGate()
    inside, leave = threading.Event(), threading.Event()

    def call() -> None:
        with gate.call():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    assert inside.wait(10)
    gate.close()
    assert gate.closed and gate.in_flight == 1
    threading.Timer(0.2, leave.set).start()
    began = time.monotonic()
    assert gate.wait_idle(10)
    assert time.monotonic() - began < 5
    thread.join(10)


def test_wait_idle_gives_up_after_its_timeout_on_a_call_that_never_ends() -> None:
    gate = CallGate()
    leave = threading.Event()
    thread = threading.Thread(target=lambda: _stay(gate, leave), daemon=True)
    thread.start()
    while gate.in_flight == 0:
        time.sleep(0.01)  # a real thread entering
    began = time.monotonic()
    assert not gate.wait_idle(0.3)
    assert 0.25 < time.monotonic() - began < 5
    leave.set()
    thread.join(10)


def _stay(gate: CallGate, leave: threading.Event) -> None:
    with gate.call():
        leave.wait(20)
