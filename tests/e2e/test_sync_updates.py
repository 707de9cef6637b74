"""``kvmigrate sync`` of objects the standby already has: an update finishes them, and costs nothing the next time.

Everything is checked through the official SDK against the target, and requests through the emulator's counters.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificatePolicy, WellKnownIssuerNames
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread
from tests.e2e.test_sync import sync
from tests.e2e.test_trust import run

ROTATE_60 = [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P60D")]


def per_object_reads(emulator: Emulator) -> dict[str, int]:
    """Version listings and gets on both vaults since the last reset: what an unchanged object must never cost."""
    found: dict[str, int] = {}
    for vault in ("src", "dst", "far"):
        for operation, count in emulator.vaults[vault].vault.stats.operations.items():
            if operation.endswith((".versions", ".get")):
                found[f"{vault}:{operation}"] = count
    return found


def reset_stats(emulator: Emulator) -> None:
    for vault in ("src", "dst", "far"):
        emulator.vaults[vault].vault.stats.reset()


async def rotation_of(clients: VaultClients, key: str) -> list[str | None]:
    policy = await clients.keys.get_key_rotation_policy(key)
    return [a.time_after_create for a in policy.lifetime_actions if str(a.action).lower().endswith("rotate")]


async def test_an_update_carries_the_rotation_policy_and_the_pending_request_and_is_done(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await src.keys.create_rsa_key("rk")
    await src.certificates.create_certificate("uc", CertificatePolicy.get_default(), _polling_interval=0.1)
    await src.secrets.set_secret("us", "v")
    first, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    assert first.returncode == 0 and json.loads(first.stdout)["copied"] == 3, first.stderr

    # The key's tags and its rotation policy change; the certificate's tags change and a new version is requested.
    await src.keys.update_key_properties("rk", tags={"env": "prod"})
    await src.keys.update_key_rotation_policy("rk", KeyRotationPolicy(), lifetime_actions=ROTATE_60)
    await src.certificates.update_certificate_properties("uc", tags={"env": "prod"})
    pending = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=uc")
    await asyncio.wait_for(src.certificates.create_certificate("uc", pending), timeout=20)
    second, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    document = json.loads(second.stdout)
    assert second.returncode == 0, second.stderr
    assert document["updated"] == 2 and document["updated_attributes"] == 2, document
    assert (await dst.keys.get_key("rk")).properties.tags == {"env": "prod"}
    assert await rotation_of(dst, "rk") == ["P60D"]  # in the same run as the tags
    assert document["pending_requests"] == ["uc"]  # an updated certificate is checked for a pending version too
    assert [s["name"] for s in document["settings"] if s["action"] == "copy"] == ["rk"]

    reset_stats(emulator)
    idle, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    document = json.loads(idle.stdout)
    assert idle.returncode == 0 and document["previously_done"] == 3, idle.stderr
    assert per_object_reads(emulator) == {}  # finished by the update: no version list, no get


async def test_value_mode_follows_a_disabled_current_version_and_still_blocks_a_new_disabled_object(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    emulator.vaults["far"].vault.settings.create_rate_limit = 0
    for value in ("first", "second"):
        await src.secrets.set_secret("turned-off", value)
    await src.secrets.set_secret("grew-off", "first")
    await src.certificates.create_certificate("cert-off", CertificatePolicy.get_default(), _polling_interval=0.1)
    args = sync(emulator, "far", "--mode", "value")
    first, _ = await _in_thread(run, emulator, *args, cwd=tmp_path)
    assert first.returncode == 0 and json.loads(first.stdout)["copied"] == 3, first.stderr

    current = (await src.secrets.get_secret("turned-off")).properties.version
    await src.secrets.update_secret_properties("turned-off", current, enabled=False)
    await src.certificates.update_certificate_properties("cert-off", enabled=False)
    await src.secrets.set_secret("born-off", "hidden", enabled=False)  # new, and its only version disabled
    await src.secrets.set_secret("grew-off", "hidden", enabled=False)  # a new current version, disabled: hidden
    second, _ = await _in_thread(run, emulator, *args, cwd=tmp_path)
    document = json.loads(second.stdout)
    assert second.returncode == 0, second.stderr
    assert document["updated"] == 2 and document["updated_attributes"] == 2, document
    assert sorted(b["name"] for b in document["blocked"]) == ["born-off", "grew-off"], document
    assert all("current version is disabled" in b["reason"] for b in document["blocked"])
    with pytest.raises(HttpResponseError, match="disabled"):
        await far.secrets.get_secret("turned-off")  # the standby's current version is disabled too
    versions = [p async for p in far.secrets.list_properties_of_secret_versions("turned-off")]
    assert sorted(p.enabled for p in versions) == [False, True]
    enabled = next(p.version for p in versions if p.enabled)
    assert (await far.secrets.get_secret("turned-off", enabled)).value == "first"
    certificates = [p async for p in far.certificates.list_properties_of_certificate_versions("cert-off")]
    assert [p.enabled for p in certificates] == [False]
    assert "born-off" not in [p.name async for p in far.secrets.list_properties_of_secrets()]
    assert [p.enabled async for p in far.secrets.list_properties_of_secret_versions("grew-off")] == [True]

    again, _ = await _in_thread(run, emulator, *args, cwd=tmp_path)
    document = json.loads(again.stdout)
    assert again.returncode == 0 and document["previously_done"] == 2 and len(document["blocked"]) == 2, document


async def test_every_key_gets_its_rotation_policy_and_the_settings_come_out_in_name_order(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    count = 300
    names = [f"rot-{i:04d}" for i in range(count)]
    for vault in ("src", "dst"):
        emulator.vaults[vault].vault.settings.rate_limit = 0
        emulator.vaults[vault].vault.settings.create_rate_limit = 0
    semaphore = asyncio.Semaphore(16)

    async def seed(index: int, name: str) -> None:
        async with semaphore:
            await src.keys.create_ec_key(name)
            actions = [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create=f"P{30 + index}D")]
            await src.keys.update_key_rotation_policy(name, KeyRotationPolicy(), lifetime_actions=actions)

    await asyncio.gather(*(seed(i, name) for i, name in enumerate(reversed(names))))
    args = sync(emulator, "dst", "--rps", "3000", "--types", "keys")
    first, _ = await _in_thread(run, emulator, *args, cwd=tmp_path, timeout=120)
    document = json.loads(first.stdout)
    assert first.returncode == 0 and document["copied"] == count, first.stderr
    assert [(s["name"], s["action"]) for s in document["settings"]] == [(name, "copy") for name in names]
    assert emulator.vaults["dst"].vault.stats.operations["keys.set_rotation_policy"] == count
    wanted = {name: [f"P{30 + i}D"] for i, name in enumerate(reversed(names))}
    found = dict(zip(names, await asyncio.gather(*(rotation_of(dst, name) for name in names)), strict=True))
    assert found == wanted  # each key its own policy, none crossed over by the concurrent writes

    reset_stats(emulator)
    idle, _ = await _in_thread(run, emulator, *args, cwd=tmp_path, timeout=120)
    document = json.loads(idle.stdout)
    assert idle.returncode == 0 and document["previously_done"] == count, idle.stderr
    assert [(s["name"], s["action"]) for s in document["settings"]] == [(name, "previously-done") for name in names]
    assert "keys.set_rotation_policy" not in emulator.vaults["dst"].vault.stats.operations
