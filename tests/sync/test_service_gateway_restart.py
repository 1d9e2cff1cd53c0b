"""A gateway restarted without its referrals gets them again (issue 7, item 8), over HTTP.

The service talks to the simulator through the real HTTP adapter; the
simulator is then stopped and a fresh one (no referrals, no idempotency
memory) started on the same port, as a vendor gateway restart would look.
"""

from __future__ import annotations

from datetime import timedelta

from service_fakes import T0, FakeCalendar, build_service, make_users, meeting

from connectors.clock import VirtualClock
from connectors.http_server import serve_in_thread
from connectors.switchboard.http import HttpSwitchboard
from connectors.switchboard.sim_state import SimulatedSwitchboard
from connectors.switchboard.simulator import create_app, run_in_thread
from sync.store import Store


def test_referrals_are_published_again_after_the_gateway_restarts(
    sqlite_store: Store, clock: VirtualClock
) -> None:
    users = make_users("anna")
    first = run_in_thread(create_app(SimulatedSwitchboard(users, clock=clock)))
    port = first.http.port
    cal = FakeCalendar("anna-cal", [meeting("a1", T0 + timedelta(hours=1), 60)])
    with HttpSwitchboard(first.url, None, timeout=5.0) as http:
        service = build_service(sqlite_store, http, clock, {"anna": [cal]}, users)
        service.start()
        ids = [r.id for r in first.switchboard.referrals("anna")]
        assert len(ids) == 1
        first.stop()

        board = SimulatedSwitchboard(users, clock=clock)
        second = serve_in_thread(create_app(board), "127.0.0.1", port, name="simulator again")
        try:
            clock.advance(timedelta(seconds=30))
            service.tick()  # the first tick after start compares
            assert [r.id for r in board.referrals("anna")] == ids
            publishes = [c for c in board.log() if c.op == "publish_referral"]
            assert len(publishes) == 1
            clock.advance(service.settings.referral_check_interval)
            service.tick()  # nothing lost now: nothing sent
            assert [c for c in board.log() if c.op == "publish_referral"] == publishes
        finally:
            second.stop()
