"""A whole vault as an offline directory archive: one file per object's backup blob, plus ``manifest.json``.

Layout::

    ARCHIVE/                      0700
      manifest.json               0600  format, source vault, created, tool version, one entry per object
      entries.jsonl               0600  the write-ahead log of a running backup (folded into the manifest at the end)
      secrets/<name>.blob         0600  the blob exactly as Key Vault returned it (opaque, encrypted by Azure)
      keys/<name>.blob, certificates/<name>.blob

Each manifest entry holds type, name, version ids, enabled, the blob's file name, size and SHA-256. The blobs are
Key Vault's own encrypted backups; the archive holds no secret value in plain form. ``ArchiveSink`` is the backup
engine's sink, ``ArchiveSource`` the restore engine's source: the engine stages are the same as for copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvmigrate import __version__
from kvmigrate.errors import KvmigrateError, UsageError
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.vault.adapter import Listed

log = logging.getLogger(__name__)
FORMAT = "kvmigrate-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENTRIES = "entries.jsonl"


class ArchiveError(UsageError):
    """The archive cannot be used as a whole (exit 2): no manifest, damaged, newer format, not writable."""


class ArchiveBlobError(KvmigrateError):
    """One object's blob is missing or does not match its SHA-256: that object fails, the others go on."""


@dataclass(frozen=True)
class Entry:
    """One object in the archive (names and version ids only: never a value)."""

    type: ObjectType
    name: str
    versions: tuple[str, ...]
    enabled: bool | None
    blob: str
    size: int
    sha256: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.type, self.name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "name": self.name,
            "versions": list(self.versions),
            "enabled": self.enabled,
            "blob": self.blob,
            "size": self.size,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        return cls(
            ObjectType(raw["type"]),
            str(raw["name"]),
            tuple(raw["versions"]),
            raw.get("enabled"),
            str(raw["blob"]),
            int(raw["size"]),
            str(raw["sha256"]),
        )


def is_archive_reference(reference: str) -> bool:
    """A SOURCE that is an existing directory (or a path to one) is an archive, not a vault."""
    return Path(reference).is_dir() or reference.startswith((".", "/", "~"))


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600: a temporary file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Archive:
    """The manifest and entries of one archive directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.source = ""
        self.created = ""
        self.tool_version = __version__
        self.complete = False
        self.entries: dict[tuple[ObjectType, str], Entry] = {}

    @property
    def label(self) -> str:
        return str(self.root)

    # -- reading ------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: Path) -> Archive:
        """Open an existing archive, refusing what cannot be trusted with a clear message."""
        archive = cls(root)
        manifest = archive.root / MANIFEST
        if not archive.root.is_dir():
            raise ArchiveError(f"archive {archive.root} does not exist or is not a directory")
        try:
            text = manifest.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ArchiveError(
                f"archive {archive.root} has no {MANIFEST}: it is not a kvmigrate archive, or its backup never started"
            ) from exc
        except OSError as exc:
            raise ArchiveError(f"cannot read {manifest}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a kvmigrate manifest")
            version = int(data.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise ArchiveError(
                    f"archive {archive.root} has format version {version}, newer than this "
                    f"kvmigrate understands ({FORMAT_VERSION}); upgrade kvmigrate to read it"
                )
            archive.source = str(data["source"])
            archive.created = str(data["created"])
            archive.tool_version = str(data.get("tool_version", ""))
            archive.complete = bool(data.get("complete", False))
            for raw in data["objects"]:
                archive._add(Entry.from_dict(raw))
        except ArchiveError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(
                f"{manifest} is damaged or truncated ({exc}); the archive cannot be trusted - take the backup again"
            ) from exc
        archive._replay_entries()
        archive.warn_if_exposed()
        return archive

    def _add(self, entry: Entry) -> None:
        self.entries[(entry.type, entry.name.lower())] = entry

    def _replay_entries(self) -> None:
        """Fold in what a backup wrote after its last manifest (it was interrupted)."""
        path = self.root / ENTRIES
        if not path.exists():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                self._add(Entry.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a torn line at the end of %s", path)  # a crash mid-append
        self.complete = False

    def warn_if_exposed(self) -> list[str]:
        """Warn (not fail) when the archive or its files are readable by others."""
        exposed = []
        for path in [self.root, *self.root.rglob("*")]:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                exposed.append(str(path))
        if exposed:
            log.warning(
                "archive %s has %d file(s) readable by other users (e.g. %s); run chmod -R go-rwx on it",
                self.root,
                len(exposed),
                exposed[0],
            )
        return exposed

    def read_blob(self, entry: Entry) -> bytes:
        """The blob of ``entry``, checked against the manifest's SHA-256 before anyone sends it."""
        path = self.root / entry.blob
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArchiveBlobError(f"{entry.ref}: blob file {path} is missing from the archive") from exc
        except OSError as exc:
            raise ArchiveBlobError(f"{entry.ref}: cannot read blob file {path}: {exc.strerror}") from exc
        if len(blob) != entry.size or hashlib.sha256(blob).hexdigest() != entry.sha256:
            raise ArchiveBlobError(
                f"{entry.ref}: blob file {path} does not match the SHA-256 in the manifest "
                "(tampered or truncated); it was not restored"
            )
        return blob

    # -- writing ------------------------------------------------------------------------------------------------
    @classmethod
    def create_or_resume(cls, root: Path, *, source: str) -> Archive:
        archive = cls(root)
        if (archive.root / MANIFEST).exists():
            existing = cls.load(root)
            if existing.source != source:
                raise ArchiveError(
                    f"archive {existing.root} holds a backup of {existing.source}, not {source}; pass another directory"
                )
            return existing
        try:
            archive.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(archive.root, 0o700)
            if any(p.name not in (ENTRIES,) for p in archive.root.iterdir()):
                raise ArchiveError(
                    f"{archive.root} is not empty and holds no kvmigrate archive; pass a new or empty directory"
                )
        except OSError as exc:
            raise ArchiveError(f"cannot create archive {archive.root}: {exc.strerror}") from exc
        archive.source = source
        archive.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        archive._replay_entries()
        archive.write_manifest(complete=False)
        return archive

    def put(self, ref: ObjectRef, blob: bytes, *, versions: tuple[str, ...], enabled: bool | None) -> Entry:
        """Store one blob (atomically, 0600) and log its entry durably before the engine records it done."""
        folder = self.root / ref.type.plural
        folder.mkdir(exist_ok=True, mode=0o700)
        relative = f"{ref.type.plural}/{ref.key}.blob"
        _write_private(self.root / relative, blob)
        entry = Entry(ref.type, ref.name, versions, enabled, relative, len(blob), hashlib.sha256(blob).hexdigest())
        line = json.dumps(entry.as_dict(), separators=(",", ":")) + "\n"
        fd = os.open(self.root / ENTRIES, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._add(entry)
        return entry

    def write_manifest(self, *, complete: bool) -> None:
        self.complete = complete
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": self.source,
            "created": self.created,
            "tool_version": __version__,
            "complete": complete,
            "objects": [
                e.as_dict() for e in sorted(self.entries.values(), key=lambda e: (e.type.value, e.name.lower()))
            ],
        }
        _write_private(self.root / MANIFEST, (json.dumps(body, indent=1) + "\n").encode("utf-8"))
        if complete:
            (self.root / ENTRIES).unlink(missing_ok=True)


class ArchiveSource:
    """The restore engine's source: objects from the manifest, blobs from their files (checked)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.label = archive.label

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        for entry in sorted(self.archive.entries.values(), key=lambda e: e.name.lower()):
            if entry.type is object_type:
                yield Listed(entry.ref, False, entry.enabled)

    async def versions(self, ref: ObjectRef) -> list[str]:
        entry = self.archive.entries.get((ref.type, ref.key))
        return sorted(entry.versions) if entry else []

    async def backup(self, ref: ObjectRef) -> bytes:
        return self.archive.read_blob(self.archive.entries[(ref.type, ref.key)])


class ArchiveSink:
    """The backup engine's sink: each restored-to-archive object becomes a blob file and a manifest entry."""

    wants_versions = True

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.label = archive.label

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        for entry in list(self.archive.entries.values()):
            if entry.type is object_type:
                yield Listed(entry.ref, False, entry.enabled)

    async def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        for _ in ():
            yield ""

    async def versions(self, ref: ObjectRef) -> list[str]:
        entry = self.archive.entries.get((ref.type, ref.key))
        return sorted(entry.versions) if entry else []

    async def restore(
        self, ref: ObjectRef, blob: bytes, *, versions: tuple[str, ...] = (), enabled: bool | None = None
    ) -> None:
        self.archive.put(ref, blob, versions=versions, enabled=enabled)

    async def recover_deleted(self, ref: ObjectRef) -> None:  # an archive has no soft-deleted objects
        raise AssertionError("unreachable: an archive lists no deleted objects")

    async def purge_deleted(self, ref: ObjectRef) -> None:
        raise AssertionError("unreachable: an archive lists no deleted objects")
