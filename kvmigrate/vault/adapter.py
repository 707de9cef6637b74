"""Per-type list / versions / backup / restore on one vault, with Azure errors translated to ours.

The engine sees only ``ObjectRef``s, version ids and opaque blobs: values never pass through here in backup mode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from kvmigrate.errors import VaultError, from_azure
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.retry import call_with_retry
from kvmigrate.vault.clients import VaultClients

T = TypeVar("T")


@dataclass(frozen=True)
class VersionInfo:
    """One version's attributes as listings show them: what ``verify`` compares besides the material."""

    version: str
    enabled: bool | None
    not_before: datetime | None
    expires_on: datetime | None
    content_type: str | None
    tags: tuple[tuple[str, str], ...]
    thumbprint: str | None


@dataclass(frozen=True)
class Listed:
    """One object as a listing shows it: enough to filter and plan without reading it."""

    ref: ObjectRef
    managed: bool
    enabled: bool | None


class VaultAdapter:
    """The operations kvmigrate needs from one vault, the same shape for every object type."""

    def __init__(self, clients: VaultClients, *, label: str, attempts: int = 10) -> None:
        self.clients = clients
        self.label = label  # how messages name this vault (its URL)
        self.attempts = attempts

    async def _call(self, operation: str, subject: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK call; retry what azure-core will not (POST on 429 without Retry-After, lost answers)."""
        try:
            return await call_with_retry(call, what=f"{operation} {subject}", attempts=self.attempts,
                                         base_delay=0.5, max_delay=10.0)
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation=operation, subject=subject) from exc

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        """Stream the vault's objects of one type, page by page (managed ones included, flagged)."""
        pager: Any
        if object_type is ObjectType.SECRET:
            pager = self.clients.secrets.list_properties_of_secrets()
        elif object_type is ObjectType.KEY:
            pager = self.clients.keys.list_properties_of_keys()
        else:
            pager = self.clients.certificates.list_properties_of_certificates()
        try:
            async for props in pager:
                yield Listed(ObjectRef(object_type, props.name), bool(getattr(props, "managed", False)),
                             props.enabled)
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=object_type.plural) from exc

    async def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        """Stream the names of soft-deleted objects of one type."""
        pager: Any
        if object_type is ObjectType.SECRET:
            pager = self.clients.secrets.list_deleted_secrets()
        elif object_type is ObjectType.KEY:
            pager = self.clients.keys.list_deleted_keys()
        else:
            pager = self.clients.certificates.list_deleted_certificates()
        try:
            async for deleted in pager:
                yield deleted.name
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=f"deleted {object_type.plural}") \
                from exc

    async def versions(self, ref: ObjectRef) -> list[str]:
        """The object's version ids, sorted (an absent name has none)."""
        pager: Any
        if ref.type is ObjectType.SECRET:
            pager = self.clients.secrets.list_properties_of_secret_versions(ref.name)
        elif ref.type is ObjectType.KEY:
            pager = self.clients.keys.list_properties_of_key_versions(ref.name)
        else:
            pager = self.clients.certificates.list_properties_of_certificate_versions(ref.name)
        try:
            return sorted([props.version async for props in pager])
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=str(ref)) from exc

    async def version_infos(self, ref: ObjectRef) -> list[VersionInfo]:
        """Every version with its attributes and tags, sorted by version id (an absent name has none)."""
        pager: Any
        if ref.type is ObjectType.SECRET:
            pager = self.clients.secrets.list_properties_of_secret_versions(ref.name)
        elif ref.type is ObjectType.KEY:
            pager = self.clients.keys.list_properties_of_key_versions(ref.name)
        else:
            pager = self.clients.certificates.list_properties_of_certificate_versions(ref.name)
        infos = []
        try:
            async for props in pager:
                thumbprint = getattr(props, "x509_thumbprint", None)
                infos.append(VersionInfo(
                    version=props.version, enabled=props.enabled, not_before=props.not_before,
                    expires_on=props.expires_on, content_type=getattr(props, "content_type", None),
                    tags=tuple(sorted((props.tags or {}).items())),
                    thumbprint=thumbprint.hex() if isinstance(thumbprint, bytes) else None))
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=str(ref)) from exc
        return sorted(infos, key=lambda info: info.version)

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
                material = json.dumps({k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()},
                                      sort_keys=True, default=str).encode()
            else:
                certificate = await self.clients.certificates.get_certificate_version(ref.name, version)
                material = bytes(certificate.cer or b"")
        except HttpResponseError as exc:
            if exc.status_code == 403 and "disabled" in str(exc.message).lower():
                return None
            raise from_azure(exc, vault=self.label, operation="get", subject=subject) from exc
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="get", subject=subject) from exc
        return hashlib.sha256(material).hexdigest()

    async def backup(self, ref: ObjectRef) -> bytes:
        if ref.type is ObjectType.SECRET:
            return await self._call("backup", str(ref), lambda: self.clients.secrets.backup_secret(ref.name))
        if ref.type is ObjectType.KEY:
            return await self._call("backup", str(ref), lambda: self.clients.keys.backup_key(ref.name))
        return await self._call("backup", str(ref),
                                lambda: self.clients.certificates.backup_certificate(ref.name))

    wants_versions = False  # a vault learns versions from the blob itself

    async def restore(self, ref: ObjectRef, blob: bytes, *, versions: tuple[str, ...] = (),
                      enabled: bool | None = None) -> None:
        if ref.type is ObjectType.SECRET:
            await self._call("restore", str(ref), lambda: self.clients.secrets.restore_secret_backup(blob))
        elif ref.type is ObjectType.KEY:
            await self._call("restore", str(ref), lambda: self.clients.keys.restore_key_backup(blob))
        else:
            await self._call("restore", str(ref),
                             lambda: self.clients.certificates.restore_certificate_backup(blob))

    async def recover_deleted(self, ref: ObjectRef) -> None:
        """Recover a soft-deleted object and wait until it is back."""
        if ref.type is ObjectType.SECRET:
            await self._call("recover", str(ref), lambda: self.clients.secrets.recover_deleted_secret(ref.name))
        elif ref.type is ObjectType.KEY:
            await self._call("recover", str(ref), lambda: self.clients.keys.recover_deleted_key(ref.name))
        else:
            await self._call("recover", str(ref),
                             lambda: self.clients.certificates.recover_deleted_certificate(ref.name))

    async def purge_deleted(self, ref: ObjectRef) -> None:
        """Purge a soft-deleted object (destructive; only on the user's explicit --purge-deleted)."""
        if ref.type is ObjectType.SECRET:
            await self._call("purge", str(ref), lambda: self.clients.secrets.purge_deleted_secret(ref.name))
        elif ref.type is ObjectType.KEY:
            await self._call("purge", str(ref), lambda: self.clients.keys.purge_deleted_key(ref.name))
        else:
            await self._call("purge", str(ref),
                             lambda: self.clients.certificates.purge_deleted_certificate(ref.name))


__all__ = ["Listed", "VaultAdapter", "VaultError"]
