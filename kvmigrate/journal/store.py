"""Record every object's progress in a SQLite file so an interrupted run can resume where it stopped.

The journal is the source of truth for resume: the engine commits ``restoring`` (durably) before it writes to the
target and ``done`` after, so a crash leaves ``restoring`` rows that the next run settles by looking at the target.
A ``done`` row also keeps the source listing's fingerprint, so a rerun skips exactly the objects that did not change
and that the target still holds.

One journal, one run: a lock file beside the journal (``<journal>.lock``, flock) is held from open to close and
checked before ``--restart`` touches anything, and SQLite's exclusive locking mode keeps any other connection out.

Durability: WAL with ``synchronous=NORMAL`` survives a killed process; a power loss may lose the last commits, which
is harmless for every transition but ``restoring`` (the target write may have happened), so ``mark_restoring``
returns only once its commit is on disk (group commit, ``groupcommit.py``). Value mode's version map commits with
``synchronous=FULL`` at Key Vault's much lower create rate.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from kvmigrate.errors import JournalError
from kvmigrate.files import FileLock, check_writable_path, ensure_private_file, private_dir
from kvmigrate.journal import schema
from kvmigrate.journal.groupcommit import WalSync
from kvmigrate.journal.opening import insert_run, open_error, prepare, remove, siblings
from kvmigrate.models import ItemState, ObjectRef, ObjectType, Outcome

log = logging.getLogger(__name__)

_RECORD_COLUMNS = "type, name, state, route, fingerprint, target_ref, outcome, reason, error, attempts"


@dataclass(frozen=True)
class ItemRecord:
    """One object's row: where it is, which route wrote it, what the source looked like when it finished."""

    ref: ObjectRef
    state: ItemState
    route: str | None
    fingerprint: str | None
    target_ref: str | None  # "type/name" when the target calls the object otherwise (a backup file's presumed name)
    outcome: Outcome | None
    reason: str | None
    error: str | None
    attempts: int


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Journal:
    """The SQLite journal of one run (``copy``/``backup``/``restore``/``sync`` from one source to one target).

    Why sync methods in an async tool: every call is one short local transaction, the engine is the only writer and
    runs in one event-loop thread, and a thread hop per call would cost more than the call. The exception is
    ``mark_restoring``, which awaits the shared fsync that makes its row durable.
    """

    def __init__(self, path: Path | None, connection: sqlite3.Connection, lock: FileLock | None) -> None:
        """Wrap an open connection; use ``Journal.open`` (a file) or ``Journal.in_memory`` (a dry run)."""
        self.path = path
        self.is_resumed = False
        self.created = False  # this run created the file (so ``discard`` may remove it)
        self.wrote_target = False  # some object reached ``restoring``: the journal now matters to a rerun
        self._connection: sqlite3.Connection | None = connection
        self._lock = lock
        self._wal_sync: WalSync | None = None

    @classmethod
    def in_memory(cls, *, source: str, target: str, operation: str) -> Journal:
        """A journal that writes no file: a dry run decides through the same calls and leaves nothing behind."""
        connection = sqlite3.connect(":memory:", isolation_level=None)
        journal = cls(None, connection, None)
        schema.create(connection)
        insert_run(connection, operation=operation, source=source, target=target)
        return journal

    @classmethod
    def open(cls, path: Path, *, source: str, target: str, operation: str, restart: bool = False) -> Journal:
        """Open or create the journal at ``path`` for this run; with ``restart`` start from an empty file.

        Why the run check: resuming with another run's journal would skip objects that were never copied to this
        target. ``source`` and ``target`` are compared exactly, so the caller passes them normalised. The lock is
        taken before ``restart`` removes anything, so a journal in use is never deleted under its run.
        """
        if operation not in schema.OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}: use one of {', '.join(sorted(schema.OPERATIONS))}")
        path = Path(path)
        for candidate in (path, *siblings(path)):
            check_writable_path(candidate, what="journal")
        private_dir(path.parent, what="journal folder")
        lock = FileLock(path.with_name(path.name + ".lock"), what="journal lock")
        lock.acquire(busy=f"journal {path} is in use by another kvmigrate run; wait for it to finish or pass --state")
        try:
            if restart:
                remove(path)
            created = ensure_private_file(path, what="journal")
            for sibling in siblings(path):
                check_writable_path(sibling, what="journal")
            try:
                connection = sqlite3.connect(str(path), isolation_level=None, timeout=0)
            except sqlite3.Error as exc:
                raise open_error(path, exc) from exc
            journal = cls(path, connection, lock)
            journal.created = created
            try:
                journal.is_resumed, journal._wal_sync = prepare(
                    connection, path, operation=operation, source=source, target=target
                )
            except BaseException:
                connection.close()
                if created:
                    remove(path)
                raise
        except BaseException:
            lock.release()
            raise
        log.debug("journal %s opened (%s)", path, "resumed" if journal.is_resumed else "new")
        return journal

    @property
    def _file(self) -> Path:
        return self.path or Path(":memory:")

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise JournalError(f"journal {self.path} is closed (a bug in kvmigrate; please report it)", path=self._file)
        return self._connection

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn SQLite failures during use into JournalError: the run cannot continue without its journal."""
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalError(
                f"cannot use journal {self.path}: {exc}; check free space and permissions, then rerun to resume",
                path=self._file,
            ) from exc

    def _write(self, sql: str, parameters: Sequence[object], *, durable: bool = False) -> None:
        """One write statement as its own transaction (autocommit); with ``durable`` its commit waits for fsync."""
        connection = self._conn
        with self._writing():
            if not durable:
                connection.execute(sql, parameters)
                return
            connection.execute("PRAGMA synchronous=FULL")
            try:
                connection.execute(sql, parameters)
            finally:
                connection.execute("PRAGMA synchronous=NORMAL")

    # -- objects ---------------------------------------------------------------------------------------------------
    def get(self, ref: ObjectRef) -> ItemRecord | None:
        """The row for ``ref``, or ``None`` if no run recorded it."""
        with self._writing():
            row = self._conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM item WHERE type = ? AND name_key = ?", (ref.type.value, ref.key)
            ).fetchone()
        return None if row is None else self._record(row)

    async def mark_restoring(self, ref: ObjectRef, *, route: str) -> None:
        """Record that ``route`` is about to write ``ref``; returns once that commit is on disk.

        The commit is an ordinary WAL append; the wait is the group commit's shared fsync. Without WAL (a file system
        that refuses it) the commit itself runs with ``synchronous=FULL``.
        """
        self.wrote_target = True
        self._upsert(ref, ItemState.RESTORING, route=route, durable=self._wal_sync is None and self.path is not None)
        if self._wal_sync is not None:
            try:
                await self._wal_sync.flush()
            except OSError as exc:
                raise JournalError(
                    f"cannot sync journal {self.path} to disk: {exc.strerror}; check the disk, then rerun to resume",
                    path=self._file,
                ) from exc

    def finish(
        self,
        ref: ObjectRef,
        state: ItemState,
        *,
        outcome: Outcome,
        fingerprint: str | None = None,
        route: str | None = None,
        reason: str | None = None,
        error: str | None = None,
        target_ref: str | None = None,
    ) -> None:
        """Record how ``ref`` ended in this run (``done``, ``skipped`` or ``failed``) and commit."""
        if state is ItemState.RESTORING:
            raise ValueError("use mark_restoring, which waits for the commit to reach the disk")
        self._upsert(
            ref,
            state,
            route=route,
            fingerprint=fingerprint,
            outcome=outcome,
            reason=reason,
            error=error,
            target_ref=target_ref,
        )

    def _upsert(
        self,
        ref: ObjectRef,
        state: ItemState,
        *,
        route: str | None = None,
        fingerprint: str | None = None,
        outcome: Outcome | None = None,
        reason: str | None = None,
        error: str | None = None,
        durable: bool = False,
        target_ref: str | None = None,
    ) -> None:
        now = _now()
        failed = 1 if state is ItemState.FAILED else 0
        self._write(
            "INSERT INTO item (type, name_key, name, state, route, fingerprint, target_ref, outcome, reason, error,"
            " attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (type, name_key) DO UPDATE SET name = excluded.name, state = excluded.state,"
            " route = coalesce(excluded.route, item.route), fingerprint = excluded.fingerprint,"
            " target_ref = excluded.target_ref,"
            " outcome = excluded.outcome, reason = excluded.reason, error = excluded.error,"
            " attempts = item.attempts + excluded.attempts, updated_at = excluded.updated_at",
            (
                ref.type.value,
                ref.key,
                ref.name,
                state.value,
                route,
                fingerprint,
                target_ref,
                None if outcome is None else outcome.value,
                reason,
                error,
                failed,
                now,
                now,
            ),
            durable=durable,
        )

    def map_version(self, ref: ObjectRef, source_version: str, target_version: str) -> None:
        """Record (durably) that ``source_version`` of ``ref`` now exists in the target as ``target_version``."""
        self._write(
            "INSERT OR REPLACE INTO version_map (type, name_key, source_version, target_version) VALUES (?, ?, ?, ?)",
            (ref.type.value, ref.key, source_version, target_version),
            durable=self.path is not None,
        )

    def version_map(self, ref: ObjectRef) -> dict[str, str]:
        """Source version id → target version id for everything value mode recorded of ``ref``."""
        with self._writing():
            rows = self._conn.execute(
                "SELECT source_version, target_version FROM version_map WHERE type = ? AND name_key = ?",
                (ref.type.value, ref.key),
            ).fetchall()
        return {str(source): str(target) for source, target in rows}

    def forget_versions(self, ref: ObjectRef) -> None:
        """Drop ``ref``'s version map (its target object was purged, or replaced)."""
        self._write("DELETE FROM version_map WHERE type = ? AND name_key = ?", (ref.type.value, ref.key))

    # -- vault settings (rotation policies, contacts, issuers) ----------------------------------------------------
    def setting(self, kind: str, name: str) -> tuple[str, str | None] | None:
        """``(state, fingerprint)`` of a setting an earlier run recorded, or None."""
        with self._writing():
            row = self._conn.execute(
                "SELECT state, fingerprint FROM setting WHERE kind = ? AND name_key = ?", (kind, name.lower())
            ).fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))

    def finish_setting(self, kind: str, name: str, state: str, *, fingerprint: str | None, outcome: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO setting (kind, name_key, state, fingerprint, outcome, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (kind, name.lower(), state, fingerprint, outcome, _now()),
        )

    def counts(self) -> dict[str, int]:
        """How many rows are in each state, every state present (zero when none)."""
        result = {state.value: 0 for state in ItemState}
        with self._writing():
            for state, count in self._conn.execute("SELECT state, count(*) FROM item GROUP BY state"):
                result[str(state)] = int(count)
        return result

    def _record(self, row: Sequence[object]) -> ItemRecord:
        type_, name, state, route, fingerprint, target_ref, outcome, reason, error, attempts = row
        try:
            return ItemRecord(
                ref=ObjectRef(ObjectType(str(type_)), str(name)),
                state=ItemState(str(state)),
                route=None if route is None else str(route),
                fingerprint=None if fingerprint is None else str(fingerprint),
                target_ref=None if target_ref is None else str(target_ref),
                outcome=None if outcome is None else Outcome(str(outcome)),
                reason=None if reason is None else str(reason),
                error=None if error is None else str(error),
                attempts=int(str(attempts)),
            )
        except ValueError as exc:
            raise JournalError(
                f"journal {self.path} is not a kvmigrate journal or is corrupt: {exc}; remove it or pass --restart",
                path=self._file,
            ) from exc

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def discard(self) -> None:
        """Close and delete a journal this run created and that holds nothing a rerun needs (no target write).

        Why: a run that failed before writing anything (a missing permission, an unreachable vault) leaves nothing
        behind, as a run that cannot start writes nothing.
        """
        if self.path is None or not self.created or self.wrote_target:
            self.close()
            return
        path = self.path
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        try:
            remove(path)
        finally:
            self._release()

    def close(self) -> None:
        """Close the file and release the locks; calling it twice is harmless."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
