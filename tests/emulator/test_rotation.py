"""Key rotation policies and rotate through the official async SDK against the emulator over HTTPS.

A rotation policy is what no backup blob carries (facts §17): a migration has to read it from the source and set it
on the target, so these tests pin what ``KeyClient.get_key_rotation_policy`` shows for a key without one, what a
restore leaves, and which policies the service refuses.
"""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.vault.clients import VaultClients
from tests.helpers import eventually

ROTATE, NOTIFY = KeyRotationPolicyAction.rotate, KeyRotationPolicyAction.notify


def actions(policy: KeyRotationPolicy) -> list[tuple[str, str | None, str | None]]:
    return [
        (KeyRotationPolicyAction(a.action).value, a.time_after_create, a.time_before_expiry)
        for a in policy.lifetime_actions
    ]


def rotate_after(duration: str) -> KeyRotationLifetimeAction:
    return KeyRotationLifetimeAction(ROTATE, time_after_create=duration)


async def test_a_key_without_a_policy_answers_the_service_default(src: VaultClients) -> None:
    """Notify 30 days before expiry, no id, no attributes: what the recorded service answered (recordings-js)."""
    await src.keys.create_ec_key("fresh")
    policy = await src.keys.get_key_rotation_policy("fresh")
    assert policy.id is None and policy.expires_in is None and policy.created_on is None
    assert actions(policy) == [("Notify", None, "P30D")]


async def test_set_policy_is_read_back_with_the_notify_the_service_adds(src: VaultClients) -> None:
    key = await src.keys.create_ec_key("rotating")
    policy = KeyRotationPolicy(lifetime_actions=[rotate_after("P30D")], expires_in="P90D")
    stored = await src.keys.update_key_rotation_policy("rotating", policy)
    assert stored.id == f"{src.url}/keys/rotating/rotationpolicy" and stored.expires_in == "P90D"
    assert actions(stored) == [("Rotate", "P30D", None), ("Notify", None, "P30D")]
    assert stored.created_on is not None and stored.updated_on is not None
    read = await src.keys.get_key_rotation_policy("rotating")
    assert actions(read) == actions(stored) and read.created_on == stored.created_on

    replaced = await src.keys.update_key_rotation_policy(
        "rotating", KeyRotationPolicy(lifetime_actions=[KeyRotationLifetimeAction(NOTIFY, time_before_expiry="P10D")])
    )
    assert actions(replaced) == [("Notify", None, "P10D")] and replaced.expires_in is None
    assert replaced.created_on == stored.created_on  # a later PUT keeps the creation time
    assert key.properties.version  # the policy does not touch the key's versions
    versions = [v async for v in src.keys.list_properties_of_key_versions("rotating")]
    assert len(versions) == 1


@pytest.mark.parametrize(
    ("lifetime_actions", "expires_in", "says"),
    [
        ([rotate_after("P6D")], None, "at least P7D"),
        ([rotate_after("30 days")], None, "ISO 8601"),
        ([KeyRotationLifetimeAction(ROTATE, time_after_create="P30D", time_before_expiry="P30D")], None, "exactly one"),
        ([KeyRotationLifetimeAction(ROTATE)], None, "exactly one"),
        ([KeyRotationLifetimeAction(NOTIFY, time_after_create="P30D")], None, "only timeBeforeExpiry"),
        ([KeyRotationLifetimeAction(ROTATE, time_before_expiry="P30D")], None, "needs attributes.expiryTime"),
        ([rotate_after("P30D")], "P27D", "at least P28D"),
        ([rotate_after("P85D")], "P90D", "at least 7 days"),
        ([rotate_after("P30D"), rotate_after("P40D")], None, "one Rotate and one Notify"),
    ],
)
async def test_invalid_policies_are_refused_with_bad_parameter(
    src: VaultClients, lifetime_actions: list[KeyRotationLifetimeAction], expires_in: str | None, says: str
) -> None:
    await src.keys.create_ec_key("strict")
    with pytest.raises(HttpResponseError) as refused:
        policy = KeyRotationPolicy(lifetime_actions=lifetime_actions, expires_in=expires_in)
        await src.keys.update_key_rotation_policy("strict", policy)
    assert refused.value.status_code == 400 and refused.value.error is not None
    assert refused.value.error.code == "BadParameter" and says in str(refused.value.message)
    assert (await src.keys.get_key_rotation_policy("strict")).id is None  # nothing was stored


async def test_rotate_makes_a_like_version_that_expires_as_the_policy_says(src: VaultClients) -> None:
    first = await src.keys.create_rsa_key("rsa", size=3072, key_operations=["sign", "verify"])
    policy = KeyRotationPolicy(lifetime_actions=[rotate_after("P30D")], expires_in="P90D")
    await src.keys.update_key_rotation_policy("rsa", policy)
    rotated = await src.keys.rotate_key("rsa")
    assert rotated.properties.version != first.properties.version
    assert rotated.key_type == "RSA" and rotated.key_operations == ["sign", "verify"]
    assert rotated.key.n is not None and len(rotated.key.n) * 8 == 3072 and rotated.key.n != first.key.n
    created, expires = rotated.properties.created_on, rotated.properties.expires_on
    assert created is not None and expires is not None and expires - created == dt.timedelta(days=90)
    assert (await src.keys.get_key("rsa")).properties.version == rotated.properties.version

    curve = await src.keys.create_ec_key("ec", curve="P-384")
    again = await src.keys.rotate_key("ec")  # no policy: no expiry, same curve
    assert again.key.crv == "P-384" and again.properties.expires_on is None and again.key.x != curve.key.x


async def test_missing_keys_answer_key_not_found(src: VaultClients) -> None:
    for call in (
        src.keys.get_key_rotation_policy("ghost"),
        src.keys.rotate_key("ghost"),
        src.keys.update_key_rotation_policy("ghost", KeyRotationPolicy(lifetime_actions=[rotate_after("P30D")])),
    ):
        with pytest.raises(ResourceNotFoundError) as missing:
            await call
        assert missing.value.error is not None and missing.value.error.code == "KeyNotFound"


async def test_a_restored_key_has_the_default_policy(src: VaultClients, dst: VaultClients) -> None:
    """Backup and restore do not preserve autorotation settings (relocation guide): the target shows the default."""
    await src.keys.create_ec_key("moved")
    await src.keys.update_key_rotation_policy(
        "moved", KeyRotationPolicy(lifetime_actions=[rotate_after("P60D")], expires_in="P1Y")
    )
    blob = await src.keys.backup_key("moved")
    await dst.keys.restore_key_backup(blob)
    restored = await dst.keys.get_key_rotation_policy("moved")
    assert restored.id is None and actions(restored) == [("Notify", None, "P30D")]
    assert (await src.keys.get_key_rotation_policy("moved")).expires_in == "P1Y"  # the source keeps its own


async def test_recover_keeps_the_policy_and_purge_drops_it(src: VaultClients) -> None:
    await src.keys.create_ec_key("kept")
    await src.keys.update_key_rotation_policy("kept", KeyRotationPolicy(lifetime_actions=[rotate_after("P45D")]))
    await src.keys.delete_key("kept", _polling_interval=0.05)
    await src.keys.recover_deleted_key("kept", _polling_interval=0.05)
    recovered = await eventually(lambda: src.keys.get_key_rotation_policy("kept"))
    assert actions(recovered)[0] == ("Rotate", "P45D", None)

    await src.keys.delete_key("kept", _polling_interval=0.05)
    await src.keys.purge_deleted_key("kept")
    await eventually(lambda: src.keys.create_ec_key("kept"))  # the purged name frees after a moment
    assert (await src.keys.get_key_rotation_policy("kept")).id is None


async def test_a_certificate_key_refuses_policy_and_rotation(src: VaultClients, emulator: Emulator) -> None:
    """A rotation would make a key version without its certificate: the managed key answers 403 (guess)."""
    await src.keys.create_ec_key("plain")
    store = emulator.vaults["src"].vault.keys
    version = Version(id=new_version_id(), created=1, updated=1, data=dict(store.get("plain").latest.data))
    store.upsert("by-cert", version, managed=True)
    assert (await src.keys.get_key_rotation_policy("by-cert")).id is None
    for call in (
        src.keys.rotate_key("by-cert"),
        src.keys.update_key_rotation_policy("by-cert", KeyRotationPolicy(lifetime_actions=[rotate_after("P30D")])),
    ):
        with pytest.raises(HttpResponseError) as refused:
            await call
        assert refused.value.status_code == 403 and "associated with a certificate" in str(refused.value.message)
