"""The store's push side: Graph subscriptions and Google watch channels kept across restarts.

``sync.push.hub.PushHub`` restores these on start (so ``calref run`` reuses its
subscriptions instead of creating new ones every restart) and saves them after
every create, renew and removal. A row is one subscription or channel:
``kind`` (``graph`` or ``google``) and the remote id name it. Graph's shared
clientState secret is never stored, only a salted fingerprint
(``client_state_ref``); a Google channel's own random ``token`` is stored
(notifications are checked against it) and is left out of ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from sync.store.base import StoreBase, _table
from sync.store.models import PushSubscriptionRow

PUSH = _table(PushSubscriptionRow)


class PushKind(StrEnum):
    """Whose push a stored row is. Members equal their stored strings."""

    GRAPH = "graph"  # a Microsoft Graph change-notification subscription
    GOOGLE = "google"  # a Google Calendar ``events.watch`` channel


_KINDS = frozenset(PushKind)


@dataclass(frozen=True)
class StoredPush:
    """One stored subscription or channel (times aware UTC)."""

    kind: PushKind
    remote_id: str  # Graph subscription id / Google channel id
    source_id: str  # the service's calendar source id
    account: str  # the mailbox (Graph) or delegated user (Google)
    address: str  # where notifications are delivered
    expires: datetime
    resource_id: str | None = None  # Google's resourceId (channels.stop needs it)
    client_state_ref: str | None = None  # fingerprint of Graph's clientState, never the secret
    token: str | None = field(default=None, repr=False)  # a Google channel's token (sensitive)

    @property
    def key(self) -> tuple[PushKind, str]:
        return (self.kind, self.remote_id)


class PushStore(StoreBase):
    """Push subscriptions and channels (Core statements; a transaction per method)."""

    def push_subscriptions(self, kind: PushKind | None = None) -> list[StoredPush]:
        """Every stored subscription/channel (of ``kind`` when given), by kind, source, expiry."""
        query = select(PUSH).order_by(PUSH.c.kind, PUSH.c.source_id, PUSH.c.expires_at)
        if kind is not None:
            query = query.where(PUSH.c.kind == kind)
        with self._read() as conn:
            return [_record(row) for row in conn.execute(query)]

    def save_push_subscription(self, sub: StoredPush) -> None:
        """Insert or replace the row of ``sub`` (by kind and remote id)."""
        if sub.kind not in _KINDS:
            raise ValueError(f"push subscription kind {sub.kind!r}: expected graph or google")
        values = _values(sub)
        with self._conn() as conn:
            done = conn.execute(update(PUSH).where(_key(sub.kind, sub.remote_id)).values(values))
            if done.rowcount == 0:
                conn.execute(insert(PUSH).values(values))

    def delete_push_subscription(self, kind: PushKind, remote_id: str) -> bool:
        """Forget one subscription/channel; True when it was stored."""
        with self._conn() as conn:
            return bool(conn.execute(delete(PUSH).where(_key(kind, remote_id))).rowcount)


def _key(kind: PushKind, remote_id: str) -> Any:
    return and_(PUSH.c.kind == kind, PUSH.c.remote_id == remote_id)


def _values(sub: StoredPush) -> dict[str, Any]:
    return {
        "kind": sub.kind,
        "remote_id": sub.remote_id,
        "source_id": sub.source_id,
        "account": sub.account,
        "resource_id": sub.resource_id,
        "address": sub.address,
        "expires_at": sub.expires,
        "client_state_ref": sub.client_state_ref,
        "token": sub.token,
    }


def _record(row: Any) -> StoredPush:
    return StoredPush(
        kind=PushKind(row.kind),
        remote_id=row.remote_id,
        source_id=row.source_id,
        account=row.account,
        address=row.address,
        expires=row.expires_at,
        resource_id=row.resource_id,
        client_state_ref=row.client_state_ref,
        token=row.token,
    )
