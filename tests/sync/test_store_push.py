"""The store's push subscriptions: round trip, replace, delete, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from service_fakes import T0

from sync.store import Store
from sync.store.push import StoredPush

GRAPH_SUB = StoredPush(
    kind="graph",
    remote_id="7f105c7d-2dc5-4530-97cd-4e7ae6530001",
    source_id="graph:alice@example.se",
    account="alice@example.se",
    address="https://calref.example.se/hooks/graph",
    expires=T0 + timedelta(minutes=4200),
    client_state_ref="scrypt$00ff$abcd",
)
GOOGLE_CHANNEL = StoredPush(
    kind="google",
    remote_id="chan-1",
    source_id="google:bob@example.se",
    account="bob@example.se",
    address="https://calref.example.se/hooks/google",
    expires=T0 + timedelta(days=7),
    resource_id="res-1",
    token="per-channel-token-value",
)


def test_subscriptions_and_channels_round_trip_across_a_reopen(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    store.migrate()
    store.save_push_subscription(GRAPH_SUB)
    store.save_push_subscription(GOOGLE_CHANNEL)
    store.close()

    again = open_store()
    assert again.push_subscriptions() == [GOOGLE_CHANNEL, GRAPH_SUB]  # by kind, source
    assert again.push_subscriptions("google") == [GOOGLE_CHANNEL]
    assert all(s.expires.tzinfo is not None for s in again.push_subscriptions())


def test_saving_again_replaces_the_row_and_delete_forgets_it(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    store.migrate()
    store.save_push_subscription(GRAPH_SUB)
    stockholm = timezone(timedelta(hours=1))
    renewed = replace(GRAPH_SUB, expires=(T0 + timedelta(days=3)).astimezone(stockholm))
    store.save_push_subscription(renewed)
    assert store.push_subscriptions() == [replace(renewed, expires=T0 + timedelta(days=3))]

    assert store.delete_push_subscription("graph", GRAPH_SUB.remote_id) is True
    assert store.delete_push_subscription("graph", GRAPH_SUB.remote_id) is False
    assert store.push_subscriptions() == []


def test_same_remote_id_of_two_kinds_are_two_rows(open_store: Callable[[], Store]) -> None:
    store = open_store()
    store.migrate()
    store.save_push_subscription(GOOGLE_CHANNEL)
    store.save_push_subscription(replace(GRAPH_SUB, remote_id=GOOGLE_CHANNEL.remote_id))
    assert {s.kind for s in store.push_subscriptions()} == {"graph", "google"}


def test_unknown_kind_and_naive_expiry_are_refused(sqlite_store: Store) -> None:
    with pytest.raises(ValueError, match="kind 'teams'"):
        sqlite_store.save_push_subscription(replace(GRAPH_SUB, kind="teams"))
    with pytest.raises(Exception, match="naive datetime"):
        sqlite_store.save_push_subscription(replace(GRAPH_SUB, expires=T0.replace(tzinfo=None)))
    assert sqlite_store.push_subscriptions() == []


def test_a_channel_token_is_not_shown_in_repr() -> None:
    assert "per-channel-token-value" not in repr(GOOGLE_CHANNEL)
    assert "chan-1" in repr(GOOGLE_CHANNEL)
