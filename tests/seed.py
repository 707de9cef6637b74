"""Fill an emulated vault through the SDK with a mixed, realistic set of objects, and compare two vaults."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from azure.keyvault.certificates import CertificatePolicy

from kvmigrate.vault.clients import VaultClients


@dataclass
class Seeded:
    secrets: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.secrets) + len(self.keys) + len(self.certificates)


async def seed_secrets(clients: VaultClients, count: int, *, prefix: str = "s", versions: int = 1) -> list[str]:
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    semaphore = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        async with semaphore:
            for v in range(versions):
                await clients.secrets.set_secret(name, f"value-{name}-{v}")

    await asyncio.gather(*(one(name) for name in names))
    return names


async def seed_mixed(clients: VaultClients, *, secrets: int = 200, certificates: int = 2) -> Seeded:
    """Secrets (some multi-version, tagged, typed, disabled, expiring), RSA and EC keys, certificates."""
    seeded = Seeded()
    seeded.secrets = await seed_secrets(clients, secrets)
    expiry = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    for i in range(5):
        name = f"multi-{i}"
        for v in range(6):
            await clients.secrets.set_secret(name, f"m-{i}-{v}", tags={"v": str(v)}, content_type="text/plain")
        seeded.secrets.append(name)
    await clients.secrets.set_secret("disabled-one", "off", enabled=False)
    await clients.secrets.set_secret("expiring", "soon", expires_on=expiry, tags={"owner": "ops"})
    seeded.secrets += ["disabled-one", "expiring"]
    for i in range(2):
        for _ in range(3):
            await clients.keys.create_rsa_key(f"rsa-{i}", size=2048, tags={"kind": "rsa"})
        seeded.keys.append(f"rsa-{i}")
    for curve in ("P-256", "P-384"):
        name = f"ec-{curve.lower()}"
        for _ in range(2):
            await clients.keys.create_ec_key(name, curve=curve)
        seeded.keys.append(name)
    for i in range(certificates):
        name = f"cert-{i}"
        await clients.certificates.create_certificate(name, CertificatePolicy.get_default(), _polling_interval=0.1)
        seeded.certificates.append(name)
    return seeded


async def version_map(clients: VaultClients) -> dict[str, dict[str, tuple[object, ...]]]:
    """type → name → sorted (version id, enabled, exp, tags, content type) tuples, managed objects flagged."""
    result: dict[str, dict[str, tuple[object, ...]]] = {"secrets": {}, "keys": {}, "certificates": {}}
    async for s in clients.secrets.list_properties_of_secrets():
        versions = [
            (v.version, v.enabled, v.expires_on, tuple(sorted((v.tags or {}).items())), v.content_type, v.created_on)
            async for v in clients.secrets.list_properties_of_secret_versions(s.name)
        ]
        result["secrets"][s.name] = (bool(s.managed), *sorted(versions, key=lambda t: str(t[0])))
    async for k in clients.keys.list_properties_of_keys():
        versions = [
            (v.version, v.enabled, v.expires_on, tuple(sorted((v.tags or {}).items())), v.created_on)
            async for v in clients.keys.list_properties_of_key_versions(k.name)
        ]
        result["keys"][k.name] = (bool(k.managed), *sorted(versions, key=lambda t: str(t[0])))
    async for c in clients.certificates.list_properties_of_certificates():
        versions = [
            (v.version, v.enabled, v.x509_thumbprint, v.created_on)
            async for v in clients.certificates.list_properties_of_certificate_versions(c.name)
        ]
        result["certificates"][c.name] = (False, *sorted(versions, key=lambda t: str(t[0])))
    return result


def fill(
    emulator: Any,
    vault: str,
    count: int,
    *,
    prefix: str = "s",
    versions: int = 1,
    start: int = 1_700_000_000,
) -> list[str]:
    """Put ``count`` secrets of ``versions`` versions each straight into an emulated vault's store.

    Why not through the SDK: seeding a thousand objects would spend a minute on the vault's create budget before the
    test begins. Each version gets its own creation second, so the order a copy must keep is unambiguous; values are
    ``value-<name>-<index>``. Everything a test then checks goes through the SDK.
    """
    from kvmigrate.emulator.store import Version, new_version_id

    store = emulator.vaults[vault].vault.secrets
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    for name in names:
        for index in range(versions):
            moment = start + index * 60
            version = Version(
                id=new_version_id(),
                created=moment,
                updated=moment,
                tags={"rev": str(index)},
                content_type="text/plain",
                data={"value": f"value-{name}-{index}"},
            )
            store.upsert(name, version)
    return names


async def values_in_order(clients: VaultClients, name: str) -> list[tuple[Any, ...]]:
    """A secret's versions through the SDK, oldest first: (created second, value, enabled, tags, is current)."""
    props = [p async for p in clients.secrets.list_properties_of_secret_versions(name)]
    current = (await clients.secrets.get_secret(name)).properties.version
    props.sort(key=lambda p: (p.created_on, p.version == current))
    out = []
    for p in props:
        secret = await clients.secrets.get_secret(name, p.version) if p.enabled else None
        tags = tuple(sorted((p.tags or {}).items()))
        out.append((p.created_on, secret.value if secret else None, p.enabled, tags, p.version == current))
    return out


def same_history(source: list[tuple[Any, ...]], target: list[tuple[Any, ...]]) -> bool:
    """The target holds the source's versions, none twice, none missing, the same one current, in the same order.

    Key Vault's creation times have one-second resolution and a copy writes several versions a second, so the
    target's order is checked wherever its creation times tell it: a version created in a later second must come
    later in the source too.
    """

    def content(version: tuple[Any, ...]) -> tuple[Any, ...]:
        value, enabled, tags = version[1:4]
        return ("" if value is None else value, bool(enabled), tags)

    if sorted(map(content, source)) != sorted(map(content, target)) or len(source) != len(target):
        return False
    if not target or content(next(v for v in target if v[4])) != content(source[-1]):
        return False
    position = {content(version): index for index, version in enumerate(source)}
    ordered = sorted(target, key=lambda v: v[0])
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier[0] < later[0] and position[content(earlier)] > position[content(later)]:
            return False
    return True


async def assert_same_values(source: VaultClients, target: VaultClients, names: list[str]) -> None:
    """Every secret of ``names`` equal version by version (values in order, attributes, tags, current value)."""
    semaphore = asyncio.Semaphore(16)

    async def one(name: str) -> tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        async with semaphore:
            mine = await values_in_order(source, name)
            theirs = await values_in_order(target, name)
            return name, mine, theirs

    results = await asyncio.gather(*(one(name) for name in names))
    wrong = [(name, len(a), len(b)) for name, a, b in results if not same_history(a, b)]
    assert not wrong, f"{len(wrong)} secrets differ (name, source versions, target versions): {wrong[:5]}"
