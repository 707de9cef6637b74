"""``kvmigrate verify``: prove the target holds every selected source object, version for version.

Per object: it exists; the same version ids; per version the same enabled / nbf / exp / content type / tags; the same
material (secret value, public key, certificate), compared as SHA-256 digests in memory and never printed or written.
``no_values`` skips reading secret values, for identities without the get permission.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential

from kvmigrate.endpoints import Endpoints
from kvmigrate.inventory import is_selected
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.options import ConnectionOptions
from kvmigrate.vault.adapter import VaultAdapter, VersionInfo
from kvmigrate.vault.values import ValueAdapter, VersionValue

COMPARED_FIELDS = ("enabled", "not_before", "expires_on", "content_type", "tags", "thumbprint")


@dataclass(frozen=True)
class Finding:
    type: str
    name: str
    version: str | None = None
    field: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "name": self.name}
        for key in ("version", "field", "detail"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


@dataclass
class VerifyReport:
    source: str
    target: str
    matched: int = 0
    missing: list[Finding] = field(default_factory=list)
    different: list[Finding] = field(default_factory=list)
    unverified: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.different

    def as_dict(self) -> dict[str, Any]:
        def key(f: Finding) -> tuple[str, str, str]:
            return (f.type, f.name.lower(), f.version or "")

        return {
            "source": self.source,
            "target": self.target,
            "ok": self.ok,
            "matched": self.matched,
            "missing": [f.as_dict() for f in sorted(self.missing, key=key)],
            "different": [f.as_dict() for f in sorted(self.different, key=key)],
            "unverified": [f.as_dict() for f in sorted(self.unverified, key=key)],
        }


async def verify(
    source: str,
    target: str,
    *,
    types: tuple[ObjectType, ...],
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    no_values: bool = False,
    by_value: bool = False,
    latest_only: bool = False,
    concurrency: int = 16,
    rps: float = 350.0,
    connection: ConnectionOptions | None = None,
    credential: AsyncTokenCredential | None = None,
) -> VerifyReport:
    """Compare every non-managed, selected source object with the target."""
    connection = connection or ConnectionOptions(ca_bundle=None, tenant_id=None)
    async with Endpoints("copy", source, target, connection=connection, rps=rps, credential=credential) as vaults:
        report = VerifyReport(vaults.source_label, vaults.target_label)
        assert isinstance(vaults.source, VaultAdapter) and isinstance(vaults.target, VaultAdapter)
        gate = asyncio.Semaphore(concurrency)
        async with asyncio.TaskGroup() as group:
            for object_type in types:
                async for listed in vaults.source.list_objects(object_type):
                    if listed.managed or not is_selected(listed.ref.name, include, exclude):
                        continue
                    await gate.acquire()
                    if by_value:
                        group.create_task(
                            _verify_by_value(report, listed.ref, vaults.source, vaults.target, latest_only, gate)
                        )
                    else:
                        group.create_task(
                            _verify_one(report, listed.ref, vaults.source, vaults.target, no_values, gate)
                        )
    return report


async def _verify_one(
    report: VerifyReport,
    ref: ObjectRef,
    source: VaultAdapter,
    target: VaultAdapter,
    no_values: bool,
    gate: asyncio.Semaphore,
) -> None:
    try:
        kind = ref.type.value
        source_versions, target_versions = await asyncio.gather(source.version_infos(ref), target.version_infos(ref))
        if not target_versions:
            report.missing.append(Finding(kind, ref.name))
            return
        found: list[Finding] = []
        theirs = {info.version: info for info in target_versions}
        ours = {info.version: info for info in source_versions}
        for version in sorted(ours.keys() - theirs.keys()):
            found.append(Finding(kind, ref.name, version, "versions", "version missing in the target"))
        for version in sorted(theirs.keys() - ours.keys()):
            found.append(Finding(kind, ref.name, version, "versions", "extra version in the target"))
        for version in sorted(ours.keys() & theirs.keys()):
            found += _compare_attributes(ref, ours[version], theirs[version])
            if ref.type is ObjectType.SECRET and no_values:
                continue
            mine, other = await asyncio.gather(
                source.material_digest(ref, version), target.material_digest(ref, version)
            )
            if mine is None or other is None:
                report.unverified.append(
                    Finding(
                        kind,
                        ref.name,
                        version,
                        _material_field(ref.type),
                        "disabled: the service does not show its value",
                    )
                )
            elif mine != other:
                found.append(Finding(kind, ref.name, version, _material_field(ref.type)))
        if found:
            report.different += found
        else:
            report.matched += 1
    finally:
        gate.release()


def _compare_attributes(ref: ObjectRef, mine: VersionInfo, other: VersionInfo) -> list[Finding]:
    return [
        Finding(ref.type.value, ref.name, mine.version, name)
        for name in COMPARED_FIELDS
        if getattr(mine, name) != getattr(other, name)
    ]


def _material_field(object_type: ObjectType) -> str:
    return {ObjectType.SECRET: "value", ObjectType.KEY: "key", ObjectType.CERTIFICATE: "cer"}[object_type]


VALUE_FIELDS = ("enabled", "not_before", "expires_on", "content_type", "tags")


async def _verify_by_value(
    report: VerifyReport,
    ref: ObjectRef,
    source: VaultAdapter,
    target: VaultAdapter,
    latest_only: bool,
    gate: asyncio.Semaphore,
) -> None:
    """Value mode recreated versions under new ids: compare them in creation order, by content and attributes."""
    try:
        kind = ref.type.value
        if ref.type is ObjectType.KEY:
            report.unverified.append(Finding(kind, ref.name, None, "key", "keys do not move in value mode"))
            return
        ours_all, theirs = await asyncio.gather(
            ValueAdapter(source.clients, label=source.label).read(ref, latest_only=latest_only),
            ValueAdapter(target.clients, label=target.label).read(ref),
        )
        if not theirs.versions:
            report.missing.append(Finding(kind, ref.name))
            return
        for hidden in (v for v in ours_all.versions if v.value is None):
            report.unverified.append(
                Finding(kind, ref.name, hidden.version, "value", "disabled: the service does not show its value")
            )
        ours = [v for v in ours_all.versions if v.value is not None]
        others = theirs.versions[-len(ours) :] if latest_only and ours else theirs.versions
        found: list[Finding] = []
        if len(ours) != len(others):
            found.append(
                Finding(
                    kind,
                    ref.name,
                    None,
                    "versions",
                    f"{len(ours)} readable versions in the source, {len(others)} in the target",
                )
            )
        remaining = list(others)
        for mine in ours:
            if not remaining:
                break
            # Creation times have one-second resolution: versions written within a second tie, so the order is
            # checked up to ties - the match must come from the earliest remaining second.
            tied = [other for other in remaining if other.created == remaining[0].created]
            match = next((o for o in tied if _differences(mine, o, ref) == []), None)
            other = match or tied[0]
            remaining.remove(other)
            found += [Finding(kind, ref.name, mine.version, name) for name in _differences(mine, other, ref)]
        if found:
            report.different += found
        else:
            report.matched += 1
    finally:
        gate.release()


def _differences(mine: VersionValue, other: VersionValue, ref: ObjectRef) -> list[str]:
    fields = [name for name in VALUE_FIELDS if getattr(mine, name) != getattr(other, name)]
    if mine.digest != other.digest:
        fields.insert(0, "value" if ref.type is ObjectType.SECRET else "cer")
    return fields
