"""The whole vault: rotation policies, certificate contacts and issuers, pending certificates.

One source with keys with and without rotation policies, contacts, two issuers (a password supplied for one), a
certificate whose only version is pending and one with a pending new version, moved three ways — copy in backup mode,
copy by value into another subscription, backup then restore into a third vault — and checked through the SDK.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateContact,
    CertificatePolicy,
    WellKnownIssuerNames,
)
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients, build_clients
from tests.conftest import emulator_config
from tests.e2e.test_copy import _in_thread
from tests.e2e.test_trust import run

PASSWORD = "issuer-pa55word-canary-51d0"


@pytest.fixture
async def four(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    """src, dst and third of one subscription and geography, far of another."""
    config = emulator_config(
        src={}, dst={}, third={}, far={"subscription": "00000000-0000-0000-0000-00000000b002", "geography": "elsewhere"}
    )
    async with Emulator(config, state_dir=tmp_path / "emulator") as emu:
        for key, value in emu.environment().items():
            monkeypatch.setenv(key, value)
        yield emu


async def clients_of(emulator: Emulator, credential: object, name: str) -> VaultClients:
    return build_clients(emulator.vaults[name].url, credential, ca_bundle=emulator.ca_file)  # type: ignore[arg-type]


async def seed(src: VaultClients) -> None:
    await src.keys.create_rsa_key("rotated")
    await src.keys.update_key_rotation_policy(
        "rotated",
        KeyRotationPolicy(),
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P90D")],
        expires_in="P180D",
    )
    await src.keys.create_ec_key("plain")  # the service's default policy: nothing to carry
    await src.certificates.set_contacts(
        [
            CertificateContact(email="pki@contoso.example", name="PKI", phone="555-0100"),
            CertificateContact(email="oncall@contoso.example"),
        ]
    )
    admins = [AdministratorContact(first_name="Ada", last_name="L", email="ada@contoso.example", phone="1")]
    await src.certificates.create_issuer(
        "digicert",
        "DigiCert",
        account_id="acct-1",
        password="source-only",
        organization_id="org-1",
        admin_contacts=admins,
    )
    await src.certificates.create_issuer("globalsign", "GlobalSign", account_id="acct-2", password="source-only-2")
    await src.certificates.create_certificate("done", CertificatePolicy.get_default(), _polling_interval=0.1)
    pending = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=pending")
    await asyncio.wait_for(src.certificates.create_certificate("waiting", pending), timeout=20)
    await src.certificates.create_certificate("renewing", CertificatePolicy.get_default(), _polling_interval=0.1)
    await asyncio.wait_for(
        src.certificates.create_certificate("renewing", pending), timeout=20
    )  # a pending new version
    await src.secrets.set_secret("plain-secret", "v")


async def settings_of(clients: VaultClients, *, keys: bool = True) -> dict[str, object]:
    contacts = await clients.certificates.get_contacts()
    issuers = {}
    for name in ("digicert", "globalsign"):
        issuer = await clients.certificates.get_issuer(name)
        issuers[name] = (
            issuer.provider,
            issuer.account_id,
            issuer.organization_id,
            [(a.first_name, a.last_name, a.email, a.phone) for a in issuer.admin_contacts or []],
        )
    settings: dict[str, object] = {
        "contacts": sorted((c.email, c.name, c.phone) for c in contacts),
        "issuers": issuers,
    }
    if keys:
        policy = await clients.keys.get_key_rotation_policy("rotated")
        actions = sorted((str(a.action), a.time_after_create, a.time_before_expiry) for a in policy.lifetime_actions)
        settings["rotation"] = (actions, policy.expires_in)
    return settings


def credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"digicert": PASSWORD}))
    os.chmod(path, 0o600)
    return path


async def test_the_whole_vault_arrives_three_ways(four: Emulator, tmp_path: Path) -> None:
    from azure.identity.aio import DefaultAzureCredential

    async with DefaultAzureCredential(exclude_visual_studio_code_credential=True) as credential:
        src, dst, third, far = [await clients_of(four, credential, n) for n in ("src", "dst", "third", "far")]
        async with src, dst, third, far:
            await seed(src)
            expected = await settings_of(src)
            urls = {name: four.vaults[name].url for name in ("src", "dst", "third", "far")}
            creds = ["--issuer-credentials", str(credentials_file(tmp_path))]
            log = tmp_path / "run.log"
            runs = {
                "backup-mode": ["copy", urls["src"], urls["dst"], *creds],
                "value-mode": ["copy", urls["src"], urls["far"], "--mode", "value", *creds],
            }
            outputs: list[str] = []
            for label, args in runs.items():
                result, _ = await _in_thread(run, four, *args, "-o", "json", "-v", "--log-file", str(log), cwd=tmp_path)
                outputs += [result.stdout, result.stderr]
                document = json.loads(result.stdout)
                assert result.returncode == 1, (label, result.stderr)  # globalsign has no password: exit 1
                assert document["needs_credentials"] == ["globalsign"], label
                assert [p["name"] for p in document["pending"]] == ["waiting"], label
                assert document["pending_requests"] == ["renewing"], label
            archive = tmp_path / "archive"
            backed, _ = await _in_thread(run, four, "backup", urls["src"], str(archive), "-o", "json", cwd=tmp_path)
            assert backed.returncode == 0, backed.stderr
            restored, _ = await _in_thread(
                run,
                four,
                "restore",
                str(archive),
                urls["third"],
                *creds,
                "--allow-missing-issuer-credentials",
                "-o",
                "json",
                cwd=tmp_path,
            )
            outputs += [backed.stdout, backed.stderr, restored.stdout, restored.stderr]
            assert restored.returncode == 0, restored.stderr  # allowed: needs-credentials is still named
            assert json.loads(restored.stdout)["needs_credentials"] == ["globalsign"]

            for name, clients in (("dst", dst), ("third", third)):
                assert await settings_of(clients) == expected, name
            by_value = await settings_of(far, keys=False)
            assert by_value == {k: v for k, v in expected.items() if k != "rotation"}  # keys do not move by value
            for name in ("dst", "far", "third"):
                stored = four.vaults[name].vault.issuers["digicert"]["credentials"]  # what only the vault sees
                assert stored.get("pwd") == PASSWORD, name
                assert (
                    "pwd" not in four.vaults[name].vault.issuers["globalsign"]["credentials"]
                    or not (four.vaults[name].vault.issuers["globalsign"]["credentials"]["pwd"])
                )
            verified, _ = await _in_thread(run, four, "verify", urls["src"], urls["dst"], "-o", "json", cwd=tmp_path)
            outputs += [verified.stdout, verified.stderr]
            report = json.loads(verified.stdout)
            assert verified.returncode == 0, verified.stdout
            assert report["settings_matched"] >= 4  # contacts, two issuers, a rotation policy

            await dst.keys.update_key_rotation_policy(
                "rotated",
                KeyRotationPolicy(),
                lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")],
            )
            drifted, _ = await _in_thread(run, four, "verify", urls["src"], urls["dst"], "-o", "json", cwd=tmp_path)
            assert drifted.returncode == 1
            assert [(f["type"], f["name"]) for f in json.loads(drifted.stdout)["different"]] == [
                ("rotation-policy", "rotated")
            ]

            written = outputs + [log.read_text()]
            written += [p.read_bytes().decode("latin-1") for p in archive.rglob("*") if p.is_file()]
            state = Path(os.environ["KVMIGRATE_STATE_DIR"])
            written += [p.read_bytes().decode("latin-1") for p in state.rglob("*") if p.is_file()]
            for text in written:
                assert PASSWORD not in text and "source-only" not in text


async def test_settings_follow_the_conflict_policy_and_a_missing_permission_spares_the_objects(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await src.certificates.set_contacts([CertificateContact(email="a@contoso.example")])
    await dst.certificates.set_contacts([CertificateContact(email="someone-else@contoso.example")])
    await src.secrets.set_secret("s", "v")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    kept, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    document = json.loads(kept.stdout)
    assert kept.returncode == 0 and [s["action"] for s in document["settings"]] == ["skip-existing"]
    assert [c.email for c in await dst.certificates.get_contacts()] == ["someone-else@contoso.example"]
    replaced, _ = await _in_thread(
        run, emulator, "copy", src_url, dst_url, "--replace-settings", "-o", "json", cwd=tmp_path
    )
    assert [s["action"] for s in json.loads(replaced.stdout)["settings"]] == ["replace"]
    assert [c.email for c in await dst.certificates.get_contacts()] == ["a@contoso.example"]
    emulator.vaults["dst"].vault.settings.deny = ["managecontacts"]
    await src.secrets.set_secret("t", "v")
    await src.certificates.set_contacts([CertificateContact(email="b@contoso.example")])
    denied, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    summary = json.loads(denied.stdout)
    assert denied.returncode == 1 and summary["copied"] == 1  # the secret still moved
    assert "'managecontacts' permission on certificates" in summary["failures"][0]["error"]
