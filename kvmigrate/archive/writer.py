"""Write a vault into an archive folder: backup's target end (see ``reader.py`` for the layout).

Everything that can refuse the folder is checked in ``ArchiveWriter.__init__`` without touching it (a link, a file,
a non-empty folder that is not an archive, an archive of another vault); the folder is created only in ``prepare``,
after the run's preflight. Each blob is written atomically (0600) and its entry appended to ``entries.jsonl`` (fsync)
before the engine records the object done; ``finish`` folds the log into ``manifest.json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from kvmigrate import __version__
from kvmigrate.archive.manifest import ENTRIES, FORMAT, FORMAT_VERSION, MANIFEST, Entry
from kvmigrate.archive.reader import Archive, ArchiveSettings
from kvmigrate.errors import ArchiveError
from kvmigrate.files import private_dir, private_text, write_atomic
from kvmigrate.models import Listed, ObjectRef, ObjectType
from kvmigrate.routes.base import Blob


class ArchiveWriter:
    """Backup's target end: each object becomes a blob file and a manifest entry."""

    wants_versions = True

    def __init__(self, root: Path, *, source: str) -> None:
        self.root = root.expanduser().absolute()
        self.label = str(self.root)
        self.archive = Archive(self.root)
        self._check(source)
        self.settings = ArchiveSettings(self.archive, lambda: self._write_manifest(complete=False))

    def _check(self, source: str) -> None:
        try:
            info = os.lstat(self.root)
        except FileNotFoundError:
            self._new(source)
            return
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise ArchiveError(f"{self.root} is not a folder (or is a symbolic link); pass a new or empty folder")
        if (self.root / MANIFEST).exists() or (self.root / ENTRIES).exists():
            if not (self.root / MANIFEST).exists():
                raise ArchiveError(f"{self.root} holds a backup log but no manifest; pass a new or empty folder")
            self.archive = Archive.load(self.root)
            if self.archive.source != source:
                raise ArchiveError(
                    f"archive {self.root} holds a backup of {self.archive.source}, not {source}; pass another folder"
                )
            return
        with os.scandir(self.root) as entries:
            empty = next(entries, None) is None
        if not empty:
            raise ArchiveError(f"{self.root} is not empty and holds no kvmigrate archive; pass a new or empty folder")
        self._new(source)

    def _new(self, source: str) -> None:
        self.archive.source = source
        self.archive.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    async def prepare(self) -> None:
        private_dir(self.root, what="archive")
        if not (self.root / MANIFEST).exists():
            self._write_manifest(complete=False)

    def finish(self, *, complete: bool) -> None:
        if (self.root / MANIFEST).exists():
            self._write_manifest(complete=complete)

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        for entry in list(self.archive.entries.values()):
            if entry.type is object_type:
                yield self.archive.listed(entry)

    async def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        for _ in ():  # an archive holds no soft-deleted objects
            yield ""

    async def versions(self, ref: ObjectRef) -> list[str]:
        entry = self.archive.entries.get((ref.type, ref.key))
        if entry is None or not (self.root / entry.blob).exists():
            return []
        return sorted(entry.versions)

    async def restore(self, ref: ObjectRef, blob: Blob) -> ObjectRef | None:
        """Store one blob (atomically, 0600) and log its entry durably before the engine records it done."""
        folder = private_dir(self.root / ref.type.plural, what="archive folder")
        relative = f"{ref.type.plural}/{ref.key}.blob"
        write_atomic(folder / f"{ref.key}.blob", blob.data, what="blob file")
        entry = Entry(
            ref.type,
            ref.name,
            blob.versions,
            blob.enabled,
            relative,
            len(blob.data),
            hashlib.sha256(blob.data).hexdigest(),
        )
        with private_text(self.root / ENTRIES, what="archive log", append=True) as handle:
            handle.write(json.dumps(entry.as_dict(), separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.archive.add(entry)
        return None

    async def recover_deleted(self, ref: ObjectRef) -> None:
        raise ArchiveError("an archive lists no deleted objects (a bug if this is reached; please report it)")

    async def purge_deleted(self, ref: ObjectRef) -> None:
        raise ArchiveError("an archive lists no deleted objects (a bug if this is reached; please report it)")

    async def delete(self, ref: ObjectRef) -> None:
        raise ArchiveError("an archive is never synced (a bug if this is reached; please report it)")

    def _write_manifest(self, *, complete: bool) -> None:
        archive = self.archive
        archive.complete = complete
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": archive.source,
            "created": archive.created,
            "tool_version": __version__,
            "complete": complete,
            "settings": archive.settings.as_dict(),
            "objects": [e.as_dict() for e in archive.sorted_entries()],
        }
        write_atomic(self.root / MANIFEST, (json.dumps(body, indent=1) + "\n").encode("utf-8"), what="manifest")
        if complete:
            (self.root / ENTRIES).unlink(missing_ok=True)
