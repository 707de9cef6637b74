"""Fill an (emulated) vault through the Azure SDK: ``python examples/seed.py VAULT_URL [--secrets N] ...``.

Uses DefaultAzureCredential and KVMIGRATE_CA_BUNDLE, exactly as kvmigrate does, so it runs against the emulator
after `set -a; . ./emulator.env; set +a`.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.certificates import CertificatePolicy
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vault_url")
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--keys", type=int, default=2)
    parser.add_argument("--certificates", type=int, default=1)
    parser.add_argument("--prefix", default="app")
    args = parser.parse_args()
    options = {"connection_verify": os.environ["KVMIGRATE_CA_BUNDLE"], "verify_challenge_resource": False}
    async with DefaultAzureCredential() as credential:
        secrets = SecretClient(args.vault_url, credential, **options)
        keys = KeyClient(args.vault_url, credential, **options)
        certificates = CertificateClient(args.vault_url, credential, **options)
        async with secrets, keys, certificates:
            gate = asyncio.Semaphore(16)

            async def secret(i: int) -> None:
                async with gate:
                    for v in range(args.versions):
                        await secrets.set_secret(
                            f"{args.prefix}-secret-{i:03d}", f"example-value-{i}-{v}", tags={"app": args.prefix}
                        )

            await asyncio.gather(*(secret(i) for i in range(args.secrets)))
            for i in range(args.keys):
                await keys.create_rsa_key(f"{args.prefix}-key-{i}", size=2048)
            for i in range(args.certificates):
                await certificates.create_certificate(
                    f"{args.prefix}-cert-{i}", CertificatePolicy.get_default(), _polling_interval=0.2
                )
    print(
        f"seeded {args.vault_url}: {args.secrets} secrets x {args.versions} versions, {args.keys} keys, "
        f"{args.certificates} certificates"
    )


if __name__ == "__main__":
    asyncio.run(main())
