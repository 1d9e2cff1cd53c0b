"""The pure re-planning diff: stable referral ids, add / reschedule / cancel / end-now."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_fakes import T0, make_users, meeting, subject_planner

from connectors.calendars.base import SyncWindow
from rules.errors import ConfigError
from sync.service.replan import diff_plan, referral_hash, referral_id
from sync.service.settings import ServiceSettings

H = timedelta(hours=1)
WINDOW = SyncWindow(T0 - 24 * H, T0 + 24 * H)
[ANNA] = make_users("anna")


def _plan(*events):  # type: ignore[no-untyped-def]
    return subject_planner(ANNA, list(events), WINDOW)


def test_referral_id_is_stable_across_edits_and_distinct_per_user_and_event() -> None:
    a = _plan(meeting("m1", T0 + H, 30)).referrals[0]
    b = _plan(meeting("m1", T0 + 3 * H, 90, "forward 0701|open")).referrals[0]
    c = _plan(meeting("m2", T0 + H, 30)).referrals[0]
    assert referral_id("anna", a) == referral_id("anna", b)
    assert referral_id("anna", a) != referral_id("anna", c)
    assert referral_id("anna", a) != referral_id("bo", a)
    assert referral_hash(a) != referral_hash(b)


def test_new_plan_on_empty_store_adds_pending_actions_and_skips_finished_referrals() -> None:
    diff = diff_plan(
        _plan(meeting("old", T0 - 3 * H, 30), meeting("m1", T0 + H, 30)), [], [], T0, WINDOW
    )
    statuses = sorted((n.planned.events[0], n.moment, n.status) for n in diff.new_actions)
    assert statuses == [
        ("m1", "end", "pending"),
        ("m1", "start", "pending"),
        ("old", "end", "skipped"),
        ("old", "start", "skipped"),
    ]
    assert len(diff.upserts) == 2 and not diff.cancels and not diff.end_now


def test_settings_reject_nonsense_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        ServiceSettings(concurrency=0)
    with pytest.raises(ConfigError, match="poll_interval must be positive"):
        ServiceSettings(poll_interval=timedelta(0))
