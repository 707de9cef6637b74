"""Fill an (emulated) vault through the Azure SDK: ``python examples/seed.py VAULT_URL [--secrets N] ...``.

Uses DefaultAzureCredential and KVMIGRATE_CA_BUNDLE, exactly as kvmigrate does, so it runs against the emulator
after `set -a; . ./emulator.env; set +a`. It rides out Key Vault's throttling as kvmigrate does: azure-core gives up
on a 429 after three tries (and never retries a POST such as a key create on one without Retry-After), while Key
Vault counts over 10-second windows, so every write goes through ``patiently``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.certificates import CertificatePolicy
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient

T = TypeVar("T")


async def patiently(call: Callable[[], Awaitable[T]]) -> T:
    """Retry a write the vault throttled (429), waiting 1, 2, 4 ... up to 16 s, for up to two minutes."""
    delay, waited = 1.0, 0.0
    while True:
        try:
            return await call()
        except HttpResponseError as exc:
            if exc.status_code != 429 or waited > 120:
                raise
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 16.0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vault_url")
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--keys", type=int, default=2)
    parser.add_argument("--certificates", type=int, default=1)
    parser.add_argument("--prefix", default="app")
    args = parser.parse_args()
    options = {
        "connection_verify": os.environ["KVMIGRATE_CA_BUNDLE"],
        "verify_challenge_resource": False,  # loopback emulator URLs only; never against real vaults
        "retry_status": 0,  # a 429 is waited out by ``patiently``, whatever the method
    }
    async with DefaultAzureCredential() as credential:
        secrets = SecretClient(args.vault_url, credential, **options)
        keys = KeyClient(args.vault_url, credential, **options)
        certificates = CertificateClient(args.vault_url, credential, **options)
        async with secrets, keys, certificates:
            gate = asyncio.Semaphore(16)
            tags = {"app": args.prefix}

            async def secret(i: int) -> None:
                async with gate:
                    for v in range(args.versions):
                        name, value = f"{args.prefix}-secret-{i:03d}", f"example-value-{i}-{v}"
                        await patiently(lambda name=name, value=value: secrets.set_secret(name, value, tags=tags))

            await asyncio.gather(*(secret(i) for i in range(args.secrets)))
            for i in range(args.keys):
                await patiently(lambda i=i: keys.create_rsa_key(f"{args.prefix}-key-{i}", size=2048))
            for i in range(args.certificates):
                await patiently(
                    lambda i=i: certificates.create_certificate(
                        f"{args.prefix}-cert-{i}", CertificatePolicy.get_default(), _polling_interval=0.2
                    )
                )
    print(
        f"seeded {args.vault_url}: {args.secrets} secrets x {args.versions} versions, {args.keys} keys, "
        f"{args.certificates} certificates"
    )


if __name__ == "__main__":
    asyncio.run(main())
