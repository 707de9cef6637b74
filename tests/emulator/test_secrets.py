"""Secrets through the official async SDK against the emulator over HTTPS."""

from __future__ import annotations

import base64
import ssl

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.vault.clients import VaultClients
from tests.helpers import eventually


async def test_crud_versions_and_attributes(src: VaultClients) -> None:
    first = await src.secrets.set_secret(
        "crud-1", "one", content_type="text/plain", tags={"team": "a"}, not_before=None, enabled=True
    )
    second = await src.secrets.set_secret("CRUD-1", "two", expires_on=None)
    assert first.properties.version != second.properties.version
    assert len(first.properties.version or "") == 32
    latest = await src.secrets.get_secret("crud-1")
    assert latest.value == "two" and latest.properties.version == second.properties.version
    old = await src.secrets.get_secret("crud-1", first.properties.version)
    assert old.value == "one" and old.properties.content_type == "text/plain" and old.properties.tags == {"team": "a"}
    updated = await src.secrets.update_secret_properties(
        "crud-1", first.properties.version, enabled=False, tags={"team": "b"}
    )
    assert updated.enabled is False and updated.tags == {"team": "b"}
    with pytest.raises(HttpResponseError) as disabled:
        await src.secrets.get_secret("crud-1", first.properties.version)
    assert disabled.value.status_code == 403 and "disabled" in str(disabled.value.message)
    versions = [p.version async for p in src.secrets.list_properties_of_secret_versions("crud-1")]
    assert sorted(versions) == versions and set(versions) == {first.properties.version, second.properties.version}
    assert [p async for p in src.secrets.list_properties_of_secret_versions("no-such-name")] == []
    with pytest.raises(ResourceNotFoundError):
        await src.secrets.get_secret("missing")


async def test_limits_are_enforced(src: VaultClients) -> None:
    await src.secrets.set_secret("a" * 127, "x")
    for bad_name in ("a" * 128, "under_score"):
        with pytest.raises(HttpResponseError) as err:
            await src.secrets.set_secret(bad_name, "x")
        assert err.value.status_code == 400
    await src.secrets.set_secret("big", "v" * 25 * 1024)
    with pytest.raises(HttpResponseError) as too_big:
        await src.secrets.set_secret("bigger", "v" * (25 * 1024 + 1))
    assert too_big.value.status_code == 400
    with pytest.raises(HttpResponseError) as too_many:
        await src.secrets.set_secret("tags", "x", tags={f"t{i}": "v" for i in range(16)})
    assert too_many.value.status_code == 400


async def test_listing_pages_with_absolute_next_links(src: VaultClients, emulator: Emulator) -> None:
    names = {f"page-{i:02d}" for i in range(60)}
    for name in names:
        await src.secrets.set_secret(name, "v")
    listed = [p.name async for p in src.secrets.list_properties_of_secrets()]
    assert set(listed) == names and len(listed) == 60
    emulator.vaults["src"].vault.stats.reset()
    count = [p async for p in src.secrets.list_properties_of_secrets(max_page_size=7)]
    assert len(count) == 60
    assert emulator.vaults["src"].vault.stats.operations["secrets.list"] == 9  # ceil(60 / 7)
    with pytest.raises(HttpResponseError) as err:
        [p async for p in src.secrets.list_properties_of_secrets(max_page_size=26)]
    assert err.value.status_code == 400


async def test_soft_delete_recover_purge_with_consistency_delay(src: VaultClients) -> None:
    await src.secrets.set_secret("gone", "v")
    deleted = await src.secrets.delete_secret("gone", _polling_interval=0.05)
    assert deleted.recovery_id and deleted.deleted_date and deleted.scheduled_purge_date
    with pytest.raises(ResourceNotFoundError):
        await src.secrets.get_secret("gone")
    with pytest.raises(ResourceExistsError) as conflict:
        await src.secrets.set_secret("gone", "again")
    assert "deleted but recoverable" in str(conflict.value.message)
    assert "gone" in [d.name async for d in src.secrets.list_deleted_secrets()]
    await src.secrets.recover_deleted_secret("gone", _polling_interval=0.05)
    assert (await src.secrets.get_secret("gone")).value == "v"
    await src.secrets.delete_secret("gone", _polling_interval=0.05)
    await src.secrets.purge_deleted_secret("gone")
    with pytest.raises(ResourceNotFoundError):
        await src.secrets.get_deleted_secret("gone")

    async def recreate() -> None:
        await src.secrets.set_secret("gone", "fresh")

    with pytest.raises(ResourceExistsError):  # the purged name is not free at once
        await recreate()
    await eventually(recreate)


async def test_delete_shows_only_after_the_delay(src: VaultClients, emulator: Emulator) -> None:
    emulator.vaults["src"].vault.settings.consistency_delay = 1.0
    await src.secrets.set_secret("slow", "v")
    poller_result = await src.secrets._client.delete_secret("slow")  # raw DELETE, no polling
    assert poller_result.recovery_id
    with pytest.raises(ResourceNotFoundError):
        await src.secrets.get_deleted_secret("slow")
    with pytest.raises(ResourceExistsError) as being_deleted:
        await src.secrets.set_secret("slow", "v2")
    assert "being deleted" in str(being_deleted.value.message)
    assert (await eventually(lambda: src.secrets.get_deleted_secret("slow"))).name == "slow"


async def test_backup_restore_keeps_versions_and_timestamps(src: VaultClients, dst: VaultClients) -> None:
    v1 = await src.secrets.set_secret("moved", "one", tags={"a": "1"})
    v2 = await src.secrets.set_secret("moved", "two", content_type="text/plain")
    blob = await src.secrets.backup_secret("moved")
    assert blob[0] == 0x29 and blob[1:42] == b"AzureKeyVaultSecretBackupV1.microsoft.com"
    assert blob[42:].count(b".") == 4 and b"one" not in blob and b"two" not in blob
    restored = await dst.secrets.restore_secret_backup(blob)
    assert restored.version == v2.properties.version and restored.created_on == v2.properties.created_on
    got = await dst.secrets.get_secret("moved", v1.properties.version)
    assert got.value == "one" and got.properties.tags == {"a": "1"}
    assert got.properties.created_on == v1.properties.created_on
    assert got.id.startswith(dst.url)
    with pytest.raises(ResourceExistsError) as exists:
        await dst.secrets.restore_secret_backup(blob)
    assert "conflict restoring" in str(exists.value.message)


async def test_restore_refusals(src: VaultClients, dst: VaultClients, far: VaultClients) -> None:
    await src.secrets.set_secret("refused", "v")
    blob = await src.secrets.backup_secret("refused")
    with pytest.raises(HttpResponseError) as other_world:
        await far.secrets.restore_secret_backup(blob)
    assert other_world.value.status_code == 400 and "Cannot decrypt backup blob" in str(other_world.value.message)
    tampered = bytearray(blob)
    tampered[len(blob) // 2] ^= 0x01
    with pytest.raises(HttpResponseError) as corrupt:
        await dst.secrets.restore_secret_backup(bytes(tampered))
    assert corrupt.value.status_code == 400 and corrupt.value.error is not None
    assert corrupt.value.error.code == "Malformed backup blob"
    with pytest.raises(HttpResponseError) as truncated:
        await dst.secrets.restore_secret_backup(blob[:100])
    assert truncated.value.status_code == 400
    await dst.secrets.set_secret("refused", "other")
    await dst.secrets.delete_secret("refused", _polling_interval=0.05)
    with pytest.raises(ResourceExistsError):  # soft-deleted name blocks the restore
        await dst.secrets.restore_secret_backup(blob)
    with pytest.raises(HttpResponseError) as wrong_kind:
        await dst.keys.restore_key_backup(blob)
    assert wrong_kind.value.status_code == 400


async def test_backup_of_more_than_500_versions_is_refused(src: VaultClients, emulator: Emulator) -> None:
    await src.secrets.set_secret("many", "v0")
    item = emulator.vaults["src"].vault.secrets.get("many")
    for i in range(500):  # built in the store for speed; the refusal is observed through the SDK
        item.add(Version(id=new_version_id(), created=1, updated=1, data={"value": f"v{i}"}))
    with pytest.raises(HttpResponseError) as err:
        await src.secrets.backup_secret("many")
    assert err.value.status_code == 400 and "500 versions" in str(err.value.message)


async def test_backup_blob_is_base64url_on_the_wire(src: VaultClients, emulator: Emulator) -> None:
    await src.secrets.set_secret("wire", "v")
    token, _ = emulator.authority.issue("https://vault.azure.net")
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{src.url}/secrets/wire/backup?api-version=7.5", ssl=context, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        value = (await response.json())["value"]
    assert "=" not in value and "+" not in value and "/" not in value
    assert base64.urlsafe_b64decode(value + "==")[0] == 0x29


async def test_purge_protection_and_soft_delete_off(src: VaultClients, emulator: Emulator) -> None:
    settings = emulator.vaults["src"].vault.settings
    settings.purge_protection = True
    await src.secrets.set_secret("kept", "v")
    deleted = await src.secrets.delete_secret("kept", _polling_interval=0.05)
    assert deleted.properties.recovery_level == "Recoverable"
    with pytest.raises(HttpResponseError) as err:
        await src.secrets.purge_deleted_secret("kept")
    assert err.value.status_code == 403 and "purge protection" in str(err.value.message)
    settings.purge_protection = False
    settings.soft_delete_days = 0
    created = await src.secrets.set_secret("gone-for-good", "v")
    assert created.properties.recovery_level == "Purgeable"
    await src.secrets._client.delete_secret("gone-for-good")
    with pytest.raises(ResourceNotFoundError):
        await src.secrets.get_deleted_secret("gone-for-good")
