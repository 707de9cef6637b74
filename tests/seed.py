"""Fill an emulated vault through the SDK with a mixed, realistic set of objects, and compare two vaults."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

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
