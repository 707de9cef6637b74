"""Values on one vault: read secret and certificate versions with their values, and write one version.

This is the only place a secret value passes through kvmigrate. It lives in ``VersionValue.value`` for as long as one
object is in flight, never in a repr, log line, exception message or file: ``VersionValue`` hides it from ``repr``
and comparisons use its digest.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.keyvault.certificates import CertificatePolicy

from kvmigrate.errors import (
    KvmigrateError,
    ThrottledError,
    WriteUncertainError,
    first_line,
    from_azure,
    is_disabled_secret,
)
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.vault.adapter import VaultAdapter, VersionInfo
from kvmigrate.vault.clients import VaultClients

PKCS12 = "application/x-pkcs12"


@dataclass(repr=False)
class VersionValue:
    """One version with its attributes and (hidden) value; ``value`` is None where the service hides it."""

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


def signature(object_type: ObjectType, digest: str | None, info: VersionInfo | VersionValue) -> tuple[Any, ...]:
    """What must be equal for a target version to be the copy of a source version (content and attributes).

    A certificate's dates come from the certificate itself, so its content (thumbprint), enabled state and tags
    decide; a secret's every writable attribute does, and a key's too (it has no content type). Sync's attribute
    drift is this without the content.
    """
    tags = info.tags if isinstance(info.tags, tuple) else tuple(sorted((info.tags or {}).items()))
    if object_type is ObjectType.CERTIFICATE:
        return (digest, info.enabled, tags)
    if object_type is ObjectType.KEY:
        return (digest, info.enabled, info.not_before, info.expires_on, tags)
    return (digest, info.enabled, info.not_before, info.expires_on, info.content_type, tags)


@dataclass(repr=False)
class ValuePayload:
    """Everything needed to recreate one object by value: its readable versions oldest first, the current last."""

    ref: ObjectRef
    versions: list[VersionValue]
    hidden: list[str] = field(default_factory=list)  # versions the source will not show (disabled)
    policy: Any = None  # a certificate's policy, handed back to ``write`` as it came

    def __repr__(self) -> str:
        return f"ValuePayload({self.ref}, {len(self.versions)} versions, {len(self.hidden)} hidden)"


#: Before every version: where one without a creation time sorts (aware, so it compares with the SDK's times).
EARLIEST = datetime.min.replace(tzinfo=UTC)


def created_at(info: VersionInfo | VersionValue) -> datetime:
    """A version's creation time, to sort and compare versions by; ``EARLIEST`` when the service gave none."""
    return info.created or EARLIEST


def creation_order(infos: list[VersionInfo], current: str | None) -> list[VersionInfo]:
    """Oldest first; versions made within one second tie, so the current one goes last whatever its place."""
    ordered = sorted(infos, key=lambda info: (created_at(info), info.version))
    return sorted(ordered, key=lambda info: info.version == current)


class VaultValues:
    """Read and write values of one vault; errors come out translated, without values in them."""

    def __init__(self, clients: VaultClients, adapter: VaultAdapter) -> None:
        self.clients = clients
        self.adapter = adapter
        self.label = adapter.label

    async def current_version(self, ref: ObjectRef) -> str | None:
        """The current version id (None if the object is gone or its current version is hidden)."""
        try:
            if ref.type is ObjectType.CERTIFICATE:
                properties = (await self.clients.certificates.get_certificate(ref.name)).properties
                return properties.version if properties else None
            return str((await self.clients.secrets.get_secret(ref.name)).properties.version)
        except AzureError as exc:
            if is_disabled_secret(exc) or getattr(exc, "status_code", None) == 404:
                return None
            raise from_azure(exc, vault=self.label, operation="get", subject=str(ref)) from exc

    async def policy(self, ref: ObjectRef) -> CertificatePolicy:
        """A certificate's policy (``is_exportable`` reads it; ``write`` imports under it)."""
        try:
            return await self.clients.certificates.get_certificate_policy(ref.name)
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation="get", subject=f"{ref} policy") from exc

    @staticmethod
    def is_exportable(policy: Any) -> bool:
        return getattr(policy, "exportable", None) is not False

    async def read(self, ref: ObjectRef, infos: list[VersionInfo], *, latest_only: bool) -> ValuePayload:
        """The values of ``infos`` (creation order, current last); disabled versions are listed in ``hidden``."""
        current = await self.current_version(ref)
        ordered = creation_order(infos, current)
        if latest_only:
            ordered = ordered[-1:]
        payload = ValuePayload(ref, [])
        if ref.type is ObjectType.CERTIFICATE:
            payload.policy = await self.policy(ref)
        for info in ordered:
            value, content_type = await self._value(ref, info.version)
            if value is None:
                payload.hidden.append(info.version)
                continue
            payload.versions.append(
                VersionValue(
                    info.version,
                    info.created,
                    info.enabled,
                    info.not_before,
                    info.expires_on,
                    content_type if ref.type is ObjectType.SECRET else content_type or PKCS12,
                    dict(info.tags) or None,
                    value,
                    info.thumbprint,
                )
            )
        return payload

    async def digest(self, ref: ObjectRef, info: VersionInfo) -> str | None:
        """A version's content digest: a certificate's thumbprint (no read), else the SHA-256 of the value."""
        if ref.type is ObjectType.CERTIFICATE:
            return info.thumbprint
        value, _ = await self._value(ref, info.version)
        return None if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()

    async def _value(self, ref: ObjectRef, version: str) -> tuple[str | None, str | None]:
        """The secret behind a version (a certificate's PFX or PEM), and its content type; None when hidden."""
        try:
            secret = await self.clients.secrets.get_secret(ref.name, version)
        except AzureError as exc:
            if is_disabled_secret(exc):
                return None, None
            raise from_azure(exc, vault=self.label, operation="get", subject=f"{ref} version {version}") from exc
        return secret.value, secret.properties.content_type

    async def write(self, ref: ObjectRef, version: VersionValue, policy: Any) -> str:
        """Create one version; returns its new version id.

        A 429 raises ``ThrottledError`` (not written), a lost answer or a 5xx ``WriteUncertainError`` (perhaps
        written: the caller reads the target before anything is sent again), a refusal its translated error.
        Nothing below retries it: azure-core's retries are off for this call and the session never re-sends
        (``clients.py``).
        """
        operation = "set" if ref.type is ObjectType.SECRET else "import"
        try:
            return await self._write(ref, version, policy)
        except HttpResponseError as exc:
            status = exc.status_code
            if status == 429:
                message = f"vault {self.label} throttled the {operation} of {ref}"
                raise ThrottledError(message, vault=self.label, status=status) from exc
            if exc.status_code in (500, 502, 503, 504):
                message = f"vault {self.label}: the {operation} of {ref} got {status} (it may have happened)"
                raise WriteUncertainError(message, vault=self.label, status=status) from exc
            raise from_azure(exc, vault=self.label, operation=operation, subject=str(ref)) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise WriteUncertainError(
                f"vault {self.label} is unreachable ({operation} of {ref}): {first_line(str(exc))}", vault=self.label
            ) from exc
        except AzureError as exc:
            raise from_azure(exc, vault=self.label, operation=operation, subject=str(ref)) from exc

    async def _write(self, ref: ObjectRef, version: VersionValue, policy: Any) -> str:
        if version.value is None:
            raise KvmigrateError(f"{ref} version {version.version}: no value to write (a bug; please report it)")
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
        if imported.properties is None:
            raise KvmigrateError(f"{ref}: the import answered without a version (a bug; please report it)")
        return str(imported.properties.version)
