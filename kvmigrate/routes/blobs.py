"""Move objects as Key Vault backup blobs: vault → vault (copy), vault → archive (backup), archive → vault (restore).

A blob carries every version of an object with its version ids, timestamps, attributes, tags and (certificates)
policy, so the target equals the source exactly; it restores only inside one subscription and geography. Objects
the target already holds are compared by version ids. Restore is not idempotent (409 when the name exists), so a
restore whose answer was lost is settled by comparing version ids after the 409.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from kvmigrate.errors import BlobRefusedError, ObjectConflictError, WrongSecurityDomainError
from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, Listed, ObjectRef, ObjectType
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.routes.base import Assessment, Blob, Match, TargetUpkeep
from kvmigrate.settings.stage import SettingsEnd
from kvmigrate.vault.adapter import VaultAdapter

#: Key Vault refuses to back up an object with more than this many versions.
MAX_BACKUP_VERSIONS = 500


class BlobSource(Protocol):
    label: str

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...

    async def versions(self, ref: ObjectRef) -> list[str]: ...

    async def backup(self, ref: ObjectRef) -> bytes: ...

    def others(self, ref: ObjectRef) -> tuple[ObjectType, ...]:
        """Other types the blob of ``ref`` may be (a key-tagged backup file); empty for vaults and archives."""
        ...


class BlobTarget(Protocol):
    label: str
    wants_versions: bool  # an archive records each object's version ids in its manifest

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...

    def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]: ...

    async def versions(self, ref: ObjectRef) -> list[str]: ...

    async def restore(self, ref: ObjectRef, blob: Blob) -> ObjectRef | None: ...

    async def recover_deleted(self, ref: ObjectRef) -> None: ...

    async def purge_deleted(self, ref: ObjectRef) -> None: ...

    async def delete(self, ref: ObjectRef) -> None: ...

    async def prepare(self) -> None: ...

    def finish(self, *, complete: bool) -> None: ...


class BlobRoute(TargetUpkeep):
    """Backup at the source, restore at the target; objects compared by version ids."""

    route = "blob"
    target: BlobTarget

    def __init__(
        self,
        source: BlobSource,
        target: BlobTarget,
        *,
        name: str,
        limiters: dict[str, AdaptiveRateLimiter],
        notes: list[str] | None = None,
        settings: tuple[SettingsEnd, SettingsEnd] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.name = name
        self.limiters = limiters
        self.settings = settings
        self._notes = list(notes or ())

    def blocked(self, listed: Listed) -> Action | None:
        return None  # a blob carries every kind of object

    async def assess(
        self, listed: Listed, *, present: bool, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        ref = listed.ref
        target_versions = await self.target.versions(ref) if present else []
        if not target_versions:
            count = len(await self.source.versions(ref)) if thorough else None
            return Assessment(
                Match.ABSENT,
                self.route,
                versions=count,
                too_many_versions=count is not None and count > MAX_BACKUP_VERSIONS,
            )
        source_versions = await self.source.versions(ref)
        assessment = Assessment(
            Match.SAME if sorted(source_versions) == sorted(target_versions) else Match.DIFFERENT,
            self.route,
            versions=len(source_versions),
            too_many_versions=len(source_versions) > MAX_BACKUP_VERSIONS,
        )
        if assessment.match is Match.DIFFERENT:
            extra = len(set(target_versions) - set(source_versions))
            missing = len(set(source_versions) - set(target_versions))
            assessment.detail = f"the target lacks {missing} of the source's versions and has {extra} of its own"
        return assessment

    async def read(self, listed: Listed, assessment: Assessment) -> Blob:
        ref = listed.ref
        versions = tuple(await self.source.versions(ref)) if self.target.wants_versions else ()
        return Blob(await self.source.backup(ref), versions, listed.enabled, self.source.others(ref))

    async def write(self, listed: Listed, payload: Any, assessment: Assessment, journal: Journal) -> ObjectRef | None:
        ref = listed.ref
        try:
            restored = await self.target.restore(ref, payload)
        except ObjectConflictError:
            # A restore whose answer was lost has happened: the retry meets the object it created.
            if not await self._restored_already(ref):
                raise
            return None
        return restored if restored is not None and (restored.type, restored.key) != (ref.type, ref.key) else None

    async def _restored_already(self, ref: ObjectRef) -> bool:
        target_versions = await self.target.versions(ref)
        return bool(target_versions) and sorted(target_versions) == sorted(await self.source.versions(ref))

    async def prepare(self) -> None:
        await self.target.prepare()

    def finish(self, *, complete: bool) -> None:
        self.target.finish(complete=complete)

    def notes(self) -> list[str]:
        return list(self._notes)


class VaultBlobs:
    """A vault as a blob route's end: backups out, restores in (``VaultAdapter`` with the ends' shape)."""

    wants_versions = False  # a vault learns versions from the blob itself

    def __init__(self, vault: VaultAdapter) -> None:
        self.vault = vault
        self.label = vault.label

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        return self.vault.list_objects(object_type)

    def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        return self.vault.list_deleted(object_type)

    async def versions(self, ref: ObjectRef) -> list[str]:
        return await self.vault.versions(ref)

    async def backup(self, ref: ObjectRef) -> bytes:
        return await self.vault.backup(ref)

    def others(self, ref: ObjectRef) -> tuple[ObjectType, ...]:
        return ()

    async def restore(self, ref: ObjectRef, blob: Blob) -> ObjectRef | None:
        """Restore ``blob``; a blob the vault refuses as another kind's is tried as ``blob.others`` in turn."""
        kinds = (ref.type, *blob.others)
        for index, kind in enumerate(kinds):
            try:
                name = await self.vault.restore(ObjectRef(kind, ref.name), blob.data)
            except BlobRefusedError as refused:
                if isinstance(refused, WrongSecurityDomainError) or index == len(kinds) - 1:
                    raise
                continue
            return ObjectRef(kind, name or ref.name)
        return None

    async def recover_deleted(self, ref: ObjectRef) -> None:
        await self.vault.recover_deleted(ref)

    async def purge_deleted(self, ref: ObjectRef) -> None:
        await self.vault.purge_deleted(ref)

    async def delete(self, ref: ObjectRef) -> None:
        await self.vault.delete(ref)

    async def prepare(self) -> None:
        return None

    def finish(self, *, complete: bool) -> None:
        return None
