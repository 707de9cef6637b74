"""Read an archive safely: the manifest validated, each blob a regular file of the manifest's size, SHA-256 checked.

Layout::

    ARCHIVE/                      0700
      manifest.json               0600  format, source vault, created, tool version, one entry per object
      entries.jsonl               0600  the write-ahead log of a running backup (folded into the manifest at the end)
      secrets/<name>.blob         0600  the blob exactly as Key Vault returned it (opaque, encrypted by Azure)
      keys/<name>.blob, certificates/<name>.blob

``Archive.load`` refuses (exit 2, before anything is written) a manifest that breaks a rule of ``manifest.py``, and a
blob that is a link, not a regular file, or not of the size the manifest gives. A missing blob makes the archive
incomplete (restore refuses it unless ``--allow-incomplete``); a blob whose SHA-256 differs fails its object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from kvmigrate.archive.manifest import (
    ENTRIES,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    Entry,
    Settings,
    escape_for_message,
    parse,
)
from kvmigrate.errors import ArchiveBlobError, ArchiveError, UsageError
from kvmigrate.files import read_regular
from kvmigrate.models import Listed, ObjectRef, ObjectType, fingerprint
from kvmigrate.settings.model import Contacts, Issuer, RotationPolicy

log = logging.getLogger(__name__)


class Archive:
    """The manifest and entries of one archive folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().absolute()
        self.source = ""
        self.created = ""
        self.tool_version = ""
        self.complete = False
        self.entries: dict[tuple[ObjectType, str], Entry] = {}
        self.missing: list[Entry] = []  # entries whose blob file is absent
        self.settings = Settings()

    @property
    def label(self) -> str:
        return str(self.root)

    @classmethod
    def load(cls, root: Path) -> Archive:
        """Open an existing archive, refusing what cannot be trusted with a clear message."""
        archive = cls(root)
        try:
            info = os.lstat(archive.root)
        except FileNotFoundError:
            raise ArchiveError(f"archive {archive.root} does not exist") from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise ArchiveError(f"archive {archive.root} is not a folder (or is a symbolic link)")
        manifest = archive.root / MANIFEST
        try:
            text = read_regular(manifest, limit=MAX_MANIFEST_BYTES, what="manifest").decode("utf-8")
        except FileNotFoundError:
            raise ArchiveError(
                f"archive {archive.root} has no {MANIFEST}: it is not a kvmigrate archive, or its backup never started"
                " (a folder of az/portal backup files is read with the same command once it holds .blob or backup"
                " files)"
            ) from None
        except UsageError as exc:  # a link, not a regular file, unreadable
            raise ArchiveError(f"archive {archive.root}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ArchiveError(f"{manifest} is damaged (not UTF-8 text); take the backup again") from exc
        parsed = parse(text, where=str(archive.root))
        archive.source, archive.created = parsed.source, parsed.created
        archive.tool_version, archive.complete = parsed.tool_version, parsed.complete
        archive.settings = parsed.settings
        for entry in parsed.entries:
            archive.add(entry)
        archive._replay_entries()
        archive._warn_if_exposed(archive._check_blob_files())
        return archive

    def sorted_entries(self) -> list[Entry]:
        """The entries in the one order manifests, reports and checks use: by type, then name ignoring case."""
        return sorted(self.entries.values(), key=lambda e: (e.type.value, e.name.lower()))

    def add(self, entry: Entry) -> None:
        """Record ``entry`` under its key (type, name in lower case: Key Vault names ignore case), replacing any."""
        self.entries[(entry.type, entry.name.lower())] = entry

    def _replay_entries(self) -> None:
        """Fold in what a backup wrote after its last manifest (it was interrupted): the archive is incomplete.

        A log that is there but cannot be read refuses the archive: its entries would silently go missing.
        """
        path = self.root / ENTRIES
        try:
            text = read_regular(path, limit=MAX_MANIFEST_BYTES, what="archive log").decode("utf-8", "replace")
        except FileNotFoundError:
            return
        except UsageError as exc:
            raise ArchiveError(f"archive {self.root}: {exc}") from exc
        for line in text.splitlines():
            try:
                self.add(Entry.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a torn or invalid line of %s", path)  # a crash mid-append
        self.complete = False

    def _check_blob_files(self) -> list[str]:
        """Every blob that exists must be a regular file (never a link, FIFO or device) of the manifest's size.

        Returns the blobs others may read, from the same ``lstat`` (one per blob: archives hold many thousands).
        """
        self.missing = []
        exposed = []
        for entry in self.entries.values():
            path = self.root / entry.blob
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                self.missing.append(entry)
                continue
            except OSError as exc:  # its folder is a file, or cannot be searched
                raise ArchiveError(
                    f"archive {self.root}: cannot look at the blob of {entry.ref} ({escape_for_message(entry.blob)}): "
                    f"{exc.strerror}; check the archive's folders and their permissions"
                ) from exc
            if not stat.S_ISREG(info.st_mode):
                raise ArchiveError(
                    f"archive {self.root} is damaged: the blob of {entry.ref} ({escape_for_message(entry.blob)}) is "
                    "not a regular file (a link, device or pipe); it cannot be trusted - take the backup again"
                )
            if info.st_size != entry.size:
                raise ArchiveError(
                    f"archive {self.root} is damaged: the blob of {entry.ref} has {info.st_size} bytes, the manifest "
                    f"says {entry.size} (truncated or replaced); take the backup again"
                )
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                exposed.append(str(path))
        return exposed

    @property
    def is_whole(self) -> bool:
        """A finished backup with every blob present (SHA-256s are checked when read, or by ``verify_blobs``)."""
        return self.complete and not self.missing

    def problems(self) -> list[str]:
        """Why the archive is not whole, one line each (empty when it is)."""
        lines = []
        if not self.complete:
            lines.append("the backup did not finish (rerun it to complete the archive)")
        if self.missing:
            lines.append(f"{len(self.missing)} blob file(s) are missing, e.g. {self.missing[0].blob}")
        return lines

    def verify_blobs(self) -> list[str]:
        """Check every present blob's SHA-256 against the manifest; one line per mismatch."""
        bad = []
        missing = {(entry.type, entry.name.lower()) for entry in self.missing}
        for entry in self.sorted_entries():
            if (entry.type, entry.name.lower()) in missing:
                continue
            try:
                self.read_blob(entry)
            except ArchiveBlobError as exc:
                bad.append(str(exc))
        return bad

    def _warn_if_exposed(self, blobs: list[str]) -> None:
        """Warn (not fail) when the archive, its manifest or the given blobs are readable by others."""
        manifest = self.root / MANIFEST
        exposed = [*([str(self.root)] if _is_exposed(self.root) else []), *blobs]
        exposed += [str(manifest)] if _is_exposed(manifest) else []
        if exposed:
            log.warning(
                "archive %s has %d file(s) readable by other users (e.g. %s); run chmod -R go-rwx on it",
                self.root,
                len(exposed),
                exposed[0],
            )

    def read_blob(self, entry: Entry) -> bytes:
        """The blob of ``entry``: a regular file of the manifest's size whose SHA-256 matches, or ArchiveBlobError."""
        path = self.root / entry.blob
        try:
            blob = read_regular(path, limit=entry.size, what="blob file")
        except FileNotFoundError as exc:
            raise ArchiveBlobError(f"{entry.ref}: blob file {path} is missing from the archive") from exc
        except UsageError as exc:  # a link, not a regular file, unreadable: this object fails, the others go on
            raise ArchiveBlobError(f"{entry.ref}: cannot read blob file {path}: {exc}") from exc
        if len(blob) != entry.size or hashlib.sha256(blob).hexdigest() != entry.sha256:
            raise ArchiveBlobError(
                f"{entry.ref}: blob file {path} does not match the SHA-256 in the manifest (tampered or truncated); "
                "it was not restored"
            )
        return blob

    def listed(self, entry: Entry) -> Listed:
        return Listed(entry.ref, enabled=entry.enabled, fingerprint=fingerprint(sha256=entry.sha256))


def _is_exposed(path: Path) -> bool:
    """``path`` exists and its group or others have any permission on it."""
    try:
        return bool(os.lstat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except FileNotFoundError:
        return False


class ArchiveSource:
    """Restore's source end: objects from the manifest, blobs from their files (checked)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.label = archive.label

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        for entry in sorted(self.archive.entries.values(), key=lambda e: e.name.lower()):
            if entry.type is object_type:
                yield self.archive.listed(entry)

    async def versions(self, ref: ObjectRef) -> list[str]:
        entry = self.archive.entries.get((ref.type, ref.key))
        return sorted(entry.versions) if entry else []

    async def backup(self, ref: ObjectRef) -> bytes:
        return self.archive.read_blob(self.archive.entries[(ref.type, ref.key)])

    def others(self, ref: ObjectRef) -> tuple[ObjectType, ...]:
        return ()  # the manifest says each blob's type


def is_archive_reference(reference: str) -> bool:
    """A SOURCE that is an existing folder or file (or a path to one) is an archive, not a vault."""
    return Path(reference).exists() or reference.startswith((".", "/", "~"))


class ArchiveSettings:
    """An archive's settings as a settings end: read by restore, written by backup (``save`` rewrites the manifest)."""

    keeps_passwords = False

    def __init__(self, archive: Archive, save: Callable[[], None] | None = None) -> None:
        self.archive = archive
        self.label = archive.label
        self._save = save

    def _saved(self) -> None:
        if self._save is None:
            raise ArchiveError("an archive being restored is not written to (a bug if this is reached)")
        self._save()

    async def rotation_policy(self, key: str) -> RotationPolicy | None:
        return self.archive.settings.rotation_policies.get(key.lower())

    async def set_rotation_policy(self, key: str, policy: RotationPolicy) -> None:
        self.archive.settings.rotation_policies[key.lower()] = policy
        self._saved()

    async def contacts(self) -> Contacts | None:
        return self.archive.settings.contacts

    async def set_contacts(self, contacts: Contacts) -> None:
        self.archive.settings.contacts = contacts
        self._saved()

    async def issuer_names(self) -> AsyncIterator[str]:
        for issuer in sorted(self.archive.settings.issuers.values(), key=lambda i: i.name.lower()):
            yield issuer.name

    async def issuer(self, name: str) -> Issuer | None:
        return self.archive.settings.issuers.get(name.lower())

    async def set_issuer(self, issuer: Issuer, *, password: str | None) -> None:
        self.archive.settings.issuers[issuer.name.lower()] = issuer  # an archive never holds a password
        self._saved()

    async def has_pending_request(self, certificate: str) -> bool:
        return False  # an archive holds completed versions only
