"""Record every object's progress in a SQLite file so an interrupted run can resume where it stopped.

The journal is the source of truth for resume: the engine commits ``restoring`` before it writes to the target and
``done`` after, so a crash leaves ``restoring`` rows that the next run settles by looking at the target (restore is
not idempotent: it answers 409 when the name exists). It stores only type, name, version ids, states, outcomes,
reasons, errors, attempts and timestamps: never a secret value, key material or a backup blob.

Durability: the connection runs WAL with ``synchronous=NORMAL``. NORMAL survives a killed process (Ctrl-C, OOM,
crash) but may lose the last commits on power loss; losing most transitions is harmless (a lost ``done`` leaves
``restoring``, which resume settles; a lost ``backed_up`` or ``pending`` is redone). A lost ``restoring`` is not,
since the target write may have happened, so ``mark_restoring`` returns only once its commit is on disk. It does that
by group commit: the commit itself is a WAL append, and one fsync of the WAL in a worker thread covers every commit
made before it began, so concurrent restore workers share one fsync and the event loop never waits for the disk.
(Before, each ``restoring`` commit ran with ``synchronous=FULL``: an fsync per object on the event loop, about a
sixth of the client's time in a copy at the vault's limit.) Value mode's version map, written at Key Vault's much
lower create rate, still commits with ``synchronous=FULL``.

One writer: the connection holds SQLite's exclusive lock from open to close (``locking_mode=EXCLUSIVE``), so a second
run on the same file fails at once with a clear message instead of interleaving its rows; it also means WAL needs no
``-shm`` file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from kvmigrate import __version__
from kvmigrate.errors import UsageError
from kvmigrate.models import ItemState, ObjectRef, ObjectType, Outcome

__all__ = ["OPERATIONS", "SCHEMA_VERSION", "ItemRecord", "Journal", "JournalError"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: version_map (value mode)
OPERATIONS = frozenset({"copy", "backup", "restore"})
FILE_MODE = 0o600
DIR_MODE = 0o700
_SIBLING_SUFFIXES = ("-wal", "-shm", "-journal")
_PAGE_SIZE = 1000

_S = ItemState
#: Allowed ``mark`` moves. Final states (done, skipped) never move. ``failed`` can be retried. Blobs are never
#: kept, so a resumed object is backed up again: ``backed_up`` may be re-marked, and ``restoring`` may go back to
#: ``pending``/``backed_up`` once resume has found nothing at the target (the write never happened). ``restoring``
#: cannot be re-marked: an in-flight row must be settled against the target first. A fresh object goes from
#: ``pending`` straight to ``restoring`` (the engine journals ``backed_up`` only when it resumes an in-flight row).
_TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    _S.PENDING: frozenset({_S.PENDING, _S.BACKED_UP, _S.RESTORING, _S.DONE, _S.SKIPPED, _S.FAILED}),
    _S.BACKED_UP: frozenset({_S.BACKED_UP, _S.RESTORING, _S.DONE, _S.SKIPPED, _S.FAILED}),
    _S.RESTORING: frozenset({_S.DONE, _S.SKIPPED, _S.FAILED, _S.PENDING, _S.BACKED_UP}),
    _S.FAILED: frozenset({_S.PENDING, _S.BACKED_UP, _S.RESTORING, _S.DONE, _S.SKIPPED, _S.FAILED}),
    _S.DONE: frozenset(),
    _S.SKIPPED: frozenset(),
}


#: For each state, the states a row may be in to move there: ``mark`` checks the move inside its one UPDATE.
_FROM: dict[ItemState, tuple[str, ...]] = {
    target: tuple(source.value for source, targets in _TRANSITIONS.items() if target in targets) for target in _S
}


def _in_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


_SCHEMA = (
    """
    CREATE TABLE run (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        operation TEXT NOT NULL,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        created_at TEXT NOT NULL,
        tool_version TEXT NOT NULL
    )
    """,
    f"""
    CREATE TABLE item (
        type TEXT NOT NULL CHECK (type IN ({_in_list([t.value for t in ObjectType])})),
        name_key TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({_in_list([s.value for s in ItemState])})),
        versions TEXT NOT NULL,
        outcome TEXT CHECK (outcome IS NULL OR outcome IN ({_in_list([o.value for o in Outcome])})),
        reason TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (type, name_key)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX item_by_state ON item (state, type, name_key)",
    # Value mode recreates versions, so target version ids differ: this map is how a resumed run knows which
    # source versions already exist in the target and creates no duplicates.
    """
    CREATE TABLE version_map (
        type TEXT NOT NULL,
        name_key TEXT NOT NULL,
        source_version TEXT NOT NULL,
        target_version TEXT NOT NULL,
        PRIMARY KEY (type, name_key, source_version)
    ) WITHOUT ROWID
    """,
)
_RECORD_COLUMNS = "type, name, state, versions, outcome, reason, error, attempts"


class JournalError(UsageError):
    """The journal cannot be used: another run's file, another schema, corrupt, in use, unwritable, or misused.

    A usage error (exit 2): the message says which file and what to do (--state elsewhere, or --restart).
    """

    def __init__(self, message: str, *, path: Path, ref: ObjectRef | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.ref = ref


@dataclass(frozen=True)
class ItemRecord:
    """One object's row: where it is, which versions it had, and how it ended."""

    ref: ObjectRef
    state: ItemState
    versions: tuple[str, ...]
    outcome: Outcome | None
    reason: str | None
    error: str | None
    attempts: int


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _siblings(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in _SIBLING_SUFFIXES]


class Journal:
    """The SQLite journal of one run (``copy``/``backup``/``restore`` from one source to one target).

    Why sync methods in an async tool: every call is one short local transaction, the engine is the only writer and
    runs in one event-loop thread, and a thread hop per call would cost more than the call. The exception is
    ``mark_restoring``, which awaits the shared fsync that makes its row durable.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        """Wrap an open connection; use ``Journal.open``, which validates the file first."""
        self.path = path
        self.is_resumed = False
        self._connection: sqlite3.Connection | None = connection
        self._wal_sync: _WalSync | None = None  # set when the file runs in WAL mode

    @classmethod
    def open(cls, path: Path, *, source: str, target: str, operation: str, restart: bool = False) -> Journal:
        """Open or create the journal at ``path`` for this run; with ``restart`` start from an empty file.

        Why the run check: resuming with another run's journal would skip objects that were never copied to this
        target. ``source`` and ``target`` are compared exactly, so the caller passes them normalised.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}: use one of {', '.join(sorted(OPERATIONS))}")
        path = Path(path)
        if restart:
            _remove(path)
        _ensure_parent(path)
        _create_private(path)
        try:
            connection = sqlite3.connect(str(path), isolation_level=None, timeout=0)
        except sqlite3.Error as exc:
            raise _open_error(path, exc) from exc
        journal = cls(path, connection)
        try:
            journal._prepare(operation=operation, source=source, target=target)
            journal._tighten_permissions()
        except BaseException:
            connection.close()
            raise
        log.debug("journal opened (%s, %s)", "resumed" if journal.is_resumed else "new", journal.counts())
        return journal

    def _prepare(self, *, operation: str, source: str, target: str) -> None:
        """Check the file is this run's journal (creating the schema in an empty one) and take the writer lock."""
        connection = self._conn
        try:
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            version = self._user_version()  # the first read of the file: garbage or a held lock fails here
            if version == 0:
                # Refuse a foreign SQLite file before switching it to WAL, so we never modify it.
                (tables,) = connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
                if tables:
                    raise JournalError(
                        f"journal {self.path} is not a kvmigrate journal (it is another SQLite database);"
                        " pass --state with another path, or --restart to replace it",
                        path=self.path,
                    )
            elif version != SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path} has schema version {version}, but kvmigrate {__version__} reads version"
                    f" {SCHEMA_VERSION}; use the kvmigrate that wrote it, or pass --restart",
                    path=self.path,
                )
            (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() == "wal":
                self._wal_sync = _WalSync(self.path.with_name(self.path.name + "-wal"))
            else:
                log.warning("journal file system does not support WAL; using journal_mode=%s", mode)
            connection.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                if self._user_version() == 0:
                    self._create_schema(operation=operation, source=source, target=target)
                else:
                    self._check_run(operation=operation, source=source, target=target)
                (items,) = connection.execute("SELECT count(*) FROM item").fetchone()
        except sqlite3.Error as exc:
            raise _open_error(self.path, exc) from exc
        self.is_resumed = items > 0

    def _user_version(self) -> int:
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        return int(version)

    def _create_schema(self, *, operation: str, source: str, target: str) -> None:
        connection = self._conn
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO run (id, operation, source, target, created_at, tool_version) VALUES (1, ?, ?, ?, ?, ?)",
            (operation, source, target, _now(), __version__),
        )
        # user_version is part of this transaction: a crash leaves either the whole schema or an empty file.
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _check_run(self, *, operation: str, source: str, target: str) -> None:
        row = self._conn.execute("SELECT operation, source, target FROM run WHERE id = 1").fetchone()
        if row is None:
            raise JournalError(
                f"journal {self.path} is not a kvmigrate journal or is corrupt: it has no run record;"
                " remove it or pass --restart",
                path=self.path,
            )
        if tuple(row) != (operation, source, target):
            old_operation, old_source, old_target = row
            raise JournalError(
                f"journal {self.path} belongs to {old_operation} {old_source} → {old_target},"
                f" not {operation} {source} → {target}; pass --state with another path or --restart",
                path=self.path,
            )

    def _tighten_permissions(self) -> None:
        """Make the file and any -wal/-shm sibling 0600, whatever the umask or an older copy of the file said."""
        for candidate in (self.path, *_siblings(self.path)):
            try:
                if stat.S_IMODE(candidate.stat().st_mode) != FILE_MODE:
                    os.chmod(candidate, FILE_MODE)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise JournalError(
                    f"cannot make journal {candidate} private (mode 0600): {exc.strerror}; check who owns it",
                    path=self.path,
                ) from exc

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise JournalError(f"journal {self.path} is closed (a bug in kvmigrate; please report it)", path=self.path)
        return self._connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run several statements as one write transaction (the schema and run record of a new file)."""
        connection = self._conn
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _write(self, sql: str, parameters: Sequence[object], *, durable: bool = False) -> sqlite3.Cursor:
        """Run one write statement as its own transaction (autocommit); with ``durable`` its commit waits for fsync.

        Why not ``_transaction``: a single statement is atomic by itself, and BEGIN/COMMIT around it are two more
        calls into SQLite for every journal write, a sixth of the client's CPU per object in the benchmark.
        """
        connection = self._conn
        if not durable:
            return connection.execute(sql, parameters)
        connection.execute("PRAGMA synchronous=FULL")
        try:
            return connection.execute(sql, parameters)
        finally:
            connection.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _writing(self, ref: ObjectRef | None = None) -> Iterator[None]:
        """Turn SQLite failures during use into JournalError: the run cannot continue without its journal."""
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalError(
                f"cannot use journal {self.path}: {exc}; check free space and permissions, then rerun to resume",
                path=self.path,
                ref=ref,
            ) from exc

    def map_version(self, ref: ObjectRef, source_version: str, target_version: str) -> None:
        """Record (durably) that ``source_version`` of ``ref`` now exists in the target as ``target_version``."""
        with self._writing(ref):
            self._write(
                "INSERT OR REPLACE INTO version_map (type, name_key, source_version, target_version) "
                "VALUES (?, ?, ?, ?)",
                (ref.type.value, ref.key, source_version, target_version),
                durable=True,
            )

    def version_map(self, ref: ObjectRef) -> dict[str, str]:
        """Source version id → target version id for everything value mode has written of ``ref``."""
        with self._writing(ref):
            rows = self._conn.execute(
                "SELECT source_version, target_version FROM version_map WHERE type = ? AND name_key = ?",
                (ref.type.value, ref.key),
            ).fetchall()
        return {str(source): str(target) for source, target in rows}

    def get(self, ref: ObjectRef) -> ItemRecord | None:
        """Return the row for ``ref``, or ``None`` if this run has not recorded it."""
        with self._writing(ref):
            row = self._conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM item WHERE type = ? AND name_key = ?", (ref.type.value, ref.key)
            ).fetchone()
        return None if row is None else self._record(row)

    def record_pending(self, ref: ObjectRef, versions: Sequence[str]) -> None:
        """Add ``ref`` as pending, or refresh its version ids if it is already here and not final.

        Why the state is kept on an existing row: a ``restoring`` row must stay in flight until resume settles it,
        and a final row is never downgraded, so a rerun does not redo finished objects.
        """
        if isinstance(versions, str):
            raise TypeError("versions must be a sequence of version ids, not a single string")
        encoded = json.dumps([str(version) for version in versions])
        now = _now()
        with self._writing(ref):
            self._write(
                "INSERT INTO item (type, name_key, name, state, versions, attempts, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
                " ON CONFLICT (type, name_key) DO UPDATE SET"
                " name = excluded.name, versions = excluded.versions, updated_at = excluded.updated_at"
                " WHERE item.state NOT IN (?, ?)",
                (
                    ref.type.value,
                    ref.key,
                    ref.name,
                    ItemState.PENDING.value,
                    encoded,
                    now,
                    now,
                    ItemState.DONE.value,
                    ItemState.SKIPPED.value,
                ),
            )

    async def mark_restoring(self, ref: ObjectRef) -> None:
        """Move ``ref`` to ``restoring`` and return once that commit is on disk: the caller writes the target next.

        The commit is an ordinary WAL append; the wait is the group commit's shared fsync (see the module docstring).
        Without WAL (a file system that refuses it) the commit itself runs with ``synchronous=FULL``.
        """
        wal_sync = self._wal_sync
        if wal_sync is None:
            self.mark(ref, ItemState.RESTORING)
            return
        self.mark(ref, ItemState.RESTORING, durable=False)
        try:
            await wal_sync.flush()
        except OSError as exc:
            raise JournalError(
                f"cannot sync journal {self.path} to disk: {exc.strerror}; check the disk, then rerun to resume",
                path=self.path,
                ref=ref,
            ) from exc

    def mark(
        self,
        ref: ObjectRef,
        state: ItemState,
        *,
        outcome: Outcome | None = None,
        reason: str | None = None,
        error: str | None = None,
        durable: bool | None = None,
    ) -> None:
        """Move ``ref`` to ``state`` and commit, replacing its outcome, reason and error with the ones given.

        Why it raises on an illegal move: the engine's bookkeeping is wrong, and carrying on could mark an object
        done that was never written. ``failed`` counts one more attempt. ``durable`` (by default: for ``restoring``)
        makes the commit wait for an fsync of its own; the engine uses ``mark_restoring``, which shares one fsync
        between concurrent workers.
        """
        state = ItemState(state)
        allowed = _FROM[state]
        if durable is None:
            durable = state is ItemState.RESTORING
        with self._writing(ref):
            moved = self._write(
                "UPDATE item SET state = ?, outcome = ?, reason = ?, error = ?, attempts = attempts + ?,"
                f" updated_at = ? WHERE type = ? AND name_key = ? AND state IN ({', '.join('?' * len(allowed))})",
                (
                    state.value,
                    None if outcome is None else Outcome(outcome).value,
                    reason,
                    error,
                    1 if state is ItemState.FAILED else 0,
                    _now(),
                    ref.type.value,
                    ref.key,
                    *allowed,
                ),
                durable=durable,
            ).rowcount
            if moved:
                return
            row = self._conn.execute(
                "SELECT state FROM item WHERE type = ? AND name_key = ?", (ref.type.value, ref.key)
            ).fetchone()
        if row is None:
            raise JournalError(
                f"journal {self.path}: {ref} was never recorded, so it cannot become {state.value}"
                " (a bug in kvmigrate; please report it)",
                path=self.path,
                ref=ref,
            )
        raise JournalError(
            f"journal {self.path}: {ref} cannot move from {row[0]} to {state.value}"
            " (a bug in kvmigrate; please report it)",
            path=self.path,
            ref=ref,
        )

    def in_flight(self) -> list[ItemRecord]:
        """Return the rows left in ``restoring``: the target write may or may not have happened."""
        return list(self.items(ItemState.RESTORING))

    def items(self, state: ItemState | None = None) -> Iterator[ItemRecord]:
        """Yield rows (optionally of one state) ordered by type and name.

        Why pages by key rather than one cursor: the caller may ``mark`` rows while iterating, which must neither
        disturb the iteration nor load the whole table at once.
        """
        after: tuple[str, str] = ("", "")
        where = "(type, name_key) > (?, ?)"
        if state is not None:
            where += " AND state = ?"
        while True:
            parameters: tuple[str, ...] = after if state is None else (*after, ItemState(state).value)
            with self._writing():
                rows = self._conn.execute(
                    f"SELECT {_RECORD_COLUMNS}, name_key FROM item WHERE {where}"
                    f" ORDER BY type, name_key LIMIT {_PAGE_SIZE}",
                    parameters,
                ).fetchall()
            for row in rows:
                yield self._record(row[:-1])
            if len(rows) < _PAGE_SIZE:
                return
            after = (rows[-1][0], rows[-1][-1])

    def counts(self) -> dict[str, int]:
        """Return how many rows are in each state, every state present (zero when none)."""
        result = {state.value: 0 for state in ItemState}
        with self._writing():
            for state, count in self._conn.execute("SELECT state, count(*) FROM item GROUP BY state"):
                result[str(state)] = int(count)
        return result

    def _record(self, row: Sequence[object]) -> ItemRecord:
        type_, name, state, versions, outcome, reason, error, attempts = row
        try:
            decoded = json.loads(str(versions))
            if not isinstance(decoded, list):
                raise ValueError("versions is not a list")
            return ItemRecord(
                ref=ObjectRef(ObjectType(str(type_)), str(name)),
                state=ItemState(str(state)),
                versions=tuple(str(version) for version in decoded),
                outcome=None if outcome is None else Outcome(str(outcome)),
                reason=None if reason is None else str(reason),
                error=None if error is None else str(error),
                attempts=int(str(attempts)),
            )
        except ValueError as exc:
            raise JournalError(
                f"journal {self.path} is not a kvmigrate journal or is corrupt: {exc}; remove it or pass --restart",
                path=self.path,
            ) from exc

    def close(self) -> None:
        """Close the file and release the writer lock; calling it twice is harmless."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class _WalSync:
    """Group commit: one fsync of the WAL file, in a worker thread, covers every commit made before it began.

    ``flush`` is called right after a commit; it waits for a sync that started after that commit, starting one if
    none is running. Commits made while a sync runs wait for the next one, which then covers all of them.
    """

    def __init__(self, wal: Path) -> None:
        self._wal = wal
        self._committed = 0  # commits that asked to be durable, in order
        self._synced = 0  # every commit up to this one is on disk
        self._running: asyncio.Future[None] | None = None

    async def flush(self) -> None:
        self._committed += 1
        wanted = self._committed
        while self._synced < wanted:
            if self._running is None:
                self._running = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._running)

    async def _sync(self) -> None:
        covered = self._committed
        try:
            await asyncio.to_thread(_fsync, self._wal)
        finally:
            self._running = None
        self._synced = max(self._synced, covered)


def _fsync(path: Path) -> None:
    """fsync ``path`` through a descriptor of our own (SQLite's are not reachable); the kernel syncs the file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # the journal was closed: SQLite checkpointed the WAL into the database, synced it and removed it
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _open_error(path: Path, exc: sqlite3.Error) -> JournalError:
    """Say in one line why SQLite would not open ``path`` and what to do about it."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return JournalError(
            f"journal {path} is in use by another kvmigrate run; wait for it to finish or pass --state with another"
            " path",
            path=path,
        )
    if isinstance(exc, sqlite3.OperationalError) and not name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return JournalError(
            f"cannot open journal {path}: {exc}; check the path, its permissions and free space", path=path
        )
    return JournalError(
        f"journal {path} is not a kvmigrate journal or is corrupt: {exc}; remove it or pass --restart", path=path
    )


def _remove(path: Path) -> None:
    """Delete the journal and its SQLite siblings for ``--restart``."""
    for candidate in (path, *_siblings(path)):
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise JournalError(
                f"cannot remove journal {candidate} for --restart: {exc.strerror}; remove it by hand", path=path
            ) from exc


def _ensure_parent(path: Path) -> None:
    """Create the journal's directory, and any missing ancestor, as 0700; leave existing directories alone."""
    missing: list[Path] = []
    directory = path.parent
    while not directory.is_dir() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
            os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            continue  # created concurrently; not ours to change
        except OSError as exc:
            raise JournalError(
                f"cannot create directory {directory} for journal {path}: {exc.strerror};"
                " check the path and permissions",
                path=path,
            ) from exc


def _create_private(path: Path) -> None:
    """Create the file as 0600 before SQLite opens it, so it is never readable by others, even briefly."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise JournalError(
            f"cannot open journal {path}: {exc.strerror}; check the path and its permissions", path=path
        ) from exc
    os.close(descriptor)
