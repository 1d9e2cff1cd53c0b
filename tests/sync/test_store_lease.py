"""The store's leader lease: take, renew, release, lapse, and races between processes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from service_fakes import T0

from sync.store import Store

TTL = timedelta(seconds=30)


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    store = open_store()
    store.migrate()
    return store


def test_a_free_lease_is_taken_and_others_are_refused_while_it_lives(store: Store) -> None:
    assert store.lease() is None
    assert store.lease_holder(T0) is None
    assert store.try_acquire_lease("a", T0, TTL)
    assert not store.try_acquire_lease("b", T0 + timedelta(seconds=10), TTL)
    assert not store.try_acquire_lease("b", T0 + TTL - timedelta(microseconds=1), TTL)
    holder = store.lease_holder(T0 + timedelta(seconds=10))
    assert holder is not None
    assert (holder.holder, holder.acquired_at, holder.expires_at) == ("a", T0, T0 + TTL)


def test_acquiring_again_renews_and_keeps_the_acquisition_time(store: Store) -> None:
    assert store.try_acquire_lease("a", T0, TTL)
    later = T0 + timedelta(seconds=20)
    assert store.try_acquire_lease("a", later, TTL)
    lease = store.lease()
    assert lease is not None
    assert (lease.acquired_at, lease.renewed_at, lease.expires_at) == (T0, later, later + TTL)


def test_a_lapsed_lease_goes_to_the_next_taker(store: Store) -> None:
    assert store.try_acquire_lease("a", T0, TTL)
    assert store.lease_holder(T0 + TTL) is None
    assert store.try_acquire_lease("b", T0 + TTL, TTL)
    lease = store.lease_holder(T0 + TTL)
    assert lease is not None
    assert (lease.holder, lease.acquired_at) == ("b", T0 + TTL)
    # the old holder can neither renew nor take it back
    assert not store.renew_lease("a", T0 + TTL, TTL)
    assert not store.try_acquire_lease("a", T0 + TTL + timedelta(seconds=1), TTL)


def test_renewal_extends_only_the_holders_lease(store: Store) -> None:
    assert not store.renew_lease("a", T0, TTL)  # nothing to renew
    assert store.try_acquire_lease("a", T0, TTL)
    assert store.renew_lease("a", T0 + timedelta(seconds=25), TTL)
    assert not store.try_acquire_lease("b", T0 + timedelta(seconds=40), TTL)
    assert not store.renew_lease("b", T0 + timedelta(seconds=40), TTL)
    lease = store.lease()
    assert lease is not None
    assert (lease.holder, lease.expires_at) == ("a", T0 + timedelta(seconds=55))


def test_a_lapsed_lease_nobody_took_can_still_be_renewed_by_its_holder(store: Store) -> None:
    assert store.try_acquire_lease("a", T0, TTL)
    assert store.renew_lease("a", T0 + timedelta(minutes=5), TTL)
    assert not store.try_acquire_lease("b", T0 + timedelta(minutes=5, seconds=1), TTL)


def test_release_frees_the_lease_at_once_but_only_for_its_holder(store: Store) -> None:
    assert store.try_acquire_lease("a", T0, TTL)
    assert not store.release_lease("b")
    assert store.lease_holder(T0 + timedelta(seconds=1)) is not None
    assert store.release_lease("a")
    assert store.lease_holder(T0 + timedelta(seconds=1)) is None
    assert store.try_acquire_lease("b", T0 + timedelta(seconds=1), TTL)
    assert not store.release_lease("a")


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        store.try_acquire_lease("a", T0, timedelta(0))
    with pytest.raises(ValueError, match="holder must not be empty"):
        store.renew_lease("", T0, TTL)


@pytest.mark.parametrize("contenders", [2, 4])
def test_concurrent_takers_on_separate_connections_get_exactly_one_winner(
    open_store: Callable[[], Store], contenders: int
) -> None:
    """Each contender is its own Store (own engine and pool), as separate processes are."""
    stores = [open_store() for _ in range(contenders)]
    stores[0].migrate()
    rounds = 12
    barrier = threading.Barrier(contenders)
    wins: list[list[str]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        holder = f"proc-{index}"
        try:
            for r in range(rounds):
                now = T0 + r * 2 * TTL  # each round, the previous winner's lease has lapsed
                barrier.wait(timeout=30)
                if stores[index].try_acquire_lease(holder, now, TTL):
                    wins[r].append(holder)
        except BaseException as err:  # reported below: a thread's failure must fail the test
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert [len(w) for w in wins] == [1] * rounds, wins
    final = stores[0].lease()
    assert final is not None
    assert [final.holder] == wins[-1]
