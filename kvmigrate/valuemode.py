"""Value mode's source and sink: move secrets and certificates by their values, version by version, in order.

Backup blobs restore only inside one subscription and geography; value mode crosses subscriptions, geographies and
tenants. The source reads each object's versions (oldest first) with their values; the sink recreates them so the
newest ends up current. Each written version is journaled (source version id → target version id) before the next
one, so a resumed run creates no duplicates: versions already mapped are skipped, and versions a crash left
unjournaled are recognised in the target by value digest and attributes. Creates and imports draw on Key Vault's
smaller budget (300 per 10 s), so the sink paces them with a limiter of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from kvmigrate.journal import Journal
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.retry import call_with_retry
from kvmigrate.vault.adapter import Listed, VaultAdapter
from kvmigrate.vault.values import ValueAdapter, ValuePayload, VersionValue

log = logging.getLogger(__name__)
#: Key Vault allows 300 creates/imports per 10 s per vault (facts §11): stay under it.
DEFAULT_CREATE_RPS = 25.0
WRITE_ATTEMPTS = 8


class ValueSource:
    """Reads objects by value; listing and version ids come from the vault adapter."""

    wants_versions = False

    def __init__(self, vault: VaultAdapter, values: ValueAdapter, *, latest_only: bool) -> None:
        self.vault = vault
        self.values = values
        self.label = vault.label
        self.latest_only = latest_only

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        return self.vault.list_objects(object_type)

    async def versions(self, ref: ObjectRef) -> list[str]:
        return await self.vault.versions(ref)

    async def backup(self, ref: ObjectRef) -> ValuePayload:
        return await self.values.read(ref, latest_only=self.latest_only)


class ValueSink:
    """Recreates versions in the target, journaling each one; never writes a version twice."""

    wants_versions = False

    def __init__(self, vault: VaultAdapter, values: ValueAdapter, *, create_rps: float = DEFAULT_CREATE_RPS) -> None:
        self.vault = vault
        self.values = values
        self.label = vault.label
        self.creates = AdaptiveRateLimiter(create_rps)
        self.journal: Journal | None = None
        self.unreadable: list[tuple[ObjectRef, str]] = []  # disabled versions whose value the source hides

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        return self.vault.list_objects(object_type)

    def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        return self.vault.list_deleted(object_type)

    async def versions(self, ref: ObjectRef) -> list[str]:
        return await self.vault.versions(ref)

    async def recover_deleted(self, ref: ObjectRef) -> None:
        await self.vault.recover_deleted(ref)

    async def purge_deleted(self, ref: ObjectRef) -> None:
        await self.vault.purge_deleted(ref)

    async def restore(
        self,
        ref: ObjectRef,
        payload: ValuePayload,
        *,
        versions: tuple[str, ...] = (),
        enabled: bool | None = None,
        resuming: bool = False,
    ) -> None:
        """Write every version of ``payload`` the target does not have yet, oldest first.

        ``resuming``: an earlier run was writing this object when it stopped, so the target may hold versions the
        journal never heard of (a crash between a write and its journal entry); they are adopted, not rewritten.
        """
        assert self.journal is not None, "the engine attaches its journal before the run"
        mapping = self.journal.version_map(ref)
        leftovers: list[VersionValue] | None = None
        if mapping or resuming:
            leftovers = [v for v in await self.values.existing(ref) if v.version not in mapping.values()]
        for version in payload.versions:
            if version.version in mapping:
                continue
            if version.value is None:
                self.unreadable.append((ref, version.version))
                log.warning(
                    "%s version %s is disabled: Key Vault does not reveal its value, so it was not copied",
                    ref,
                    version.version,
                )
                continue
            adopted = _matching(version, leftovers or [])
            if adopted is not None:
                assert leftovers is not None
                leftovers.remove(adopted)
                target_version = adopted.version
            else:
                target_version = await self._write(ref, version, payload)
            self.journal.map_version(ref, version.version, target_version)
            mapping[version.version] = target_version
        log.debug("%s: %d version(s) in the target", ref, len(mapping))

    async def _write(self, ref: ObjectRef, version: VersionValue, payload: ValuePayload) -> str:
        """One create/import under the create budget; a lost answer is settled by looking, never by rewriting."""
        for _ in range(WRITE_ATTEMPTS):
            try:
                return await call_with_retry(
                    lambda: self._paced_write(ref, version, payload),
                    what=f"write {ref} version",
                    should_retry=_refused_only,
                    base_delay=0.5,
                    max_delay=10.0,
                )
            except ServiceResponseError:
                # The write may have happened and only its answer was lost: look before writing again.
                await asyncio.sleep(1.0)
                existing = await self.values.existing(ref)
                mapped = set(self.journal.version_map(ref).values()) if self.journal else set()
                adopted = _matching(version, [v for v in existing if v.version not in mapped])
                if adopted is not None:
                    return adopted.version
            except HttpResponseError as exc:
                raise self.values.translate(exc, ref) from exc
        raise self.values.translate(ServiceResponseError("the answer to a write was lost repeatedly"), ref)

    async def _paced_write(self, ref: ObjectRef, version: VersionValue, payload: ValuePayload) -> str:
        await self.creates.acquire()
        try:
            written = await self.values.write(ref, version, payload.policy)
        except HttpResponseError as exc:
            self.creates.on_response(exc.status_code or 0)
            raise
        self.creates.on_response(200)
        return written


def _refused_only(exc: BaseException) -> float | None:
    """Retry writes the service refused (429, 5xx) or that never left (connection refused); not lost answers."""
    if isinstance(exc, ServiceResponseError):
        return None
    if isinstance(exc, HttpResponseError) and exc.status_code in (429, 500, 502, 503, 504):
        return 0.0
    if isinstance(exc, ServiceRequestError):
        return 0.0
    return None


def _matching(version: VersionValue, candidates: list[VersionValue]) -> VersionValue | None:
    """A target version holding the same value and attributes (the write a crash left unjournaled)."""
    for candidate in candidates:
        if (
            candidate.digest == version.digest
            and candidate.enabled == version.enabled
            and candidate.tags == version.tags
            and candidate.expires_on == version.expires_on
        ):
            return candidate
    return None
