"""make demo: a real migration between two local emulated vaults.

Starts two emulated vaults (same subscription and geography), fills the source through the Azure SDK with a mixed set
- multi-version secrets, RSA and EC keys, certificates, and what no backup blob carries: a key rotation policy, the
certificate contacts and two issuers - runs ``kvmigrate copy`` and ``kvmigrate verify`` exactly as a user would (only
the CA file and the managed-identity variables point at the emulator), and shows what each vault holds afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.certificates import CertificateContact, CertificatePolicy
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient

from kvmigrate.emulator import Emulator, EmulatorConfig

SECRETS, VERSIONS, KEYS, CERTIFICATES = 120, 3, 6, 3
#: The one issuer whose password the demo passes in --issuer-credentials (the other is reported needs-credentials).
ISSUER_PASSWORD = "demo-only-issuer-password"


def clients(url: str, credential: DefaultAzureCredential, ca: str) -> tuple[SecretClient, KeyClient, CertificateClient]:
    options = {"connection_verify": ca, "verify_challenge_resource": False}  # loopback emulator only
    return (
        SecretClient(url, credential, **options),
        KeyClient(url, credential, **options),
        CertificateClient(url, credential, **options),
    )


async def fill(url: str, credential: DefaultAzureCredential, ca: str) -> None:
    secrets, keys, certificates = clients(url, credential, ca)
    async with secrets, keys, certificates:
        gate = asyncio.Semaphore(16)

        async def secret(i: int) -> None:
            async with gate:
                for v in range(VERSIONS if i % 4 == 0 else 1):
                    await secrets.set_secret(
                        f"app-secret-{i:03d}",
                        f"demo-value-{i}-{v}",
                        content_type="text/plain",
                        tags={"app": "demo", "version": str(v)},
                    )

        await asyncio.gather(*(secret(i) for i in range(SECRETS)))
        for i in range(KEYS):
            for _ in range(2):
                if i % 2:
                    await keys.create_ec_key(f"signing-key-{i}", curve="P-256")
                else:
                    await keys.create_rsa_key(f"wrapping-key-{i}", size=2048)
        await keys.update_key_rotation_policy(
            "wrapping-key-0",
            KeyRotationPolicy(),
            lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P90D")],
            expires_in="P180D",
        )
        await certificates.set_contacts([CertificateContact(email="pki@contoso.example", name="PKI team")])
        await certificates.create_issuer("digicert-prod", "DigiCert", account_id="contoso-1", password=ISSUER_PASSWORD)
        await certificates.create_issuer("globalsign-test", "GlobalSign", account_id="contoso-2", password="unknown")
        for i in range(CERTIFICATES):
            await certificates.create_certificate(
                f"tls-cert-{i}", CertificatePolicy.get_default(), _polling_interval=0.2
            )


async def describe(label: str, url: str, credential: DefaultAzureCredential, ca: str) -> None:
    secrets, keys, certificates = clients(url, credential, ca)
    async with secrets, keys, certificates:
        secret_names = [s.name async for s in secrets.list_properties_of_secrets() if not s.managed]
        versions = 0
        for name in secret_names:
            versions += len([v async for v in secrets.list_properties_of_secret_versions(name)])
        key_names = [k.name async for k in keys.list_properties_of_keys() if not k.managed]
        cert_names = [c.name async for c in certificates.list_properties_of_certificates()]
        rotating = 0
        for name in key_names:
            policy = await keys.get_key_rotation_policy(name)
            rotating += policy.id is not None
        try:
            contacts = len(await certificates.get_contacts())
        except ResourceNotFoundError:
            contacts = 0
        issuers = sorted([i.name or "" async for i in certificates.list_properties_of_issuers()])
    print(
        f"  {label:<7} {url}: {len(secret_names)} secrets ({versions} versions), {len(key_names)} keys "
        f"({rotating} with a rotation policy), {len(cert_names)} certificates, {contacts} contact(s), "
        f"issuers {issuers}"
    )


def kvmigrate(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvmigrate", *args]


async def main() -> int:
    config = EmulatorConfig.from_mapping(
        {"defaults": {"latency_ms": 15, "latency_jitter_ms": 10}, "vaults": {"source": {}, "target": {}}}
    )
    with tempfile.TemporaryDirectory(prefix="kvmigrate-demo-") as work:
        async with Emulator(config, state_dir=Path(work) / "emulator") as emulator:
            os.environ.update(emulator.environment())  # what `kvmigrate emulator --env-file` publishes
            ca = str(emulator.ca_file)
            source, target = emulator.vaults["source"].url, emulator.vaults["target"].url
            print(f"Started two emulated vaults; filling {source} through the Azure SDK...")
            async with DefaultAzureCredential() as credential:
                await fill(source, credential, ca)
                print("Before:")
                await describe("source", source, credential, ca)
                await describe("target", target, credential, ca)
                os.environ["KVMIGRATE_STATE_DIR"] = str(Path(work) / "state")  # the demo leaves nothing behind
                secrets_file = Path(work) / "issuers.json"
                secrets_file.write_text(json.dumps({"digicert-prod": ISSUER_PASSWORD}))
                secrets_file.chmod(0o600)
                extra = ["--issuer-credentials", str(secrets_file), "--allow-missing-issuer-credentials"]
                print(
                    "\n$ kvmigrate copy SOURCE TARGET --ca-bundle CA --issuer-credentials issuers.json "
                    "--allow-missing-issuer-credentials\n",
                    flush=True,
                )
                copy = await asyncio.create_subprocess_exec(
                    *kvmigrate("copy", source, target, "--ca-bundle", ca, *extra)
                )
                code = await copy.wait()
                print("\nAfter:")
                await describe("source", source, credential, ca)
                await describe("target", target, credential, ca)
                print("\n$ kvmigrate verify SOURCE TARGET --ca-bundle CA\n", flush=True)
                verify = await asyncio.create_subprocess_exec(*kvmigrate("verify", source, target, "--ca-bundle", ca))
                code = code or await verify.wait()
    print(f"\nkvmigrate exited {code}; the emulator has stopped.")
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
