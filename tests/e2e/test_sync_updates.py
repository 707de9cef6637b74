"""``kvmigrate sync`` of objects the standby already has: an update finishes them, and costs nothing the next time.

Everything is checked through the official SDK against the target, and requests through the emulator's counters.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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
