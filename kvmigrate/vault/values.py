"""Value mode on one vault: read secret and certificate versions with their values, and write them again.

This is the only place a secret value passes through kvmigrate. It lives in ``VersionValue.value`` for as long as
one object is in flight, never in a repr, log line, exception message or file: ``VersionValue`` hides it from
``repr`` and the digest is what comparisons use.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import CertificatePolicy

from kvmigrate.errors import KvmigrateError, from_azure
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.vault.clients import VaultClients

PKCS12 = "application/x-pkcs12"


class NotExportableError(KvmigrateError):
    """The object cannot be moved by value: a key, or a certificate whose private key is not exportable."""


@dataclass(repr=False)
class VersionValue:
    """One version to recreate: its attributes and (hidden) value; ``value`` None when the service refuses it."""

    version: str
    created: datetime | None
    enabled: bool | None
    not_before: datetime | None
    expires_on: datetime | None
    content_type: str | None
    tags: dict[str, str] | None
    value: str | None = field(default=None)
    thumbprint: str | None = None  # certificates: the same certificate, however its PFX was re-encoded

    @property
    def digest(self) -> str | None:
        """What identifies the content: a certificate's thumbprint, else the SHA-256 of the value."""
        if self.thumbprint is not None:
            return self.thumbprint
        return None if self.value is None else hashlib.sha256(self.value.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:  # never the value
        return f"VersionValue(version={self.version!r}, enabled={self.enabled!r})"


@dataclass(repr=False)
class ValuePayload:
    """Everything needed to recreate one object by value, oldest version first."""

    ref: ObjectRef
    versions: list[VersionValue]
    policy: CertificatePolicy | None = None

    def __len__(self) -> int:
        return len(self.versions)

    def __repr__(self) -> str:
        return f"ValuePayload({self.ref}, {len(self.versions)} versions)"


def _by_creation(props: Any) -> tuple[datetime, str]:
    return (props.created_on or datetime.min, props.version)


class ValueAdapter:
    """Read and write values of one vault; errors come out translated, without values in them."""

    def __init__(self, clients: VaultClients, *, label: str) -> None:
        self.clients = clients
        self.label = label

    async def read(self, ref: ObjectRef, *, latest_only: bool = False) -> ValuePayload:
        """Versions of ``ref`` in creation order with their values (secrets; certificates via their secret)."""
        if ref.type is ObjectType.KEY:
            raise NotExportableError(
                f"{ref}: Key Vault keys cannot be exported; move keys with backup mode inside "
                "one subscription and geography"
            )
        try:
            policy = None
            if ref.type is ObjectType.CERTIFICATE:
                policy = await self.clients.certificates.get_certificate_policy(ref.name)
                if policy.exportable is False:
                    raise NotExportableError(
                        f"{ref}: its private key is not exportable; re-issue it in the target "
                        "or move it with backup mode inside one subscription and geography"
                    )
                pager: Any = self.clients.certificates.list_properties_of_certificate_versions(ref.name)
            else:
                pager = self.clients.secrets.list_properties_of_secret_versions(ref.name)
            props = sorted([p async for p in pager], key=_by_creation)
            # Timestamps have one-second resolution: versions made within a second tie. Whatever their order,
            # the current version must be written last so it is current in the target too.
            current = await self._current_version(ref)
            props.sort(key=lambda p: p.version == current)
            if latest_only:
                props = props[-1:]
            versions = []
            for p in props:
                secret_props = p
                value: str | None = None
                try:
                    secret = await self.clients.secrets.get_secret(ref.name, p.version)
                    value, secret_props = secret.value, secret.properties
                    del secret
                except HttpResponseError as exc:
                    if exc.status_code != 403 or "disabled" not in str(exc.message).lower():
                        raise
                thumbprint = getattr(p, "x509_thumbprint", None)
                versions.append(
                    VersionValue(
                        p.version,
                        p.created_on,
                        p.enabled,
                        getattr(p, "not_before", None),
                        p.expires_on,
                        getattr(secret_props, "content_type", None),
                        dict(p.tags) if p.tags else None,
                        value,
                        thumbprint.hex() if isinstance(thumbprint, bytes) else None,
                    )
                )
            return ValuePayload(ref, versions, policy)
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="get", subject=str(ref)) from exc

    async def _current_version(self, ref: ObjectRef) -> str | None:
        try:
            if ref.type is ObjectType.CERTIFICATE:
                properties = (await self.clients.certificates.get_certificate(ref.name)).properties
                return properties.version if properties else None
            return (await self.clients.secrets.get_secret(ref.name)).properties.version
        except HttpResponseError as exc:
            if exc.status_code == 403:  # the current secret version is disabled: listing order decides
                return None
            raise

    async def is_exportable(self, ref: ObjectRef) -> bool:
        """Whether a certificate's private key can leave the vault (its policy says ``exportable``)."""
        try:
            policy = await self.clients.certificates.get_certificate_policy(ref.name)
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="get", subject=f"{ref} policy") from exc
        return policy.exportable is not False

    async def existing(self, ref: ObjectRef) -> list[VersionValue]:
        """The target's versions of ``ref`` with values, oldest first (to find writes a crash left unjournaled).

        None when the target has no such object: a crash may come after the journal said ``restoring`` and before
        the first write.
        """
        if ref.type is ObjectType.KEY:
            return []
        try:
            return (await self.read(ref)).versions
        except KvmigrateError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return []
            raise

    async def write(self, ref: ObjectRef, version: VersionValue, policy: CertificatePolicy | None) -> str:
        """Create one version in this vault; returns its new version id. Raises azure-core errors untranslated
        so the caller can tell a refused write from an answer lost after the write."""
        assert version.value is not None
        if ref.type is ObjectType.SECRET:
            created = await self.clients.secrets.set_secret(
                ref.name,
                version.value,
                enabled=version.enabled,
                tags=version.tags,
                content_type=version.content_type,
                not_before=version.not_before,
                expires_on=version.expires_on,
                retry_total=0,
            )
            return str(created.properties.version)
        is_pfx = (version.content_type or PKCS12).lower().startswith(PKCS12)
        material = base64.b64decode(version.value) if is_pfx else version.value.encode("utf-8")
        imported = await self.clients.certificates.import_certificate(
            ref.name, material, enabled=version.enabled, tags=version.tags, policy=policy, retry_total=0
        )
        del material
        assert imported.properties is not None
        return str(imported.properties.version)

    def translate(self, exc: AzureError, ref: ObjectRef) -> KvmigrateError:
        return from_azure(
            exc, vault=self.label, operation="set" if ref.type is ObjectType.SECRET else "import", subject=str(ref)
        )
