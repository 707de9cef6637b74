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
            return await call_with_retry(
                call, what=f"{operation} {subject}", attempts=self.attempts, base_delay=0.5, max_delay=10.0
            )
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation=operation, subject=subject) from exc

    def _sdk(self, object_type: ObjectType, operation: str) -> Any:
        """The SDK method for ``operation`` on ``object_type`` (the three clients name them differently)."""
        client, methods = _SDK_METHODS[object_type]
        return getattr(getattr(self.clients, client), methods[operation])

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        """Stream the vault's objects of one type, page by page (managed ones included, flagged)."""
        try:
            async for props in self._sdk(object_type, "list")():
                yield Listed(ObjectRef(object_type, props.name), bool(getattr(props, "managed", False)), props.enabled)
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=object_type.plural) from exc

    async def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        """Stream the names of soft-deleted objects of one type."""
        try:
            async for deleted in self._sdk(object_type, "deleted")():
                yield deleted.name
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="list", subject=f"deleted {object_type.plural}") from exc

    async def versions(self, ref: ObjectRef) -> list[str]:
        """The object's version ids, sorted (an absent name has none)."""
        return [info.version for info in await self.version_infos(ref)]

    async def version_infos(self, ref: ObjectRef) -> list[VersionInfo]:
        """Every version with its attributes and tags, sorted by version id (an absent name has none)."""
        infos = []
        try:
            async for props in self._sdk(ref.type, "versions")(ref.name):
                thumbprint = getattr(props, "x509_thumbprint", None)
                infos.append(
                    VersionInfo(
                        version=props.version,
                        enabled=props.enabled,
                        not_before=props.not_before,
                        expires_on=props.expires_on,
                        content_type=getattr(props, "content_type", None),
                        tags=tuple(sorted((props.tags or {}).items())),
                        thumbprint=thumbprint.hex() if isinstance(thumbprint, bytes) else None,
                    )
                )
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
                material = json.dumps(
                    {k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()}, sort_keys=True, default=str
                ).encode()
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
        result: bytes = await self._call("backup", str(ref), lambda: self._sdk(ref.type, "backup")(ref.name))
        return result

    wants_versions = False  # a vault learns versions from the blob itself

    async def restore(
        self, ref: ObjectRef, blob: bytes, *, versions: tuple[str, ...] = (), enabled: bool | None = None
    ) -> None:
        await self._call("restore", str(ref), lambda: self._sdk(ref.type, "restore")(blob))

    async def recover_deleted(self, ref: ObjectRef) -> None:
        """Recover a soft-deleted object and wait until it is back."""
        await self._call("recover", str(ref), lambda: self._sdk(ref.type, "recover")(ref.name))

    async def purge_deleted(self, ref: ObjectRef) -> None:
        """Purge a soft-deleted object (destructive; only on the user's explicit --purge-deleted)."""
        await self._call("purge", str(ref), lambda: self._sdk(ref.type, "purge")(ref.name))


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


__all__ = ["Listed", "VaultAdapter", "VaultError"]
