"""``calref demo``: the story runs end to end on the real service in virtual time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sync.cli.demo import run_demo


def test_the_demo_story_carries_out_each_action_once(tmp_path: Path) -> None:
    lines: list[str] = []
    sent = run_demo(
        tmp_path,
        now=datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Stockholm")),
        echo=lines.append,
    )
    out = "\n".join(lines)
    # Bob's conference began before the service started: its close is applied late.
    assert "08:00  bob    start  close" in out and "applied late" in out
    # Carin's course is cancelled at 09:00 while it runs: her end action runs at the next poll.
    assert "09:01  carin  end    follow_profile" in out
    # Alice's manual change during her visit survives the end action.
    assert "11:00  alice  end    follow_profile           kept" in out
    # #mobile at the end of Alice's back-to-back meetings rings her mobile.
    assert "09:10  alice  end    profile_switch mobile    sent   → calls ring 0701234567" in out
    # The vendor's #fwd to a premium-rate number from outside is refused, never sent.
    assert "refused: #fwd:0900123456 in carin-vendor: external organizer" in out
    assert "0900123456    sent" not in out
    assert sent == 7
    assert "0 replayed" in out
