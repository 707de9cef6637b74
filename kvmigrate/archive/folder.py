"""A folder of per-object backup files, as Microsoft's own workflow leaves them, read as a restore source.

``az keyvault secret|key|certificate backup --file F``, PowerShell's ``Backup-AzKeyVault*`` and the portal's
"Download Backup" each write one object's blob to one file, named however the user chose. Any layout is accepted
(every regular file under the folder, links never followed; or one file). A file is a backup when it starts with
Key Vault's length-prefixed tag, or is the base64 of such bytes; anything else is listed as skipped.

The type comes from the blob's own tag. Secrets have their own; keys and certificates share one, so a key-tagged
blob is tried as the type its file name suggests (``cert`` in it: a certificate) and, if the vault refuses it as
another kind's blob, as the other one. The name is presumed from the file name (``db-password.secret`` →
``db-password``) until the restore answers with the real one, which the summary then uses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from kvmigrate.archive.manifest import MAX_BLOB_BYTES
from kvmigrate.errors import ArchiveBlobError, ArchiveError, UsageError
from kvmigrate.files import read_regular
from kvmigrate.models import Listed, ObjectRef, ObjectType, fingerprint

SECRET_TAG = b"AzureKeyVaultSecretBackupV1.microsoft.com"
KEY_TAG = b"AzureKeyVaultKeyBackupV1.microsoft.com"  # keys and certificates alike
_SUFFIXES: tuple[str, ...] = (".blob", ".backup", ".bak", ".secret", ".key", ".certificate", ".cert", ".txt", ".bin")
_SUFFIXES += (".secretbackup", ".keybackup", ".certificatebackup", ".kvbackup")
_NOT_NAME = re.compile(r"[^0-9a-zA-Z-]+")
MAX_FILES = 100_000


@dataclass(frozen=True)
class BackupFile:
    """One backup file: where it is, what it presumably holds, and what it held when the folder was read."""

    path: Path
    ref: ObjectRef
    others: tuple[ObjectType, ...]  # types to try when the vault refuses the blob as this one's
    size: int
    sha256: str


@dataclass
class BackupFolder:
    """Every backup file under a folder (or one file), with what was skipped and why."""

    root: Path
    files: dict[tuple[ObjectType, str], BackupFile] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.root)

    @classmethod
    def load(cls, root: Path) -> BackupFolder:
        folder = cls(root.expanduser().absolute())
        try:
            info = os.lstat(folder.root)
        except FileNotFoundError:
            raise ArchiveError(
                f"{folder.root} does not exist; pass an archive, a folder of backup files or one"
            ) from None
        if stat.S_ISLNK(info.st_mode):
            raise ArchiveError(f"{folder.root} is a symbolic link; pass the folder or file it points to")
        paths = [folder.root] if stat.S_ISREG(info.st_mode) else list(_walk(folder.root))
        for path in sorted(paths):
            folder._add(path)
        if not folder.files:
            raise ArchiveError(
                f"{folder.root} has no manifest.json and no Key Vault backup files (a kvmigrate archive, or files "
                "written by az keyvault ... backup, Backup-AzKeyVault* or the portal's Download Backup)"
            )
        return folder

    def _add(self, path: Path) -> None:
        try:
            data = read_regular(path, limit=MAX_BLOB_BYTES * 2, what="backup file")
        except FileNotFoundError:
            self.skipped.append(f"{path}: removed while the folder was read")
            return
        except UsageError as exc:  # a link, not a regular file, unreadable: skip this file, read the others
            self.skipped.append(f"{path}: {exc}")
            return
        blob = as_blob(data)
        if blob is None:
            self.skipped.append(f"{path}: not a Key Vault backup")
            return
        kind, others = blob_kind(blob, path.name)
        ref = ObjectRef(kind, presumed_name(path.name))
        key = (ref.type, ref.key)
        if key in self.files:
            self.skipped.append(f"{path}: another file already holds {ref} ({self.files[key].path.name})")
            return
        self.files[key] = BackupFile(path, ref, others, len(blob), hashlib.sha256(blob).hexdigest())

    def read(self, ref: ObjectRef) -> bytes:
        """The blob of ``ref``, as it was when the folder was read (a changed file fails its object)."""
        entry = self.files[(ref.type, ref.key)]
        try:
            blob = as_blob(read_regular(entry.path, limit=MAX_BLOB_BYTES * 2, what="backup file"))
        except FileNotFoundError as exc:
            raise ArchiveBlobError(f"{ref}: backup file {entry.path} was removed since it was listed") from exc
        except UsageError as exc:  # this object fails, the others go on
            raise ArchiveBlobError(f"{ref}: cannot read backup file {entry.path}: {exc}") from exc
        if blob is None or hashlib.sha256(blob).hexdigest() != entry.sha256:
            raise ArchiveBlobError(f"{ref}: backup file {entry.path} changed since it was listed; it was not restored")
        return blob


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, folders, names in os.walk(root, followlinks=False):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in names:
            path = Path(directory) / name
            if stat.S_ISREG(os.lstat(path).st_mode) and not name.startswith("."):
                found.append(path)
            if len(found) > MAX_FILES:
                raise ArchiveError(f"{root} holds more than {MAX_FILES} files; pass the folder of backup files itself")
    return found


def as_blob(data: bytes) -> bytes | None:
    """The backup bytes of a file: as written (az, PowerShell) or base64 of them; None when it is not a backup."""
    if _is_tagged(data):
        return data
    text = data.strip()
    if not text or len(text) > MAX_BLOB_BYTES * 2:
        return None
    try:
        decoded = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    return decoded if _is_tagged(decoded) else None


def _is_tagged(data: bytes) -> bool:
    if len(data) < 2:
        return False
    tag = data[1 : 1 + data[0]]
    return tag in (SECRET_TAG, KEY_TAG) and len(data) > 1 + data[0]


def blob_kind(blob: bytes, file_name: str) -> tuple[ObjectType, tuple[ObjectType, ...]]:
    """The type a blob's tag says, and the types to try next (keys and certificates share a tag)."""
    if blob[1 : 1 + blob[0]] == SECRET_TAG:
        return ObjectType.SECRET, ()
    if "cert" in file_name.lower():
        return ObjectType.CERTIFICATE, (ObjectType.KEY,)
    return ObjectType.KEY, (ObjectType.CERTIFICATE,)


def presumed_name(file_name: str) -> str:
    """``db-password.secret`` → ``db-password``: the file name without backup suffixes, as a Key Vault name."""
    stem = file_name
    while True:
        lowered = stem.lower()
        suffix = next((s for s in _SUFFIXES if lowered.endswith(s) and len(stem) > len(s)), None)
        if suffix is None:
            break
        stem = stem[: -len(suffix)]
    return (_NOT_NAME.sub("-", stem).strip("-") or "unnamed")[:127]


class FolderSource:
    """Restore's source end over a folder of backup files."""

    def __init__(self, folder: BackupFolder) -> None:
        self.folder = folder
        self.label = folder.label

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        for entry in sorted(self.folder.files.values(), key=lambda e: e.ref.key):
            if entry.ref.type is object_type:
                yield Listed(entry.ref, fingerprint=fingerprint(sha256=entry.sha256))

    async def versions(self, ref: ObjectRef) -> list[str]:
        return []  # encrypted: a backup file does not say which versions it holds

    async def backup(self, ref: ObjectRef) -> bytes:
        return self.folder.read(ref)

    def others(self, ref: ObjectRef) -> tuple[ObjectType, ...]:
        entry = self.folder.files.get((ref.type, ref.key))
        return () if entry is None else entry.others
