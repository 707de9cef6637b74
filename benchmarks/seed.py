"""Fill emulated vaults fast while their limits are off (seeding is never measured).

Single-version secrets go straight to the emulator's ``PUT /secrets/{name}`` with aiohttp (64 in flight, a token
from the managed-identity endpoint): the SDK costs more CPU per request than the emulator and seeding 100,000 objects
through it would dominate the run. The mixed vault (versions, keys, certificates) goes through the official SDK.
Every loop here is bounded: a fixed list of names, a fixed number of attempts per request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.certificates import CertificatePolicy
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient

from benchmarks.emulator import require_loopback

API_VERSION = "7.5"
SEED_CONCURRENCY = 64
ATTEMPTS = 5


class SeedError(RuntimeError):
    """A seeding request failed ATTEMPTS times."""


async def identity_token(environment: dict[str, str]) -> str:
    """A Key Vault token from the emulator's App Service-style identity endpoint (what DefaultAzureCredential uses)."""
    endpoint = require_loopback(environment["IDENTITY_ENDPOINT"])
    params = {"resource": "https://vault.azure.net", "api-version": "2019-08-01"}
    headers = {"X-IDENTITY-HEADER": environment["IDENTITY_HEADER"]}
    async with aiohttp.ClientSession() as session, session.get(endpoint, params=params, headers=headers) as reply:
        reply.raise_for_status()
        body = await reply.json()
    return str(body["access_token"])


def secret_value(name: str, size: int = 64) -> str:
    """A deterministic value of ``size`` characters (Key Vault secrets are typically short)."""
    return (f"value-of-{name}-" * (size // 8 + 1))[:size]


async def touch_secrets(
    url: str, names: list[str], environment: dict[str, str], *, concurrency: int = SEED_CONCURRENCY
) -> None:
    """Change the tags of each secret in ``names`` (its current version): the drift a sync must follow."""
    body = {"tags": {"touched": "1"}}
    await _each_secret(url, names, environment, "PATCH", lambda name: (f"{name}/", body), concurrency)


async def seed_secrets(
    url: str, names: list[str], environment: dict[str, str], *, concurrency: int = SEED_CONCURRENCY
) -> None:
    """PUT one version of each secret in ``names`` into the vault at ``url``."""
    await _each_secret(url, names, environment, "PUT", lambda name: (name, {"value": secret_value(name)}), concurrency)


async def _each_secret(
    url: str,
    names: list[str],
    environment: dict[str, str],
    method: str,
    request: Callable[[str], tuple[str, dict[str, Any]]],
    concurrency: int,
) -> None:
    """Send ``method`` to ``/secrets/<path>`` with its JSON body for every name, ``concurrency`` at a time, retried."""
    require_loopback(url)
    token = await identity_token(environment)
    context = ssl.create_default_context(cafile=environment["KVMIGRATE_CA_BUNDLE"])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    pending = iter(names)

    async def worker(session: aiohttp.ClientSession) -> None:
        for name in pending:  # the shared iterator hands each name to exactly one worker
            path, body = request(name)
            for attempt in range(ATTEMPTS):
                async with session.request(
                    method,
                    f"{url}/secrets/{path}",
                    params={"api-version": API_VERSION},
                    json=body,
                    headers=headers,
                ) as reply:
                    await reply.read()
                    if reply.status == 200:
                        break
                    if reply.status not in (429, 500, 503) or attempt == ATTEMPTS - 1:
                        raise SeedError(f"{method} secret {name} in {url}: HTTP {reply.status}")
                await asyncio.sleep(0.2 * 2**attempt)

    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session, asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker(session))


@dataclass(frozen=True)
class MixedShape:
    """What the mixed vault holds (besides ``single`` single-version secrets)."""

    single: int = 400
    multi: int = 50  # secrets with ``versions`` versions each, tagged and typed
    versions: int = 5
    rsa_keys: int = 20  # two versions each
    ec_keys: int = 20
    certificates: int = 10  # each brings a managed key and secret

    @property
    def objects(self) -> int:
        """Objects a copy moves (certificates' managed keys and secrets travel inside the certificate)."""
        return self.single + self.multi + 2 + self.rsa_keys + self.ec_keys + self.certificates


@dataclass
class Seeded:
    secrets: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)


async def seed_mixed(url: str, environment: dict[str, str], shape: MixedShape) -> Seeded:
    """Multi-version, tagged, disabled and expiring secrets; RSA and EC keys; self-signed certificates."""
    import datetime as dt

    require_loopback(url)
    seeded = Seeded()
    options = {"connection_verify": environment["KVMIGRATE_CA_BUNDLE"], "verify_challenge_resource": False}
    single = [f"plain-{i:05d}" for i in range(shape.single)]
    await seed_secrets(url, single, environment)
    seeded.secrets += single
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    async with (
        credential,
        SecretClient(url, credential, **options) as secrets,
        KeyClient(url, credential, **options) as keys,
        CertificateClient(url, credential, **options) as certs,
    ):
        gate = asyncio.Semaphore(16)

        async def multi(i: int) -> None:
            async with gate:
                for v in range(shape.versions):
                    await secrets.set_secret(
                        f"multi-{i:03d}", f"m-{i}-{v}", content_type="text/plain", tags={"app": "bench", "v": str(v)}
                    )

        async def rsa(i: int) -> None:
            async with gate:
                for _ in range(2):
                    await keys.create_rsa_key(f"rsa-{i:03d}", size=2048, tags={"kind": "rsa"})

        async def ec(i: int) -> None:
            async with gate:
                await keys.create_ec_key(f"ec-{i:03d}", curve="P-256" if i % 2 else "P-384")

        async def certificate(i: int) -> None:
            async with gate:
                await certs.create_certificate(f"cert-{i:03d}", CertificatePolicy.get_default(), _polling_interval=0.1)

        async with asyncio.TaskGroup() as group:
            for i in range(shape.multi):
                group.create_task(multi(i))
            for i in range(shape.rsa_keys):
                group.create_task(rsa(i))
            for i in range(shape.ec_keys):
                group.create_task(ec(i))
            for i in range(shape.certificates):
                group.create_task(certificate(i))
        await secrets.set_secret("disabled-one", "off", enabled=False)
        await secrets.set_secret(
            "expiring", "soon", expires_on=dt.datetime(2031, 1, 1, tzinfo=dt.UTC), tags={"owner": "ops"}
        )
    seeded.secrets += [f"multi-{i:03d}" for i in range(shape.multi)] + ["disabled-one", "expiring"]
    seeded.keys += [f"rsa-{i:03d}" for i in range(shape.rsa_keys)] + [f"ec-{i:03d}" for i in range(shape.ec_keys)]
    seeded.certificates += [f"cert-{i:03d}" for i in range(shape.certificates)]
    return seeded
