"""Opening a journal file: is it this run's journal, of a schema we read (upgrading an older one), in WAL mode?

Why apart from the rows: everything here runs once, before the run's first object, and each refusal is one line
saying which file and what to do (``--state`` elsewhere, or ``--restart``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from kvmigrate import __version__
from kvmigrate.errors import JournalError, RunLockedError
from kvmigrate.journal import schema
from kvmigrate.journal.groupcommit import WalSync

log = logging.getLogger(__name__)
_SIBLING_SUFFIXES = ("-wal", "-shm", "-journal")


def siblings(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in _SIBLING_SUFFIXES]


def prepare(
    connection: sqlite3.Connection, path: Path, *, operation: str, source: str, target: str
) -> tuple[bool, WalSync | None]:
    """Check the file is this run's journal (creating the schema in an empty one), upgrading an older one.

    Returns whether it already holds rows (a resumed run) and the group commit of its WAL (None without WAL).
    """
    wal_sync: WalSync | None = None
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        (version,) = connection.execute("PRAGMA user_version").fetchone()  # garbage or a held lock fails here
        if version == 0:
            # Refuse a foreign SQLite file before switching it to WAL, so we never modify it.
            (tables,) = connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            if tables:
                raise JournalError(
                    f"journal {path} is not a kvmigrate journal (it is another SQLite database); pass --state with"
                    " another path, or --restart to replace it",
                    path=path,
                )
        elif version not in (2, schema.SCHEMA_VERSION):
            raise JournalError(
                f"journal {path} has schema version {version}, but kvmigrate {__version__} reads version"
                f" {schema.SCHEMA_VERSION}; use the kvmigrate that wrote it, or pass --restart",
                path=path,
            )
        (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() == "wal":
            wal_sync = WalSync(path.with_name(path.name + "-wal"))
        else:
            log.warning("journal file system does not support WAL; using journal_mode=%s", mode)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                schema.create(connection)
                insert_run(connection, operation=operation, source=source, target=target)
            else:
                _check_run(connection, path, operation=operation, source=source, target=target)
                if version == 2:
                    schema.upgrade_from_2(connection)
                    connection.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION}")
            (items,) = connection.execute("SELECT count(*) FROM item").fetchone()
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise open_error(path, exc) from exc
    return items > 0, wal_sync


def insert_run(connection: sqlite3.Connection, *, operation: str, source: str, target: str) -> None:
    connection.execute(
        "INSERT INTO run (id, operation, source, target, created_at, tool_version) VALUES (1, ?, ?, ?, ?, ?)",
        (operation, source, target, datetime.now(UTC).isoformat(timespec="milliseconds"), __version__),
    )
    # user_version is part of this transaction: a crash leaves either the whole schema or an empty file.
    connection.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION}")


def _check_run(connection: sqlite3.Connection, path: Path, *, operation: str, source: str, target: str) -> None:
    """Why: resuming with another run's journal would skip objects that were never copied to this target."""
    row = connection.execute("SELECT operation, source, target FROM run WHERE id = 1").fetchone()
    if row is None:
        raise JournalError(
            f"journal {path} is not a kvmigrate journal or is corrupt: it has no run record; remove it or pass"
            " --restart",
            path=path,
        )
    if tuple(row) != (operation, source, target):
        old_operation, old_source, old_target = row
        raise JournalError(
            f"journal {path} belongs to {old_operation} {old_source} → {old_target}, not {operation} {source} →"
            f" {target}; pass --state with another path or --restart",
            path=path,
        )


def open_error(path: Path, exc: sqlite3.Error) -> JournalError | RunLockedError:
    """Say in one line why SQLite would not open ``path`` and what to do about it."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return RunLockedError(
            f"journal {path} is in use by another kvmigrate run; wait for it to finish or pass --state with another"
            " path"
        )
    if isinstance(exc, sqlite3.OperationalError) and not name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return JournalError(
            f"cannot open journal {path}: {exc}; check the path, its permissions and free space", path=path
        )
    return JournalError(
        f"journal {path} is not a kvmigrate journal or is corrupt: {exc}; remove it or pass --restart", path=path
    )


def remove(path: Path) -> None:
    """Delete the journal and its SQLite siblings (``--restart``, or a run that wrote nothing)."""
    for candidate in (path, *siblings(path)):
        try:
            os.unlink(candidate)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise JournalError(
                f"cannot remove journal {candidate}: {exc.strerror}; remove it by hand", path=path
            ) from exc
