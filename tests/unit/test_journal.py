"""The SQLite journal: run identity, locks, schema version and upgrade, rows, durability, file safety."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from kvmigrate.errors import JournalError, RunLockedError, UnsafePathError
from kvmigrate.journal import SCHEMA_VERSION, Journal
from kvmigrate.journal import groupcommit as groupcommit_module
from kvmigrate.models import ItemState, ObjectRef, ObjectType, Outcome

SOURCE = "https://src.vault.azure.net"
TARGET = "https://dst.vault.azure.net"
S = ItemState


def open_journal(
    path: Path, *, source: str = SOURCE, target: str = TARGET, operation: str = "copy", restart: bool = False
) -> Journal:
    return Journal.open(path, source=source, target=target, operation=operation, restart=restart)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "run.db"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with open_journal(path) as opened:
        yield opened


def secret(name: str) -> ObjectRef:
    return ObjectRef(ObjectType.SECRET, name)


def done(journal: Journal, ref: ObjectRef, fingerprint: str = "fp") -> None:
    journal.finish(ref, S.DONE, outcome=Outcome.COPIED, fingerprint=fingerprint, route="blob")


# -- run identity, resume, restart ---------------------------------------------------------------------------------
def test_new_journal_is_not_resumed_and_created(journal: Journal, path: Path) -> None:
    assert journal.path == path and journal.is_resumed is False and journal.created is True


def test_reopen_keeps_rows_and_is_resumed(path: Path) -> None:
    with open_journal(path) as journal:
        done(journal, secret("a"), "fp-a")
    with open_journal(path) as journal:
        assert journal.is_resumed and not journal.created
        record = journal.get(secret("A"))  # names are case-insensitive
        assert record is not None and record.state is S.DONE and record.fingerprint == "fp-a"
        assert record.route == "blob" and record.outcome is Outcome.COPIED


@pytest.mark.parametrize(
    "other",
    [
        {"source": "https://other.vault.azure.net"},
        {"target": "https://other.vault.azure.net"},
        {"operation": "backup"},
    ],
)
def test_another_runs_journal_is_refused(path: Path, other: dict[str, str]) -> None:
    open_journal(path).close()
    with pytest.raises(JournalError, match="belongs to copy") as error:
        open_journal(path, **other)  # type: ignore[arg-type]
    assert error.value.exit_code == 2 and "--restart" in str(error.value)


def test_restart_clears_rows(path: Path) -> None:
    with open_journal(path) as journal:
        done(journal, secret("a"))
    with open_journal(path, restart=True) as journal:
        assert journal.get(secret("a")) is None and not journal.is_resumed


def test_unknown_operation_is_a_value_error(path: Path) -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        open_journal(path, operation="move")


# -- one journal, one run -------------------------------------------------------------------------------------------
def test_a_second_run_on_the_journal_is_refused(journal: Journal, path: Path) -> None:
    with pytest.raises(RunLockedError, match="in use by another kvmigrate run") as error:
        open_journal(path)
    assert error.value.exit_code == 2


def test_restart_never_deletes_a_journal_in_use(journal: Journal, path: Path) -> None:
    done(journal, secret("kept"))
    with pytest.raises(RunLockedError):
        open_journal(path, restart=True)
    record = journal.get(secret("kept"))  # the running run's rows are untouched
    assert record is not None and record.state is S.DONE and path.exists()


def test_the_lock_is_released_on_close(path: Path) -> None:
    open_journal(path).close()
    open_journal(path, restart=True).close()


# -- corrupt and foreign files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [10, 5000])
def test_corrupt_file_is_a_journal_error(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * size)
    with pytest.raises(JournalError, match="corrupt"):
        open_journal(path)
    assert path.read_bytes() == b"x" * size


def test_corrupt_file_can_be_restarted(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 100)
    with open_journal(path, restart=True) as journal:
        assert not journal.is_resumed


def test_unknown_user_version_is_refused(path: Path) -> None:
    open_journal(path).close()
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA user_version=99")
    with pytest.raises(JournalError, match="schema version 99"):
        open_journal(path)


def test_foreign_sqlite_database_is_refused_and_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE mine (x)")
    before = path.read_bytes()
    with pytest.raises(JournalError, match="another SQLite database"):
        open_journal(path)
    assert path.read_bytes() == before


def test_a_version_2_journal_is_upgraded(path: Path) -> None:
    """kvmigrate 0.1's journal: finished rows keep their state (without a fingerprint), pending rows go."""
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE run (id INTEGER PRIMARY KEY, operation TEXT, source TEXT, target TEXT, created_at TEXT,
                              tool_version TEXT);
            CREATE TABLE item (type TEXT, name_key TEXT, name TEXT, state TEXT, versions TEXT, outcome TEXT,
                               reason TEXT, error TEXT, attempts INTEGER, created_at TEXT, updated_at TEXT,
                               PRIMARY KEY (type, name_key)) WITHOUT ROWID;
            CREATE INDEX item_by_state ON item (state, type, name_key);
            CREATE TABLE version_map (type TEXT, name_key TEXT, source_version TEXT, target_version TEXT,
                                      PRIMARY KEY (type, name_key, source_version)) WITHOUT ROWID;
            """
        )
        db.execute("INSERT INTO run VALUES (1, 'copy', ?, ?, 'then', '0.1.0')", (SOURCE, TARGET))
        rows = [("a", "done", "copied"), ("b", "pending", None), ("c", "restoring", None)]
        for name, state, outcome in rows:
            db.execute(
                "INSERT INTO item VALUES ('secret', ?, ?, ?, '[]', ?, NULL, NULL, 0, 't', 't')",
                (name, name, state, outcome),
            )
        db.execute("INSERT INTO version_map VALUES ('secret', 'c', 'x', 'y')")
        db.execute("PRAGMA user_version=2")
    with open_journal(path) as journal:
        a, b, c = (journal.get(secret(name)) for name in "abc")
        assert a is not None and a.state is S.DONE and a.fingerprint is None  # re-decided once, never trusted
        assert b is None
        assert c is not None and c.state is S.RESTORING and c.route == "value"
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- rows -------------------------------------------------------------------------------------------------------------
async def test_rows_move_through_a_run_and_count_attempts(journal: Journal) -> None:
    ref = secret("a")
    journal.finish(ref, S.FAILED, outcome=Outcome.FAILED, error="boom")
    journal.finish(ref, S.FAILED, outcome=Outcome.FAILED, error="boom again")
    await journal.mark_restoring(ref, route="value")
    journal.finish(ref, S.DONE, outcome=Outcome.COPIED, fingerprint="f")
    record = journal.get(ref)
    assert record is not None and record.state is S.DONE and record.attempts == 2
    assert record.route == "value" and record.error is None  # the route the write used is kept
    assert journal.counts() == {"restoring": 0, "done": 1, "skipped": 0, "failed": 0}
    with pytest.raises(ValueError, match="mark_restoring"):
        journal.finish(ref, S.RESTORING, outcome=Outcome.COPIED)


def test_version_map_survives_reopen_and_can_be_forgotten(path: Path) -> None:
    ref = secret("mapped")
    with open_journal(path) as journal:
        journal.map_version(ref, "a" * 32, "b" * 32)
        journal.map_version(ref, "c" * 32, "d" * 32)
    with open_journal(path) as journal:
        assert journal.version_map(ref) == {"a" * 32: "b" * 32, "c" * 32: "d" * 32}
        assert journal.version_map(secret("other")) == {}
        journal.forget_versions(ref)
        assert journal.version_map(ref) == {}


def test_settings_are_recorded(journal: Journal) -> None:
    assert journal.setting("contacts", "vault") is None
    journal.finish_setting("contacts", "vault", "done", fingerprint="f1", outcome="copied")
    assert journal.setting("Contacts".lower(), "VAULT") == ("done", "f1")


def test_in_memory_journal_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Journal.in_memory(source=SOURCE, target=TARGET, operation="copy") as journal:
        done(journal, secret("a"))
        assert journal.get(secret("a")) is not None and journal.path is None
    assert list(tmp_path.iterdir()) == []


def test_discard_removes_only_a_journal_this_run_created_and_never_wrote_through(path: Path) -> None:
    journal = open_journal(path)
    journal.finish(secret("a"), S.FAILED, outcome=Outcome.FAILED, error="denied")
    journal.discard()
    assert not path.exists()
    journal = open_journal(path)
    asyncio.run(journal.mark_restoring(secret("a"), route="blob"))
    journal.discard()  # a target write happened: the journal is what a rerun needs
    assert path.exists()
    journal = open_journal(path)
    journal.discard()  # not created by this run
    assert path.exists()


def test_closed_journal_raises(path: Path) -> None:
    journal = open_journal(path)
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.get(secret("a"))


def test_ten_thousand_rows(journal: Journal) -> None:
    for index in range(10_000):
        done(journal, secret(f"secret-{index:05d}"))
    assert journal.counts()["done"] == 10_000


# -- durability of ``restoring``: group commit ----------------------------------------------------------------------
def count_fsyncs(monkeypatch: pytest.MonkeyPatch, *, delay: float = 0.0) -> list[tuple[str, float, float]]:
    """Record each fsync the journal makes (file, start, end); ``delay`` keeps it running that long."""
    calls: list[tuple[str, float, float]] = []
    real = groupcommit_module.fsync

    def recording(target: Path) -> None:
        start = time.monotonic()
        time.sleep(delay)
        real(target)
        calls.append((Path(target).name, start, time.monotonic()))

    monkeypatch.setattr(groupcommit_module, "fsync", recording)
    return calls


async def test_concurrent_restoring_commits_share_one_fsync_of_the_wal(
    journal: Journal, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_fsyncs(monkeypatch)
    refs = [secret(f"s{index}") for index in range(20)]
    await asyncio.gather(*(journal.mark_restoring(ref, route="blob") for ref in refs))
    assert [name for name, _, _ in calls] == [path.name + "-wal"]  # 20 commits, one fsync after all of them
    assert journal.counts()["restoring"] == 20


async def test_a_commit_made_during_a_sync_waits_for_the_next_one(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_fsyncs(monkeypatch, delay=0.2)
    earlier = asyncio.ensure_future(journal.mark_restoring(secret("first"), route="blob"))
    await asyncio.sleep(0.05)  # the first sync is now running in its thread
    committed_at = time.monotonic()
    await journal.mark_restoring(secret("second"), route="blob")
    returned_at = time.monotonic()
    await earlier
    assert len(calls) == 2
    (_, _, first_end), (_, second_start, second_end) = calls
    assert second_start >= first_end and second_start >= committed_at  # a sync begun after the commit covers it
    assert returned_at >= second_end


async def test_a_failed_sync_is_a_journal_error_naming_the_file(
    journal: Journal, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(groupcommit_module, "fsync", full_disk)
    with pytest.raises(JournalError, match=f"cannot sync journal {path} to disk: No space left on device"):
        await journal.mark_restoring(secret("a"), route="blob")


async def test_restoring_is_journaled_before_it_returns_even_without_wal(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "_wal_sync", None)  # as on a file system that refuses WAL
    calls = count_fsyncs(monkeypatch)
    await journal.mark_restoring(secret("a"), route="blob")
    assert calls == []  # synchronous=FULL made that commit durable by itself
    record = journal.get(secret("a"))
    assert record is not None and record.state is S.RESTORING


# -- privacy and file safety -----------------------------------------------------------------------------------------
def test_file_and_folder_modes_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o000)
    try:
        path = tmp_path / "a" / "b" / "run.db"
        with open_journal(path) as journal:
            done(journal, secret("a"))
            for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + ".lock")):
                if candidate.exists():
                    assert mode(candidate) == 0o600, candidate
    finally:
        os.umask(old_umask)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700


def test_existing_loose_file_is_tightened(path: Path) -> None:
    open_journal(path).close()
    os.chmod(path, 0o644)
    with open_journal(path):
        assert mode(path) == 0o600


def test_existing_parent_folder_is_left_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    with open_journal(tmp_path / "run.db"):
        assert mode(tmp_path) == 0o755


@pytest.mark.parametrize("which", ["", "-wal", ".lock"])
def test_a_planted_link_is_refused_and_its_target_untouched(tmp_path: Path, which: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    path = tmp_path / "run.db"
    (tmp_path / f"run.db{which}").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_journal(path)
    assert victim.read_bytes() == b"precious\n" and mode(victim) == stat.S_IMODE(victim.stat().st_mode)


def test_a_dangling_link_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "run.db").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafePathError):
        open_journal(tmp_path / "run.db")
    assert not (tmp_path / "nowhere").exists()


def test_a_device_is_refused_and_never_chmod_ed() -> None:
    with pytest.raises(UnsafePathError, match="not a regular file"):
        open_journal(Path("/dev/null"))
    assert mode(Path("/dev/null")) == 0o666


def test_schema_has_no_place_for_values(path: Path) -> None:
    open_journal(path).close()
    connection = sqlite3.connect(path)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        columns = {
            table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")] for table in sorted(tables)
        }
    finally:
        connection.close()
    assert columns == {
        "item": [
            "type",
            "name_key",
            "name",
            "state",
            "route",
            "fingerprint",
            "target_ref",
            "outcome",
            "reason",
            "error",
            "attempts",
            "created_at",
            "updated_at",
        ],
        "run": ["id", "operation", "source", "target", "created_at", "tool_version"],
        "setting": ["kind", "name_key", "state", "fingerprint", "outcome", "reason", "updated_at"],
        "version_map": ["type", "name_key", "source_version", "target_version"],
    }
