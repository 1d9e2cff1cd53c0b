"""Group commit: the executor's many small writes, a batch of them per transaction.

While the switchboard answers, up to ``concurrency`` executor threads each
want to write a little: mark an action ``sending`` before its call, record its
outcome after. One transaction each made them queue on the store's write turn
(SQLite has one writer) and pay a BEGIN/COMMIT each. Here they hand their write
(an ``Op``: a function of the connection and the ``Batch``) to one writer
thread, which runs every write queued meanwhile in one transaction, appends
their audit lines and phone states in one statement each, commits, and only
then answers them.

``submit`` returns a ``Pending``: a claim waits for it (the action must be
``sending`` in the store before its call); a claimed action's outcome need not,
because nothing is lost if the process dies before that commit: the action is
still ``sending`` and the next start re-sends it with its idempotency key,
which the switchboard answers from its first result. ``on_done`` callbacks run
on the writer thread after the commit (the executor's action listeners).

If a batch fails, its writes are run again one transaction each, so one
write's error is its own. ``before`` runs before a transaction holding a
write submitted with ``verify`` (the check that the SQLite file is still the
one opened: ``StoreLost`` fails it); ``after`` writes the ``Batch`` at its end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from connectors.switchboard.base import PhoneState

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: at most this many writes in one transaction
MAX_BATCH = 500


@dataclass
class Batch:
    """What the writes of one transaction append, written once for all of them at the end."""

    audit: list[dict[str, Any]] = field(default_factory=list)
    #: user id -> (phone state, observed at); the last one of a user wins
    phones: dict[str, tuple[PhoneState, datetime]] = field(default_factory=dict)


Op = Callable[[Connection, Batch], _T]


class Pending(Generic[_T]):
    """The answer to one submitted write, once its transaction committed (or failed)."""

    def __init__(self, op: Op[_T], on_done: Callable[[_T], None] | None, verify: bool) -> None:
        self.op = op
        self.verify = verify
        self.on_done = on_done
        self._done = threading.Event()
        self._value: _T | None = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> _T:
        """Wait for the commit; the write's result, or its error raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def _settle(self, value: _T | None, error: BaseException | None) -> None:
        self._value, self._error = value, error
        self._done.set()
        if error is None and self.on_done is not None:
            try:
                self.on_done(value)  # type: ignore[arg-type]
            except Exception:
                log.exception("a callback after a store write failed")


class GroupCommit:
    """One writer thread (started on first use) committing queued writes in batches."""

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Connection]],
        *,
        before: Callable[[], None],
        after: Callable[[Connection, Batch], None],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._begin = begin
        self._before = before
        self._after = after
        self._max_batch = max_batch
        self._queue: list[Pending[Any]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(
        self,
        op: Op[_T],
        *,
        verify: bool = False,
        on_done: Callable[[_T], None] | None = None,
    ) -> Pending[_T]:
        """Queue ``op`` for the next transaction; ``Pending.result`` waits for it.

        ``verify``: its transaction runs ``before`` first (the store-file check).
        """
        pending = Pending(op, on_done, verify)
        with self._wake:
            self._queue.append(pending)
            if self._thread is None:
                self._start()
            self._wake.notify()
        return pending

    def _start(self) -> None:
        """Start the writer thread (holding ``_wake``)."""
        self._thread = threading.Thread(target=self._run, name="calref-store-writer", daemon=True)
        self._thread.start()

    def run(self, op: Op[_T], *, verify: bool = False) -> _T:
        """``op`` in the next transaction, waiting for its commit."""
        return self.submit(op, verify=verify).result()

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread (a later write starts another)."""
        with self._wake:
            thread = self._thread
            if thread is None:
                return
            self._closed = True
            self._wake.notify()
        thread.join()
        with self._wake:
            self._closed = False
            self._thread = None
            if self._queue:  # submitted while closing
                self._start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._commit(batch)

    def _commit(self, batch: list[Pending[Any]]) -> None:
        try:
            values = self._transaction(batch)
        except BaseException as err:
            if len(batch) == 1:
                batch[0]._settle(None, err)
                return
            for pending in batch:  # one at a time: each write's error is its own
                self._commit([pending])
            return
        for pending, value in zip(batch, values, strict=True):
            pending._settle(value, None)

    def _transaction(self, batch: list[Pending[Any]]) -> list[Any]:
        if any(pending.verify for pending in batch):
            self._before()
        appended = Batch()
        with self._begin() as conn:
            values = [pending.op(conn, appended) for pending in batch]
            self._after(conn, appended)
        return values


def settle_all(pendings: Iterator[Pending[Any]] | list[Pending[Any]]) -> None:
    """Wait for every write; the first error is raised once all are settled."""
    first: BaseException | None = None
    for pending in pendings:
        try:
            pending.result()
        except BaseException as err:
            first = first or err
    if first is not None:
        raise first
