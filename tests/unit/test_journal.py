"""The SQLite journal: run identity, schema version, state machine, file permissions, resume queries."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmigrate import journal as journal_module
from kvmigrate.journal import SCHEMA_VERSION, ItemRecord, Journal, JournalError
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


def walk(journal: Journal, ref: ObjectRef, *states: ItemState) -> None:
    for state in states:
        journal.mark(ref, state)


# run identity and resume


def test_new_journal_is_not_resumed(journal: Journal, path: Path) -> None:
    assert journal.path == path
    assert journal.is_resumed is False
    assert journal.counts() == {state.value: 0 for state in ItemState}


def test_reopen_keeps_rows_and_is_resumed(path: Path) -> None:
    with open_journal(path) as journal:
        journal.record_pending(secret("a"), ["v1", "v2"])
        journal.record_pending(secret("b"), ["v1"])
        walk(journal, secret("a"), S.RESTORING, S.DONE)  # a fresh object: pending straight to restoring
    with open_journal(path) as journal:
        assert journal.is_resumed is True
        record = journal.get(secret("a"))
        assert record == ItemRecord(
            ref=secret("a"), state=S.DONE, versions=("v1", "v2"), outcome=None, reason=None, error=None, attempts=0
        )
        assert journal.counts()["pending"] == 1


def test_reopen_empty_journal_is_not_resumed(path: Path) -> None:
    open_journal(path).close()
    with open_journal(path) as journal:
        assert journal.is_resumed is False


@pytest.mark.parametrize(
    "other",
    [
        {"target": "https://other.vault.azure.net"},
        {"source": "https://other.vault.azure.net"},
        {"operation": "backup"},
    ],
)
def test_another_run_is_refused(path: Path, other: dict[str, str]) -> None:
    open_journal(path).close()
    with pytest.raises(JournalError) as caught:
        open_journal(path, **other)  # type: ignore[arg-type]
    message = str(caught.value)
    assert str(path) in message
    assert f"copy {SOURCE} → {TARGET}" in message
    assert "--restart" in message
    assert "\n" not in message
    assert caught.value.path == path


def test_restart_clears(path: Path) -> None:
    with open_journal(path) as journal:
        journal.record_pending(secret("a"), ["v1"])
    with open_journal(path, target="https://other.vault.azure.net", restart=True) as journal:
        assert journal.is_resumed is False
        assert journal.get(secret("a")) is None


def test_restart_without_a_file_is_fine(path: Path) -> None:
    with open_journal(path, restart=True) as journal:
        assert journal.is_resumed is False


def test_unknown_operation_is_a_value_error(path: Path) -> None:
    with pytest.raises(ValueError):
        open_journal(path, operation="move")


def test_second_writer_is_refused(journal: Journal, path: Path) -> None:
    with pytest.raises(JournalError, match="in use"):
        open_journal(path)


# files that are not ours


@pytest.mark.parametrize("size", [8, 4096])
def test_corrupt_file_is_a_journal_error(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x8f garbage, not sqlite \x00" * (size // 8 + 1))
    with pytest.raises(JournalError, match="not a kvmigrate journal or is corrupt") as caught:
        open_journal(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert "--restart" in str(caught.value)


def test_corrupt_file_can_be_restarted(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    with open_journal(path, restart=True) as journal:
        assert journal.is_resumed is False


def test_unknown_user_version_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(JournalError, match=f"schema version {SCHEMA_VERSION + 1}"):
        open_journal(path)


def test_foreign_sqlite_database_is_refused_and_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match="not a kvmigrate journal"):
        open_journal(path)
    assert path.read_bytes() == before


# the state machine


def test_happy_path_and_outcome(journal: Journal) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    journal.mark(ref, S.BACKED_UP)
    journal.mark(ref, S.RESTORING)
    assert [record.ref for record in journal.in_flight()] == [ref]
    journal.mark(ref, S.DONE, outcome=Outcome.COPIED)
    record = journal.get(ref)
    assert record is not None
    assert (record.state, record.outcome) == (S.DONE, Outcome.COPIED)
    assert journal.in_flight() == []


@pytest.mark.parametrize(
    ("path_to", "illegal"),
    [
        ((S.BACKED_UP,), S.PENDING),
        ((S.BACKED_UP, S.RESTORING), S.RESTORING),
        ((S.BACKED_UP, S.RESTORING, S.DONE), S.PENDING),
        ((S.BACKED_UP, S.RESTORING, S.DONE), S.FAILED),
        ((S.SKIPPED,), S.PENDING),
        ((S.SKIPPED,), S.DONE),
    ],
)
def test_illegal_transition_raises(journal: Journal, path_to: tuple[ItemState, ...], illegal: ItemState) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    walk(journal, ref, *path_to)
    before = journal.get(ref)
    with pytest.raises(JournalError) as caught:
        journal.mark(ref, illegal)
    message = str(caught.value)
    assert "secret a" in message
    assert illegal.value in message
    assert before is not None and before.state.value in message
    assert caught.value.ref == ref
    assert journal.get(ref) == before  # rolled back, nothing changed


def test_mark_unknown_ref_raises(journal: Journal) -> None:
    with pytest.raises(JournalError, match="never recorded"):
        journal.mark(secret("ghost"), S.DONE)


@pytest.mark.parametrize("start", [(), (S.BACKED_UP,), (S.BACKED_UP, S.RESTORING)])
@pytest.mark.parametrize("end", [S.SKIPPED, S.FAILED, S.DONE])
def test_any_non_final_state_can_end(journal: Journal, start: tuple[ItemState, ...], end: ItemState) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    walk(journal, ref, *start, end)
    record = journal.get(ref)
    assert record is not None and record.state is end


@pytest.mark.parametrize("back_to", [S.PENDING, S.BACKED_UP])
def test_in_flight_row_not_at_target_can_be_redone(journal: Journal, back_to: ItemState) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    walk(journal, ref, S.BACKED_UP, S.RESTORING, back_to)
    record = journal.get(ref)
    assert record is not None and record.state is back_to


@pytest.mark.parametrize("state", [S.PENDING, S.BACKED_UP])
def test_resumed_row_can_be_re_marked(journal: Journal, state: ItemState) -> None:
    """A crash after backup loses the blob, so the resumed run backs the object up again."""
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    walk(journal, ref, *([state] if state is S.BACKED_UP else []), state, state)
    record = journal.get(ref)
    assert record is not None and record.state is state


def test_failed_counts_attempts_and_can_be_retried(journal: Journal) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    walk(journal, ref, S.BACKED_UP, S.RESTORING)
    journal.mark(ref, S.FAILED, outcome=Outcome.FAILED, error="HTTP 503 after 8 attempts")
    record = journal.get(ref)
    assert record is not None
    assert (record.state, record.attempts, record.error, record.outcome) == (
        S.FAILED,
        1,
        "HTTP 503 after 8 attempts",
        Outcome.FAILED,
    )
    for retry_from in (S.PENDING, S.BACKED_UP, S.RESTORING):
        journal.mark(ref, retry_from)
        journal.mark(ref, S.FAILED, error="again")
    record = journal.get(ref)
    assert record is not None and record.attempts == 4
    journal.mark(ref, S.PENDING)
    walk(journal, ref, S.BACKED_UP, S.RESTORING)
    journal.mark(ref, S.DONE, outcome=Outcome.COPIED)
    record = journal.get(ref)
    assert record is not None
    assert (record.state, record.attempts, record.error) == (S.DONE, 4, None)


def test_failed_survives_reopen_and_is_listed(path: Path) -> None:
    with open_journal(path) as journal:
        journal.record_pending(secret("a"), ["v1"])
        journal.mark(secret("a"), S.FAILED, error="boom")
    with open_journal(path) as journal:
        failed = list(journal.items(S.FAILED))
        assert [record.ref for record in failed] == [secret("a")]
        journal.mark(secret("a"), S.PENDING)


# durability of ``restoring``: group commit


def count_fsyncs(monkeypatch: pytest.MonkeyPatch, *, delay: float = 0.0) -> list[tuple[str, float, float]]:
    """Record each fsync the journal makes (file, start, end); ``delay`` keeps it running that long."""
    calls: list[tuple[str, float, float]] = []
    real = journal_module._fsync

    def recording(target: Path) -> None:
        start = time.monotonic()
        time.sleep(delay)
        real(target)
        calls.append((Path(target).name, start, time.monotonic()))

    monkeypatch.setattr(journal_module, "_fsync", recording)
    return calls


async def test_concurrent_restoring_commits_share_one_fsync_of_the_wal(
    journal: Journal, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_fsyncs(monkeypatch)
    refs = [secret(f"s{index}") for index in range(20)]
    for ref in refs:
        journal.record_pending(ref, ())
    await asyncio.gather(*(journal.mark_restoring(ref) for ref in refs))
    assert [name for name, _, _ in calls] == [path.name + "-wal"]  # 20 commits, one fsync after all of them
    assert journal.counts()["restoring"] == 20


async def test_a_commit_made_during_a_sync_waits_for_the_next_one(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_fsyncs(monkeypatch, delay=0.2)
    first, second = secret("first"), secret("second")
    for ref in (first, second):
        journal.record_pending(ref, ())
    earlier = asyncio.ensure_future(journal.mark_restoring(first))
    await asyncio.sleep(0.05)  # the first sync is now running in its thread
    committed_at = time.monotonic()
    await journal.mark_restoring(second)
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

    monkeypatch.setattr(journal_module, "_fsync", full_disk)
    ref = secret("a")
    journal.record_pending(ref, ())
    with pytest.raises(
        JournalError, match=f"cannot sync journal {path} to disk: No space left on device; check the disk"
    ):
        await journal.mark_restoring(ref)


async def test_restoring_is_journaled_before_it_returns_even_without_wal(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "_wal_sync", None)  # as on a file system that refuses WAL
    calls = count_fsyncs(monkeypatch)
    ref = secret("a")
    journal.record_pending(ref, ())
    await journal.mark_restoring(ref)
    assert calls == []  # synchronous=FULL made that commit durable by itself
    record = journal.get(ref)
    assert record is not None and record.state is S.RESTORING


def test_record_pending_updates_versions_but_keeps_state(journal: Journal) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    walk(journal, ref, S.BACKED_UP, S.RESTORING)
    journal.record_pending(ref, ["v1", "v2"])
    record = journal.get(ref)
    assert record is not None
    assert (record.state, record.versions) == (S.RESTORING, ("v1", "v2"))


@pytest.mark.parametrize("final", [S.DONE, S.SKIPPED])
def test_record_pending_never_downgrades_a_final_row(journal: Journal, final: ItemState) -> None:
    ref = secret("a")
    journal.record_pending(ref, ["v1"])
    journal.mark(ref, final, reason="exists")
    journal.record_pending(ref, ["v1", "v2"])
    record = journal.get(ref)
    assert record is not None
    assert (record.state, record.versions, record.reason) == (final, ("v1",), "exists")


def test_record_pending_rejects_a_bare_string(journal: Journal) -> None:
    with pytest.raises(TypeError):
        journal.record_pending(secret("a"), "v1")


def test_names_are_case_insensitive_per_type(journal: Journal) -> None:
    journal.record_pending(ObjectRef(ObjectType.SECRET, "Db-Password"), ["v1"])
    journal.record_pending(ObjectRef(ObjectType.KEY, "db-password"), ["k1"])
    record = journal.get(ObjectRef(ObjectType.SECRET, "DB-PASSWORD"))
    assert record is not None and record.ref.name == "Db-Password"
    assert journal.counts()["pending"] == 2


def test_items_filters_orders_and_tolerates_marks(journal: Journal) -> None:
    for index in range(2500):  # more than one page
        journal.record_pending(secret(f"s{index:05d}"), ["v1"])
    journal.record_pending(ObjectRef(ObjectType.KEY, "k"), ["v1"])
    seen = 0
    for record in journal.items(S.PENDING):
        if record.ref.type is ObjectType.SECRET:
            journal.mark(record.ref, S.SKIPPED, reason="exists")
        seen += 1
    assert seen == 2501
    assert journal.counts() == {**{state.value: 0 for state in ItemState}, "pending": 1, "skipped": 2500}
    assert [record.ref.name for record in journal.items()][:2] == ["k", "s00000"]


def test_closed_journal_raises(path: Path) -> None:
    journal = open_journal(path)
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.get(secret("a"))


# privacy


def test_file_and_directory_modes(path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with open_journal(path) as journal:
            journal.record_pending(secret("a"), ["v1"])
            wal = path.with_name(path.name + "-wal")
            assert mode(path) == 0o600
            assert mode(path.parent) == 0o700
            if wal.exists():
                assert mode(wal) == 0o600
            shm = path.with_name(path.name + "-shm")
            if shm.exists():
                assert mode(shm) == 0o600
    finally:
        os.umask(old_umask)


def test_missing_ancestors_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o002)
    try:
        path = tmp_path / "a" / "b" / "run.db"
        open_journal(path).close()
    finally:
        os.umask(old_umask)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700


def test_parent_that_is_a_file_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("")
    with pytest.raises(JournalError, match="cannot open journal"):
        open_journal(tmp_path / "a" / "run.db")


def test_existing_loose_file_is_tightened(path: Path) -> None:
    open_journal(path).close()
    os.chmod(path, 0o644)
    with open_journal(path):
        assert mode(path) == 0o600


def test_existing_parent_directory_is_left_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    with open_journal(tmp_path / "run.db"):
        assert mode(tmp_path) == 0o755


def test_schema_has_no_place_for_values(path: Path) -> None:
    open_journal(path).close()
    connection = sqlite3.connect(path)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        columns = {
            table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")] for table in sorted(tables)
        }
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        connection.close()
    assert columns == {
        "item": [
            "type",
            "name_key",
            "name",
            "state",
            "versions",
            "outcome",
            "reason",
            "error",
            "attempts",
            "created_at",
            "updated_at",
        ],
        "run": ["id", "operation", "source", "target", "created_at", "tool_version"],
        "version_map": ["type", "name_key", "source_version", "target_version"],
    }


def test_version_map_survives_reopen(path: Path) -> None:
    ref = secret("mapped")
    with open_journal(path) as journal:
        journal.record_pending(ref, [])
        journal.map_version(ref, "a" * 32, "b" * 32)
        journal.map_version(ref, "c" * 32, "d" * 32)
    with open_journal(path) as journal:
        assert journal.version_map(ref) == {"a" * 32: "b" * 32, "c" * 32: "d" * 32}
        assert journal.version_map(secret("other")) == {}


def test_ten_thousand_rows(journal: Journal) -> None:
    refs = [secret(f"secret-{index:05d}") for index in range(10_000)]
    for ref in refs:
        journal.record_pending(ref, ["0123456789abcdef0123456789abcdef"])
    for ref in refs:
        journal.mark(ref, S.BACKED_UP)
        journal.mark(ref, S.RESTORING)
        journal.mark(ref, S.DONE, outcome=Outcome.COPIED)
    assert journal.counts()["done"] == 10_000
