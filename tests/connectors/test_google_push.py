"""Google push channels: watch, renewal before expiry, channels.stop and notification checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from gcal_doubles import error_body, make_source, ok, path, status

from connectors.calendars.google.push import (
    Channel,
    GoogleChannelManager,
    NotificationKind,
    handle_google_notification,
)
from connectors.clock import VirtualClock
from rules.errors import CalendarError, CalrefError

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ADDRESS = "https://calref.example.se/hooks/google"


def watch_answer(channel_id: str, resource_id: str, expires: datetime) -> str:
    """The Channel resource events.watch returns (expiration in ms since the epoch, a string)."""
    return json.dumps(
        {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": resource_id,
            "resourceUri": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
            "token": "ignored-by-client",
            "expiration": str(int(expires.timestamp() * 1000)),
        }
    )


def manager(clock: VirtualClock) -> GoogleChannelManager:
    ids = iter(["chan-1", "chan-2", "chan-3"])
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    return GoogleChannelManager(
        ADDRESS, clock=clock, new_id=lambda: next(ids), new_token=lambda: next(tokens)
    )


def headers(channel: str, token: str, state: str) -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Channel-Expiration": "Mon, 12 Jan 2026 08:00:00 GMT",
        "X-Goog-Message-Number": "1",
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
        "X-Goog-Resource-State": state,
    }


def test_ensure_creates_a_web_hook_channel_with_token_address_and_ttl() -> None:
    clock = VirtualClock(T0)
    source, http, _ = make_source([ok(watch_answer("chan-1", "res-1", T0 + timedelta(days=7)))])
    channel = manager(clock).ensure("alice", source)
    assert (channel.id, channel.resource_id, channel.user_id) == ("chan-1", "res-1", "alice")
    assert channel.expiration == T0 + timedelta(days=7)
    assert path(http, 0) == "/calendar/v3/calendars/primary/events/watch"
    body = json.loads(http.request_sequence[0][2])
    assert body == {
        "id": "chan-1",
        "type": "web_hook",
        "address": ADDRESS,
        "token": "tok-1",
        "params": {"ttl": "604800"},
    }
    assert "tok-1" not in repr(channel)


def test_channel_is_renewed_before_expiry_and_the_old_one_stopped_after() -> None:
    clock = VirtualClock(T0)
    source, http, _ = make_source(
        [
            ok(watch_answer("chan-1", "res-1", T0 + timedelta(days=7))),
            ok(watch_answer("chan-2", "res-2", T0 + timedelta(days=13))),
            ({"status": "204"}, ""),
        ]
    )
    chans = manager(clock)
    first = chans.ensure("alice", source)
    clock.set(T0 + timedelta(days=5, hours=23))
    assert chans.ensure("alice", source) is first
    assert len(http.request_sequence) == 1
    assert chans.next_renewal() == T0 + timedelta(days=6)
    clock.set(T0 + timedelta(days=6))
    second = chans.ensure("alice", source)
    assert second.id == "chan-2"
    assert path(http, 1).endswith("/events/watch")
    assert path(http, 2) == "/calendar/v3/channels/stop"
    assert json.loads(http.request_sequence[2][2]) == {"id": "chan-1", "resourceId": "res-1"}
    assert chans.lookup("chan-1") is None and chans.lookup("chan-2") is second


def test_stopping_a_channel_google_already_forgot_is_not_an_error() -> None:
    clock = VirtualClock(T0)
    source, http, _ = make_source(
        [
            ok(watch_answer("chan-1", "res-1", T0 + timedelta(days=7))),
            status(404, error_body(404, "notFound", "Channel 'chan-1' not found for project")),
        ],
        library_retries=0,
    )
    chans = manager(clock)
    chans.ensure("alice", source)
    chans.stop("alice", source)
    assert chans.channels() == [] and len(http.request_sequence) == 2


def test_watch_refused_is_a_calendar_error() -> None:
    source, _, _ = make_source(
        [status(400, error_body(400, "pushWebhookBadDomain", "Unauthorized WebHook callback"))],
        library_retries=0,
    )
    with pytest.raises(CalendarError, match="pushWebhookBadDomain"):
        manager(VirtualClock(T0)).ensure("alice", source)


def test_only_https_addresses_are_accepted() -> None:
    with pytest.raises(CalrefError, match="must be an HTTPS URL"):
        GoogleChannelManager("http://calref.example.se/hook", clock=VirtualClock(T0))


def registered() -> GoogleChannelManager:
    chans = manager(VirtualClock(T0))
    chans.restore(Channel("chan-1", "res-1", T0 + timedelta(days=7), "alice", "google:a", "tok-1"))
    return chans


def test_first_sync_message_is_acknowledged_without_syncing() -> None:
    outcome = registered().handle(headers("chan-1", "tok-1", "sync"))
    assert (outcome.kind, outcome.http_status, outcome.user_id) == (
        NotificationKind.SYNC,
        200,
        "alice",
    )


@pytest.mark.parametrize("state", ["exists", "not_exists"])
def test_a_change_notification_asks_for_the_users_sync(state: str) -> None:
    outcome = registered().handle(headers("chan-1", "tok-1", state))
    assert outcome.kind is NotificationKind.CHANGED and outcome.user_id == "alice"


def test_a_wrong_token_is_rejected_with_403() -> None:
    outcome = registered().handle(headers("chan-1", "tok-2", "exists"))
    assert (outcome.kind, outcome.http_status, outcome.user_id) == (
        NotificationKind.REJECTED,
        403,
        None,
    )


def test_an_unknown_channel_is_rejected_but_acknowledged_with_its_ids() -> None:
    outcome = handle_google_notification(headers("chan-9", "tok-1", "exists"), lambda _id: None)
    assert outcome.kind is NotificationKind.REJECTED and outcome.http_status == 200
    assert (outcome.channel_id, outcome.resource_id) == ("chan-9", "res-1")


def test_header_names_are_matched_case_insensitively() -> None:
    lowered = {k.lower(): v for k, v in headers("chan-1", "tok-1", "exists").items()}
    assert registered().handle(lowered).kind is NotificationKind.CHANGED


def test_channels_round_trip_through_json_for_the_store() -> None:
    channel = registered().channels()[0]
    assert Channel.from_json(channel.to_json()) == channel
