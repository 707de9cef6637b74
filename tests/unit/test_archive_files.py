"""Archive and backup-folder files that cannot be read: the object fails or the file is skipped, never the whole run.

Only what the archive as a whole depends on (its manifest, its log, its folders) refuses the archive. A socket stands
in for an unreadable file where the test runs as root: open(2) refuses a socket (ENXIO) for every user.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kvmigrate.archive import Archive, ArchiveWriter
from kvmigrate.archive.folder import SECRET_TAG, BackupFolder
from kvmigrate.errors import ArchiveBlobError, ArchiveError
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.routes.base import Blob

SOURCE = "https://src.vault.azure.net"
S = ObjectType.SECRET
NAMES = ("alpha", "bravo", "charlie")
not_as_root = pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a chmod 000 file (tests/e2e/test_local_files.py drops that)"
)


async def write_archive(root: Path, *, finish: bool = True) -> None:
    writer = ArchiveWriter(root, source=SOURCE)
    await writer.prepare()
    for name in NAMES:
        await writer.restore(ObjectRef(S, name), Blob(f"blob of {name} ".encode() * 20, ("0" * 32,), True))
    if finish:
        writer.finish(complete=True)


def socket_instead_of(path: Path) -> None:
    path.unlink()
    os.mknod(path, stat.S_IFSOCK | 0o600)


async def test_a_blob_that_cannot_be_opened_fails_its_object_and_the_others_are_read(tmp_path: Path) -> None:
    await write_archive(tmp_path / "archive")
    archive = Archive.load(tmp_path / "archive")
    socket_instead_of(tmp_path / "archive" / "secrets" / "bravo.blob")  # after the load checked it
    with pytest.raises(ArchiveBlobError, match="secret bravo: cannot read blob file .*No such device or address"):
        archive.read_blob(archive.entries[(S, "bravo")])
    assert archive.read_blob(archive.entries[(S, "alpha")]) == b"blob of alpha " * 20
    bad = archive.verify_blobs()
    assert len(bad) == 1 and bad[0].startswith("secret bravo: cannot read blob file")


@not_as_root
async def test_an_unreadable_blob_fails_its_object(tmp_path: Path) -> None:
    await write_archive(tmp_path / "archive")
    os.chmod(tmp_path / "archive" / "secrets" / "bravo.blob", 0)
    archive = Archive.load(tmp_path / "archive")
    assert [line.split(":")[0] for line in archive.verify_blobs()] == ["secret bravo"]


@pytest.mark.parametrize("case", ["socket", "folder"])
async def test_an_archive_log_that_is_there_but_cannot_be_read_refuses_the_archive(tmp_path: Path, case: str) -> None:
    await write_archive(tmp_path / "archive", finish=False)  # interrupted: its log holds what the manifest lacks
    log = tmp_path / "archive" / "entries.jsonl"
    if case == "socket":
        socket_instead_of(log)
    else:
        log.unlink()
        log.mkdir()
    with pytest.raises(ArchiveError, match="archive log"):
        Archive.load(tmp_path / "archive")


async def test_an_archive_without_its_log_loads_as_incomplete(tmp_path: Path) -> None:
    await write_archive(tmp_path / "archive", finish=False)
    (tmp_path / "archive" / "entries.jsonl").unlink()
    archive = Archive.load(tmp_path / "archive")
    assert archive.complete is False and archive.entries == {}  # the manifest written at the start lists none yet


async def test_a_blob_folder_that_is_a_file_refuses_the_archive(tmp_path: Path) -> None:
    await write_archive(tmp_path / "archive")
    secrets = tmp_path / "archive" / "secrets"
    for blob in secrets.iterdir():
        blob.unlink()
    secrets.rmdir()
    secrets.write_bytes(b"")
    with pytest.raises(ArchiveError, match="cannot look at the blob of secret alpha .*Not a directory"):
        Archive.load(tmp_path / "archive")


def backup_folder(root: Path) -> Path:
    root.mkdir()
    for name in NAMES:
        (root / f"{name}.secret").write_bytes(bytes([len(SECRET_TAG)]) + SECRET_TAG + name.encode() * 10)
    return root


def test_a_backup_file_that_cannot_be_opened_fails_its_object_and_the_others_are_read(tmp_path: Path) -> None:
    folder = BackupFolder.load(backup_folder(tmp_path / "az"))
    socket_instead_of(tmp_path / "az" / "bravo.secret")
    with pytest.raises(ArchiveBlobError, match="secret bravo: cannot read backup file .*No such device or address"):
        folder.read(ObjectRef(S, "bravo"))
    assert folder.read(ObjectRef(S, "alpha")).endswith(b"alpha" * 10)
    (tmp_path / "az" / "charlie.secret").unlink()
    with pytest.raises(ArchiveBlobError, match="secret charlie: backup file .* was removed since it was listed"):
        folder.read(ObjectRef(S, "charlie"))


@not_as_root
def test_an_unreadable_backup_file_is_skipped_and_the_others_listed(tmp_path: Path) -> None:
    os.chmod(backup_folder(tmp_path / "az") / "bravo.secret", 0)
    folder = BackupFolder.load(tmp_path / "az")
    assert sorted(key[1] for key in folder.files) == ["alpha", "charlie"]
    assert len(folder.skipped) == 1 and "bravo.secret" in folder.skipped[0] and "Permission denied" in folder.skipped[0]


async def test_files_others_can_read_are_warned_about_folder_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await write_archive(tmp_path / "archive")
    Archive.load(tmp_path / "archive")
    assert "readable by other users" not in caplog.text
    os.chmod(tmp_path / "archive" / "secrets" / "bravo.blob", 0o640)
    Archive.load(tmp_path / "archive")
    assert (
        f"has 1 file(s) readable by other users (e.g. {tmp_path / 'archive' / 'secrets' / 'bravo.blob'})" in caplog.text
    )
    caplog.clear()
    os.chmod(tmp_path / "archive", 0o755)
    os.chmod(tmp_path / "archive" / "manifest.json", 0o604)
    Archive.load(tmp_path / "archive")
    assert f"has 3 file(s) readable by other users (e.g. {tmp_path / 'archive'})" in caplog.text


async def test_a_missing_blob_is_a_problem_not_a_mismatch(tmp_path: Path) -> None:
    await write_archive(tmp_path / "archive")
    (tmp_path / "archive" / "secrets" / "bravo.blob").unlink()
    blob = tmp_path / "archive" / "secrets" / "charlie.blob"
    blob.write_bytes(blob.read_bytes().upper())  # same size, another SHA-256
    archive = Archive.load(tmp_path / "archive")
    assert archive.problems() == ["1 blob file(s) are missing, e.g. secrets/bravo.blob"]
    assert [line.split(":")[0] for line in archive.verify_blobs()] == ["secret charlie"]
