"""Opening the store's database: engine creation for SQLite (WAL) and PostgreSQL.

SQLite is the default (one file, WAL journal so readers never block the
writer, a busy timeout instead of "database is locked" errors); PostgreSQL uses
the same models and migrations through psycopg 3.

The SQLite file holds meeting subjects, so it is created readable by its owner
only (0600; SQLite gives its ``-wal`` and ``-shm`` files the database file's
permissions). A folder that cannot be written or a read-only file is a
``StoreError`` at once, not a database error later. ``readonly`` opens an
existing file without ever creating one (``calref status``). ``FileIdentity``
remembers which file was opened (device and inode) so the service notices
when the file is deleted or replaced under it (``StoreLost``).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from rules.errors import StoreError, StoreLost

log = logging.getLogger(__name__)


#: Connections kept open: the executor's worker threads (16 by default) each use one at a
#: time, and with SQLAlchemy's default of 5 the others were closed and reopened per action.
_POOL: dict[str, Any] = {"pool_size": 20, "max_overflow": 20}


@dataclass(frozen=True)
class FileIdentity:
    """Which SQLite file a store opened: its path, device and inode."""

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        info = path.stat()
        return cls(path, info.st_dev, info.st_ino)

    def verify(self) -> None:
        """Raise ``StoreLost`` unless ``path`` is still the file that was opened."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise StoreLost(
                f"store {self.path} was deleted while calref was using it; stopping "
                "(restore the file, or start again on a new store knowingly)"
            ) from None
        except OSError as err:
            raise StoreLost(f"store {self.path}: cannot check the file: {err.strerror}") from None
        if (info.st_dev, info.st_ino) != (self.device, self.inode):
            raise StoreLost(
                f"store {self.path} was replaced by another file while calref was using it; "
                "stopping (another process may act on the new one)"
            )


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None: not SQLite, or in memory)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def prepare_sqlite_file(path: Path, *, readonly: bool) -> None:
    """Check (and when writing, create with mode 0600) the SQLite file; ``StoreError`` if unfit."""
    folder = path.parent
    if readonly:
        if not path.is_file():
            raise StoreError(
                f"store {path} does not exist (no `calref run` has used this store yet?)"
            )
        if not os.access(path, os.R_OK):
            raise StoreError(f"store {path} cannot be read by this user")
        return
    if not folder.is_dir():
        raise StoreError(f"store {path}: the folder {folder} does not exist")
    if path.exists():
        if not path.is_file():
            raise StoreError(f"store {path} is not a file")
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"store {path} is read-only for this user; calref needs to write it")
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes its -wal and -shm files next to the database
        raise StoreError(f"store {path}: the folder {folder} cannot be written by this user")
    if not path.exists():
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, stat.S_IRUSR | stat.S_IWUSR)
        except FileExistsError:
            return  # another process created it meanwhile
        except OSError as err:
            raise StoreError(f"store {path}: cannot create the file: {err.strerror}") from None
        os.close(fd)


def create_store_engine(url: str, *, readonly: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path.db`` or ``postgresql+psycopg://...``).

    ``readonly``: a SQLite file is opened read-only and must exist already.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"store url: cannot parse {url!r} as a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args: dict[str, Any] = {"timeout": 30, "check_same_thread": False}
        in_memory = parsed.database in (None, "", ":memory:")
        if not in_memory:
            kwargs = _POOL | kwargs
            path = Path(str(parsed.database))
            prepare_sqlite_file(path, readonly=readonly)
            if readonly:
                parsed = parsed.set(
                    database=path.resolve().as_uri(), query={"mode": "ro", "uri": "true"}
                )
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not in_memory and not readonly:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, **(_POOL | kwargs))
    raise StoreError(
        f"store url: unsupported database {backend!r} (use sqlite:/// or postgresql+psycopg://)"
    )
