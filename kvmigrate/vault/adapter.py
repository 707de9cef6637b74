"""Per-type list / versions / backup / restore / recover / purge on one vault, errors translated to ours.

The engine sees only ``ObjectRef``s, version ids and opaque blobs: values never pass through here (``values.py`` is
the one place they do). One retry layer per call: listings and reads ride azure-core's retry policy; backup and
restore (POSTs azure-core will not retry on Key Vault's 429s) are retried by ``kvmigrate.retry`` alone, with
azure-core's retries turned off for them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from azure.core.exceptions import AzureError

from kvmigrate.errors import ObjectNotFoundError, from_azure, is_disabled_secret, is_not_found
from kvmigrate.models import Listed, ObjectRef, ObjectType, fingerprint
from kvmigrate.retry import call_with_retry
from kvmigrate.vault.clients import VaultClients

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionInfo:
    """One version's attributes as version listings show them: what ``verify`` and the value route compare."""

    version: str
    created: datetime | None
    enabled: bool | None
    not_before: datetime | None
    expires_on: datetime | None
    content_type: str | None
    tags: tuple[tuple[str, str], ...]
    thumbprint: str | None


def listed_of(object_type: ObjectType, props: Any) -> Listed:
    """A listing entry as the engine sees it, with the fingerprint a rerun compares (attributes only)."""
    thumbprint = getattr(props, "x509_thumbprint", None)
    pending = object_type is ObjectType.CERTIFICATE and not thumbprint
    return Listed(
        ObjectRef(object_type, props.name),
        managed=bool(getattr(props, "managed", False)),
        enabled=props.enabled,
        fingerprint=fingerprint(
            updated=props.updated_on,
            enabled=props.enabled,
            nbf=props.not_before,
            exp=props.expires_on,
            tags=props.tags or {},
            content_type=getattr(props, "content_type", None),
            thumbprint=thumbprint.hex() if isinstance(thumbprint, bytes) else None,
        ),
        pending=pending,
    )


def version_info(props: Any) -> VersionInfo:
    thumbprint = getattr(props, "x509_thumbprint", None)
    return VersionInfo(
        version=props.version,
        created=props.created_on,
        enabled=props.enabled,
        not_before=props.not_before,
        expires_on=props.expires_on,
        content_type=getattr(props, "content_type", None),
        tags=tuple(sorted((props.tags or {}).items())),
        thumbprint=thumbprint.hex() if isinstance(thumbprint, bytes) else None,
    )


class VaultAdapter:
    """The operations kvmigrate needs from one vault, the same shape for every object type."""

    def __init__(self, clients: VaultClients, *, label: str, attempts: int = 10) -> None:
        self.clients = clients
        self.label = label  # how messages name this vault (its URL)
        self.attempts = attempts

    async def _post(self, operation: str, subject: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one POST; ours is its only retry layer (Key Vault's 429s carry no Retry-After)."""
        try:
            return await call_with_retry(
                call, what=f"{operation} {subject}", attempts=self.attempts, base_delay=0.5, max_delay=10.0
            )
        except (AzureError, ValueError) as exc:
            raise from_azure(exc, vault=self.label, operation=operation, subject=subject) from exc

    def _sdk(self, object_type: ObjectType, operation: str) -> Any:
        """The SDK method for ``operation`` on ``object_type`` (the three clients name them differently)."""
        client, methods = _SDK_METHODS[object_type]
        return getattr(getattr(self.clients, client), methods[operation])

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        """Stream the vault's objects of one type, page by page (managed and pending ones included, flagged)."""
        options = {"include_pending": True} if object_type is ObjectType.CERTIFICATE else {}
        try:
            async for props in self._sdk(object_type, "list")(**options):
                yield listed_of(object_type, props)
        except (AzureError, ValueError) as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=object_type.plural) from exc

    async def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        """Stream the names of soft-deleted objects of one type."""
        options = {"include_pending": True} if object_type is ObjectType.CERTIFICATE else {}
        try:
            async for deleted in self._sdk(object_type, "deleted")(**options):
                yield deleted.name
        except (AzureError, ValueError) as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=f"deleted {object_type.plural}") from exc

    async def version_infos(self, ref: ObjectRef) -> list[VersionInfo]:
        """Every version with its attributes and tags, sorted by version id (an absent name has none)."""
        try:
            infos = [version_info(props) async for props in self._sdk(ref.type, "versions")(ref.name)]
        except AzureError as exc:
            if is_not_found(exc):
                return []
            raise from_azure(exc, vault=self.label, operation="list", subject=str(ref)) from exc
        return sorted(infos, key=lambda info: info.version)

    async def versions(self, ref: ObjectRef) -> list[str]:
        """The object's version ids, sorted (an absent name has none)."""
        return [info.version for info in await self.version_infos(ref)]

    async def material_digest(self, ref: ObjectRef, version: str) -> str | None:
        """SHA-256 of what a version holds: the secret value, the public JWK, or the certificate's DER.

        Only the digest leaves this method, so a secret value is compared without ever being kept, logged or
        printed. None when the service refuses to show it (a disabled secret answers 403).
        """
        subject = f"{ref} version {version}"
        try:
            if ref.type is ObjectType.SECRET:
                secret = await self.clients.secrets.get_secret(ref.name, version)
                material = (secret.value or "").encode("utf-8")
                del secret
            elif ref.type is ObjectType.KEY:
                key = (await self.clients.keys.get_key(ref.name, version)).key
                fields = {name: getattr(key, name, None) for name in ("kty", "crv", "n", "e", "x", "y")}
                material = json.dumps(
                    {k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()}, sort_keys=True, default=str
                ).encode()
            else:
                certificate = await self.clients.certificates.get_certificate_version(ref.name, version)
                material = bytes(certificate.cer or b"")
        except AzureError as exc:
            if is_disabled_secret(exc):
                return None
            raise from_azure(exc, vault=self.label, operation="get", subject=subject) from exc
        return hashlib.sha256(material).hexdigest()

    async def update_properties(self, ref: ObjectRef, version: str, info: VersionInfo) -> None:
        """Set a version's writable attributes to ``info``'s (sync's attribute drift; no new version)."""
        tags = dict(info.tags)
        try:
            if ref.type is ObjectType.SECRET:
                await self.clients.secrets.update_secret_properties(
                    ref.name,
                    version,
                    enabled=info.enabled,
                    tags=tags,
                    content_type=info.content_type,
                    not_before=info.not_before,
                    expires_on=info.expires_on,
                )
            elif ref.type is ObjectType.KEY:
                await self.clients.keys.update_key_properties(
                    ref.name,
                    version,
                    enabled=info.enabled,
                    tags=tags,
                    not_before=info.not_before,
                    expires_on=info.expires_on,
                )
            else:
                await self.clients.certificates.update_certificate_properties(
                    ref.name, version, enabled=info.enabled, tags=tags
                )
        except (AzureError, ValueError) as exc:
            raise from_azure(exc, vault=self.label, operation="update", subject=f"{ref} version {version}") from exc

    async def delete(self, ref: ObjectRef) -> None:
        """Soft-delete an object (sync --delete); never a purge. Returns once Key Vault reports it deleted."""
        try:
            if ref.type is ObjectType.SECRET:
                await self.clients.secrets.delete_secret(ref.name, _polling_interval=0.5)
            elif ref.type is ObjectType.KEY:
                await self.clients.keys.delete_key(ref.name, _polling_interval=0.5)
            else:
                await self.clients.certificates.delete_certificate(ref.name, _polling_interval=0.5)
        except (AzureError, ValueError) as exc:
            if is_not_found(exc):
                return  # deleted meanwhile, or by an attempt whose answer was lost
            raise from_azure(exc, vault=self.label, operation="delete", subject=str(ref)) from exc

    async def backup(self, ref: ObjectRef) -> bytes:
        backup = self._sdk(ref.type, "backup")
        result: bytes = await self._post("backup", str(ref), lambda: backup(ref.name, retry_total=0))
        return result

    async def restore(self, ref: ObjectRef, blob: bytes) -> str | None:
        """Restore a blob; returns the name the vault gave the restored object (the blob's own)."""
        restored = await self._post("restore", str(ref), lambda: self._sdk(ref.type, "restore")(blob, retry_total=0))
        name = getattr(restored, "name", None)
        return str(name) if name else None

    async def recover_deleted(self, ref: ObjectRef) -> None:
        """Recover a soft-deleted object (the name is usable once Key Vault finishes; callers settle that)."""
        await self._post("recover", str(ref), lambda: self._sdk(ref.type, "recover")(ref.name))

    async def purge_deleted(self, ref: ObjectRef) -> None:
        """Purge a soft-deleted object (destructive; only on the user's explicit --purge-deleted).

        A 404 means it is gone already: an earlier attempt whose answer was lost purged it.
        """
        try:
            await self._post("purge", str(ref), lambda: self._sdk(ref.type, "purge")(ref.name, retry_total=0))
        except ObjectNotFoundError:
            log.debug("%s was purged already", ref)


_SDK_METHODS: dict[ObjectType, tuple[str, dict[str, str]]] = {
    ObjectType.SECRET: (
        "secrets",
        {
            "list": "list_properties_of_secrets",
            "deleted": "list_deleted_secrets",
            "versions": "list_properties_of_secret_versions",
            "backup": "backup_secret",
            "restore": "restore_secret_backup",
            "recover": "recover_deleted_secret",
            "purge": "purge_deleted_secret",
        },
    ),
    ObjectType.KEY: (
        "keys",
        {
            "list": "list_properties_of_keys",
            "deleted": "list_deleted_keys",
            "versions": "list_properties_of_key_versions",
            "backup": "backup_key",
            "restore": "restore_key_backup",
            "recover": "recover_deleted_key",
            "purge": "purge_deleted_key",
        },
    ),
    ObjectType.CERTIFICATE: (
        "certificates",
        {
            "list": "list_properties_of_certificates",
            "deleted": "list_deleted_certificates",
            "versions": "list_properties_of_certificate_versions",
            "backup": "backup_certificate",
            "restore": "restore_certificate_backup",
            "recover": "recover_deleted_certificate",
            "purge": "purge_deleted_certificate",
        },
    ),
}
