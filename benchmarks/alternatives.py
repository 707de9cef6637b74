"""The usual ways to copy a vault, written with the official async SDK: what kvmigrate is compared with.

``python -m benchmarks.alternatives STRATEGY SOURCE TARGET [--sample N]`` prints one JSON document:

* ``sequential-backup``: list, then back up and restore one object at a time (the common PowerShell / az scripts).
* ``sequential-value``: list secrets, then get the latest value and set it in the target, one at a time (what
  kvcopy-style tools do): latest version only, secrets only.
* ``unbounded-gather``: list, then ``asyncio.gather`` a backup + restore of every object at once, no limiter; the
  SDK's own retries only (azure-core does not retry a POST on a 429 without Retry-After).

Credentials come from ``DefaultAzureCredential`` (the emulator's managed-identity endpoint). TLS trust: the CA in
``BENCH_CONNECTION_VERIFY`` if set (``connection_verify=<CA file>``, as the SDK docs show for a private CA), else the
default store (the benchmark then points ``SSL_CERT_FILE`` at the emulator's CA). ``verify_challenge_resource`` is
off because the emulator is on loopback. ``--sample N`` stops after N objects, for extrapolation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient

from benchmarks.emulator import require_loopback

TYPES = ("secrets", "keys", "certificates")


@dataclass
class Tally:
    """What a strategy did; printed as JSON."""

    strategy: str
    listed: int = 0
    attempted: int = 0
    moved: int = 0
    failed: int = 0
    skipped_managed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    list_seconds: float = 0.0
    loop_seconds: float = 0.0
    sample: int | None = None

    def fail(self, error: Exception) -> None:
        self.failed += 1
        status = error.status_code if isinstance(error, HttpResponseError) else None
        self.errors[str(status) if status is not None else type(error).__name__] += 1


@dataclass
class Vault:
    secrets: SecretClient
    keys: KeyClient
    certificates: CertificateClient

    async def close(self) -> None:
        await self.secrets.close()
        await self.keys.close()
        await self.certificates.close()


def open_vault(url: str, credential: DefaultAzureCredential) -> Vault:
    verify: Any = os.environ.get("BENCH_CONNECTION_VERIFY") or True
    options = {"connection_verify": verify, "verify_challenge_resource": False}  # loopback emulator only
    require_loopback(url)
    return Vault(
        SecretClient(url, credential, **options),
        KeyClient(url, credential, **options),
        CertificateClient(url, credential, **options),
    )


async def list_names(vault: Vault, tally: Tally, types: tuple[str, ...], limit: int | None) -> list[tuple[str, str]]:
    """Every (type, name) the source lists, skipping certificates' managed keys and secrets; at most ``limit``."""
    found: list[tuple[str, str]] = []
    started = time.monotonic()
    for kind in types:
        pager: Any = {
            "secrets": vault.secrets.list_properties_of_secrets,
            "keys": vault.keys.list_properties_of_keys,
            "certificates": vault.certificates.list_properties_of_certificates,
        }[kind]()
        async for props in pager:
            if getattr(props, "managed", False):
                tally.skipped_managed += 1
                continue
            found.append((kind, props.name))
            if limit is not None and len(found) >= limit:
                break
        if limit is not None and len(found) >= limit:
            break
    tally.list_seconds = time.monotonic() - started
    tally.listed = len(found)
    return found


async def backup(vault: Vault, kind: str, name: str) -> bytes:
    if kind == "secrets":
        return await vault.secrets.backup_secret(name)
    if kind == "keys":
        return await vault.keys.backup_key(name)
    return await vault.certificates.backup_certificate(name)


async def restore(vault: Vault, kind: str, blob: bytes) -> None:
    if kind == "secrets":
        await vault.secrets.restore_secret_backup(blob)
    elif kind == "keys":
        await vault.keys.restore_key_backup(blob)
    else:
        await vault.certificates.restore_certificate_backup(blob)


async def sequential_backup(source: Vault, target: Vault, tally: Tally, limit: int | None) -> None:
    names = await list_names(source, tally, TYPES, limit)
    started = time.monotonic()
    for kind, name in names:
        tally.attempted += 1
        try:
            await restore(target, kind, await backup(source, kind, name))
            tally.moved += 1
        except AzureError as error:
            tally.fail(error)
    tally.loop_seconds = time.monotonic() - started


async def sequential_value(source: Vault, target: Vault, tally: Tally, limit: int | None) -> None:
    names = await list_names(source, tally, ("secrets",), limit)
    started = time.monotonic()
    for _, name in names:
        tally.attempted += 1
        try:
            secret = await source.secrets.get_secret(name)
            props = secret.properties
            await target.secrets.set_secret(
                name,
                secret.value or "",
                content_type=props.content_type,
                tags=props.tags,
                enabled=props.enabled,
                not_before=props.not_before,
                expires_on=props.expires_on,
            )
            tally.moved += 1
        except AzureError as error:
            tally.fail(error)
    tally.loop_seconds = time.monotonic() - started


async def unbounded_gather(source: Vault, target: Vault, tally: Tally, limit: int | None) -> None:
    names = await list_names(source, tally, TYPES, limit)
    started = time.monotonic()

    async def move(kind: str, name: str) -> None:
        await restore(target, kind, await backup(source, kind, name))

    tally.attempted = len(names)
    results = await asyncio.gather(*(move(kind, name) for kind, name in names), return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            tally.fail(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            tally.moved += 1
    tally.loop_seconds = time.monotonic() - started


STRATEGIES = {
    "sequential-backup": sequential_backup,
    "sequential-value": sequential_value,
    "unbounded-gather": unbounded_gather,
}


async def run(strategy: str, source_url: str, target_url: str, sample: int | None) -> Tally:
    tally = Tally(strategy, sample=sample)
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    source, target = open_vault(source_url, credential), open_vault(target_url, credential)
    try:
        await STRATEGIES[strategy](source, target, tally, sample)
    finally:
        await source.close()
        await target.close()
        await credential.close()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strategy", choices=sorted(STRATEGIES))
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--sample", type=int, default=None, help="stop after this many objects")
    args = parser.parse_args()
    started = time.monotonic()
    tally = asyncio.run(run(args.strategy, args.source, args.target, args.sample))
    print(
        json.dumps(
            {**asdict(tally), "errors": dict(tally.errors), "elapsed_seconds": round(time.monotonic() - started, 3)}
        )
    )


if __name__ == "__main__":
    main()
