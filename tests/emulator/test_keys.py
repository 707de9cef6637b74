"""Keys through the official async SDK against the emulator over HTTPS."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import JsonWebKey, KeyReleasePolicy, KeyVaultKey
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.vault.clients import VaultClients
from tests.helpers import eventually

RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
_rsa_2048: list[rsa.RSAPrivateKey] = []


def local_rsa_key() -> rsa.RSAPrivateKey:
    """One locally generated RSA-2048 key for every import test (generation is the slow part)."""
    if not _rsa_2048:
        _rsa_2048.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _rsa_2048[0]


def as_int(data: bytes | None) -> int:
    assert data is not None
    return int.from_bytes(data, "big")


def as_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or (value.bit_length() + 7) // 8, "big")


def rsa_public(key: KeyVaultKey) -> rsa.RSAPublicKey:
    """The RSA public key the bundle describes; cryptography refuses impossible numbers."""
    return rsa.RSAPublicNumbers(e=as_int(key.key.e), n=as_int(key.key.n)).public_key()


def ec_public(key: KeyVaultKey) -> ec.EllipticCurvePublicKey:
    """The EC public key the bundle describes; cryptography refuses a point that is not on the curve."""
    assert key.key.crv is not None
    return ec.EllipticCurvePublicNumbers(as_int(key.key.x), as_int(key.key.y), CURVES[key.key.crv]).public_key()


def rsa_jwk(key: rsa.RSAPrivateKey, **extra: object) -> JsonWebKey:
    private = key.private_numbers()
    public = private.public_numbers
    return JsonWebKey(
        kty="RSA",
        n=as_bytes(public.n),
        e=as_bytes(public.e),
        d=as_bytes(private.d),
        p=as_bytes(private.p),
        q=as_bytes(private.q),
        dp=as_bytes(private.dmp1),
        dq=as_bytes(private.dmq1),
        qi=as_bytes(private.iqmp),
        **extra,
    )


def ec_jwk(key: ec.EllipticCurvePrivateKey, crv: str) -> JsonWebKey:
    size = (key.curve.key_size + 7) // 8
    point = key.public_key().public_numbers()
    return JsonWebKey(
        kty="EC",
        crv=crv,
        x=as_bytes(point.x, size),
        y=as_bytes(point.y, size),
        d=as_bytes(key.private_numbers().private_value, size),
    )


def public_members(key: KeyVaultKey) -> tuple[object, ...]:
    jwk = key.key
    return (jwk.kty, jwk.n, jwk.e, jwk.crv, jwk.x, jwk.y)


async def test_created_keys_carry_real_public_material(src: VaultClients) -> None:
    default = await src.keys.create_rsa_key("rsa-default")
    assert default.key_type == "RSA" and default.key_operations == RSA_OPS
    assert default.key.e == b"\x01\x00\x01" and rsa_public(default).key_size == 2048
    assert default.id == f"{src.url}/keys/rsa-default/{default.properties.version}"
    assert len(default.properties.version or "") == 32 and default.properties.managed is None
    # api-version 2025-07-01 answers exportable false on every key (recordings-2025); 7.3 left it out.
    assert default.properties.exportable is False and default.properties.release_policy is None
    assert default.properties.recovery_level == "Recoverable+Purgeable"
    big = await src.keys.create_rsa_key("rsa-big", size=3072, key_operations=["sign", "verify"])
    assert rsa_public(big).key_size == 3072 and big.key_operations == ["sign", "verify"]
    hsm = await src.keys.create_rsa_key("rsa-hsm", hardware_protected=True)
    assert hsm.key_type == "RSA-HSM" and hsm.key.e == b"\x00\x01\x00\x01"  # "AAEAAQ", as the service sends it
    assert rsa_public(hsm).key_size == 2048
    for crv, curve in CURVES.items():
        key = await src.keys.create_ec_key(f"ec-{crv}", curve=crv)
        assert key.key_type == "EC" and key.key.crv == crv and key.key_operations == ["sign", "verify"]
        assert len(key.key.x or b"") == len(key.key.y or b"") == (curve.key_size + 7) // 8
        assert ec_public(key).curve.name == curve.name
        fetched = await src.keys.get_key(f"ec-{crv}")
        assert public_members(fetched) == public_members(key) and fetched.id == key.id
    assert (await src.keys.create_ec_key("ec-hsm", hardware_protected=True)).key_type == "EC-HSM"
    with pytest.raises(ResourceNotFoundError):
        await src.keys.get_key("no-such-key")


async def test_versions_of_one_name(src: VaultClients) -> None:
    first = await src.keys.create_ec_key("multi", curve="P-256", tags={"n": "1"})
    second = await src.keys.create_rsa_key("MULTI")  # one name may hold versions of different key types
    third = await src.keys.create_ec_key("multi", curve="P-384", enabled=False)
    created = [first, second, third]
    latest = await src.keys.get_key("multi")
    assert latest.id == third.id and latest.key.crv == "P-384" and latest.properties.enabled is False
    for key in created:
        by_version = await src.keys.get_key("multi", key.properties.version)
        assert public_members(by_version) == public_members(key) and by_version.properties.tags == key.properties.tags
    listed = [p async for p in src.keys.list_properties_of_key_versions("multi")]
    versions = [p.version for p in listed]
    assert versions == sorted(versions) and set(versions) == {k.properties.version for k in created}
    assert {p.id for p in listed} == {k.id for k in created}
    assert [p async for p in src.keys.list_properties_of_key_versions("nothing-here")] == []
    (item,) = [p async for p in src.keys.list_properties_of_keys()]
    assert item.id == f"{src.url}/keys/multi" and item.version is None and item.enabled is False
    with pytest.raises(ResourceNotFoundError):
        await src.keys.get_key("multi", "0" * 32)


async def test_import_keeps_the_public_key(src: VaultClients) -> None:
    local = local_rsa_key()
    imported = await src.keys.import_key("imported-rsa", rsa_jwk(local), tags={"from": "outside"})
    assert imported.key_type == "RSA" and imported.key_operations == RSA_OPS
    assert rsa_public(imported).public_numbers() == local.public_key().public_numbers()
    assert imported.key.d is None and imported.key.p is None  # private parts never come back
    assert imported.properties.tags == {"from": "outside"}
    hsm = await src.keys.import_key(
        "imported-rsa", rsa_jwk(local, key_ops=["wrapKey", "unwrapKey"]), hardware_protected=True
    )
    assert hsm.key_type == "RSA-HSM" and hsm.key_operations == ["wrapKey", "unwrapKey"]
    assert rsa_public(hsm).public_numbers() == local.public_key().public_numbers()
    assert hsm.properties.version != imported.properties.version
    local_ec = ec.generate_private_key(ec.SECP384R1())
    imported_ec = await src.keys.import_key("imported-ec", ec_jwk(local_ec, "P-384"))
    assert imported_ec.key_type == "EC" and imported_ec.key_operations == ["sign", "verify"]
    assert ec_public(imported_ec).public_numbers() == local_ec.public_key().public_numbers()

    numbers = local.private_numbers()
    broken = rsa_jwk(local)
    broken.d = as_bytes(numbers.d + 2)  # not the private exponent of n
    public_only = JsonWebKey(kty="RSA", n=broken.n, e=broken.e)
    for bad in (broken, public_only, JsonWebKey(kty="oct", k=b"0" * 32)):
        with pytest.raises(HttpResponseError) as err:
            await src.keys.import_key("bad-import", bad)
        assert err.value.status_code == 400
    with pytest.raises(HttpResponseError) as bad_ops:
        await src.keys.import_key("bad-import", rsa_jwk(local, key_ops=["fly"]))
    assert bad_ops.value.status_code == 400
    assert [p.name async for p in src.keys.list_properties_of_keys()] == ["imported-ec", "imported-rsa"]


async def test_update_properties(src: VaultClients) -> None:
    old = await src.keys.create_ec_key("upd", tags={"a": "1"})
    new = await src.keys.create_ec_key("upd")
    updated = await src.keys.update_key_properties("upd", enabled=False, tags={"b": "2"}, key_operations=["verify"])
    assert updated.id == new.id and updated.properties.enabled is False and updated.properties.tags == {"b": "2"}
    assert updated.key_operations == ["verify"] and public_members(updated) == public_members(new)
    assert updated.properties.updated_on is not None and new.properties.updated_on is not None
    assert updated.properties.updated_on >= new.properties.updated_on
    assert updated.properties.created_on == new.properties.created_on
    latest = await src.keys.get_key("upd")  # a disabled key still answers GET: only its use is refused
    assert latest.properties.enabled is False and latest.key_operations == ["verify"]
    older = await src.keys.update_key_properties("upd", old.properties.version, tags={})
    assert older.id == old.id and not older.properties.tags and older.properties.enabled is True
    assert (await src.keys.get_key("upd", old.properties.version)).key_operations == ["sign", "verify"]
    with pytest.raises(HttpResponseError) as bad_ops:
        await src.keys.update_key_properties("upd", key_operations=["fly"])
    assert bad_ops.value.status_code == 400
    with pytest.raises(HttpResponseError) as too_many:
        await src.keys.update_key_properties("upd", tags={f"t{i}": "v" for i in range(16)})
    assert too_many.value.status_code == 400
    assert (await src.keys.get_key("upd")).properties.tags == {"b": "2"}  # a refused update changes nothing
    with pytest.raises(ResourceNotFoundError):
        await src.keys.update_key_properties("missing", enabled=True)


async def test_release_policy_goes_with_exportable(src: VaultClients) -> None:
    policy = KeyReleasePolicy(
        b'{"anyOf":[{"allOf":[{"claim":"x-ms-attestation-type","equals":"sevsnpvm"}],'
        b'"authority":"https://sharedeus.eus.attest.azure.net"}],"version":"1.0.0"}'
    )
    key = await src.keys.create_rsa_key("released", hardware_protected=True, exportable=True, release_policy=policy)
    assert key.properties.exportable is True and key.properties.release_policy is not None
    assert key.properties.release_policy.encoded_policy == policy.encoded_policy
    assert key.properties.release_policy.content_type == "application/json; charset=utf-8"
    listed = [p async for p in src.keys.list_properties_of_keys()]
    assert listed[0].exportable is True
    for kwargs in ({"exportable": True}, {"release_policy": policy}):
        with pytest.raises(HttpResponseError) as err:
            await src.keys.create_rsa_key("unreleased", hardware_protected=True, **kwargs)
        assert err.value.status_code == 400 and "release policy" in str(err.value.message)
    plain = await src.keys.create_ec_key("plain")
    with pytest.raises(HttpResponseError) as not_exportable:
        await src.keys.update_key_properties("plain", release_policy=policy)
    assert not_exportable.value.status_code == 400
    assert plain.properties.exportable is False
    fixed = await src.keys.create_ec_key(
        "fixed", exportable=True, release_policy=KeyReleasePolicy(b"{}", immutable=True)
    )
    assert fixed.properties.release_policy is not None and fixed.properties.release_policy.immutable is True
    with pytest.raises(HttpResponseError) as immutable:
        await src.keys.update_key_properties("fixed", release_policy=policy)
    assert immutable.value.status_code == 400


async def test_invalid_requests_are_refused(src: VaultClients) -> None:
    attempts = [
        lambda: src.keys.create_oct_key("oct"),
        lambda: src.keys.create_oct_key("oct-hsm", hardware_protected=True),
        lambda: src.keys.create_key("bogus", "RSA-PSS"),
        lambda: src.keys.create_rsa_key("small", size=1024),
        lambda: src.keys.create_rsa_key("odd", size=2049),
        lambda: src.keys.create_rsa_key("exponent", public_exponent=5),
        lambda: src.keys.create_ec_key("p192", curve="P-192"),
        lambda: src.keys.create_rsa_key("ops", key_operations=["fly"]),
        lambda: src.keys.create_ec_key("tags", tags={f"t{i}": "v" for i in range(16)}),
        lambda: src.keys.create_ec_key("long-tag", tags={"t": "v" * 257}),
        lambda: src.keys.create_ec_key("under_score"),
        lambda: src.keys.create_ec_key("a" * 128),
    ]
    for attempt in attempts:
        with pytest.raises(HttpResponseError) as err:
            await attempt()
        assert err.value.status_code == 400, err.value.message
    assert [p async for p in src.keys.list_properties_of_keys()] == []
    await src.keys.create_ec_key("a" * 127, tags={f"t{i:02d}": "v" * 256 for i in range(15)})


async def test_backup_restore_keeps_identity(src: VaultClients, dst: VaultClients) -> None:
    v1 = await src.keys.create_rsa_key("moved", tags={"a": "1"})
    v2 = await src.keys.create_ec_key("moved", curve="P-521", enabled=False)
    await src.keys.update_key_properties("moved", v1.properties.version, key_operations=["sign"])
    blob = await src.keys.backup_key("moved")
    assert blob[0] == 0x26 and blob[1:39] == b"AzureKeyVaultKeyBackupV1.microsoft.com"
    assert blob[39:].count(b".") == 4
    restored = await dst.keys.restore_key_backup(blob)
    assert restored.name == "moved" and restored.properties.version == v2.properties.version
    assert restored.id == f"{dst.url}/keys/moved/{v2.properties.version}"
    assert restored.properties.created_on == v2.properties.created_on
    assert restored.properties.updated_on == v2.properties.updated_on
    assert public_members(restored) == public_members(v2) and restored.properties.enabled is False
    source_versions = {p.version: p async for p in src.keys.list_properties_of_key_versions("moved")}
    target_versions = {p.version: p async for p in dst.keys.list_properties_of_key_versions("moved")}
    assert set(target_versions) == set(source_versions) == {v1.properties.version, v2.properties.version}
    for version, source in source_versions.items():
        target = target_versions[version]
        assert (target.created_on, target.updated_on, target.enabled, target.tags) == (
            source.created_on,
            source.updated_on,
            source.enabled,
            source.tags,
        )
        original = await src.keys.get_key("moved", version)
        copy = await dst.keys.get_key("moved", version)
        assert public_members(copy) == public_members(original) and copy.key_operations == original.key_operations
    with pytest.raises(ResourceExistsError) as exists:
        await dst.keys.restore_key_backup(blob)
    assert exists.value.status_code == 409 and "conflict restoring the key" in str(exists.value.message)


async def test_restore_refusals(src: VaultClients, dst: VaultClients, far: VaultClients) -> None:
    await src.keys.create_ec_key("refused")
    blob = await src.keys.backup_key("refused")
    with pytest.raises(HttpResponseError) as other_world:
        await far.keys.restore_key_backup(blob)
    assert other_world.value.status_code == 400 and "decrypt" in str(other_world.value.message).lower()
    tampered = bytearray(blob)
    tampered[len(blob) // 2] ^= 0x01
    with pytest.raises(HttpResponseError) as corrupt:
        await dst.keys.restore_key_backup(bytes(tampered))
    assert corrupt.value.status_code == 400 and corrupt.value.error is not None
    assert corrupt.value.error.code == "Malformed backup blob"
    with pytest.raises(HttpResponseError) as wrong_kind:
        await dst.secrets.restore_secret_backup(blob)
    assert wrong_kind.value.status_code == 400
    await dst.keys.create_ec_key("refused")
    with pytest.raises(ResourceExistsError):  # the name is in use
        await dst.keys.restore_key_backup(blob)
    await dst.keys.delete_key("refused", _polling_interval=0.05)
    with pytest.raises(ResourceExistsError):  # a soft-deleted name blocks the restore too
        await dst.keys.restore_key_backup(blob)
    assert [p async for p in far.keys.list_properties_of_keys()] == []


async def test_delete_recover_purge(src: VaultClients, emulator: Emulator) -> None:
    emulator.vaults["src"].vault.settings.consistency_delay = 0.5
    created = await src.keys.create_ec_key("cycle", tags={"keep": "me"})
    blob = await src.keys.backup_key("cycle")
    raw = await src.keys._client.delete_key("cycle")  # the DELETE alone, without the SDK's polling
    assert raw.recovery_id == f"{src.url}/deletedkeys/cycle" and raw.key is not None
    assert raw.key.kid == created.id and raw.deleted_date and raw.scheduled_purge_date
    with pytest.raises(ResourceNotFoundError):  # not visible as deleted until the delete settles
        await src.keys.get_deleted_key("cycle")
    with pytest.raises(ResourceNotFoundError):
        await src.keys.get_key("cycle")
    with pytest.raises(ResourceExistsError) as being_deleted:
        await src.keys.create_ec_key("cycle")
    assert "being deleted" in str(being_deleted.value.message)
    deleted = await eventually(lambda: src.keys.get_deleted_key("cycle"))
    assert deleted.id == created.id and deleted.properties.tags == {"keep": "me"}
    assert public_members(deleted) == public_members(created)
    assert "cycle" in [d.name async for d in src.keys.list_deleted_keys()]
    with pytest.raises(ResourceExistsError) as recoverable:
        await src.keys.create_ec_key("cycle")
    assert "deleted but recoverable" in str(recoverable.value.message)
    with pytest.raises(ResourceNotFoundError):  # a second delete finds nothing
        await src.keys.delete_key("cycle", _polling_interval=0.05)

    recovered = await src.keys.recover_deleted_key("cycle", _polling_interval=0.05)
    assert recovered.id == created.id
    assert (await src.keys.get_key("cycle")).properties.tags == {"keep": "me"}

    gone = await src.keys.delete_key("cycle", _polling_interval=0.05)
    assert gone.recovery_id and gone.deleted_date
    await src.keys.purge_deleted_key("cycle")
    with pytest.raises(ResourceNotFoundError):
        await src.keys.get_deleted_key("cycle")
    with pytest.raises(ResourceExistsError):  # the purged name is not free at once
        await src.keys.restore_key_backup(blob)
    restored = await eventually(lambda: src.keys.restore_key_backup(blob))
    assert restored.id == created.id and public_members(restored) == public_members(created)


async def test_listing_pages_across_more_than_25_keys(src: VaultClients, emulator: Emulator) -> None:
    names = {f"list-{i:02d}" for i in range(30)}
    for name in names:
        await src.keys.create_ec_key(name)
    stats = emulator.vaults["src"].vault.stats
    stats.reset()
    listed = [p async for p in src.keys.list_properties_of_keys()]
    assert {p.name for p in listed} == names and len(listed) == 30
    assert all(p.managed is None and p.version is None for p in listed)
    assert stats.operations["keys.list"] == 2  # 25 + 5
    assert len([p async for p in src.keys.list_properties_of_keys(max_page_size=7)]) == 30
    assert stats.operations["keys.list"] == 2 + 5
    with pytest.raises(HttpResponseError) as err:
        [p async for p in src.keys.list_properties_of_keys(max_page_size=26)]
    assert err.value.status_code == 400


async def test_certificate_keys_are_managed(src: VaultClients, emulator: Emulator) -> None:
    """A key made by a certificate (built in the store here) lists as managed and refuses direct writes."""
    own = await src.keys.create_ec_key("plain")
    store = emulator.vaults["src"].vault.keys
    template = store.get("plain").latest
    version = Version(id=new_version_id(), created=1, updated=1, data={**template.data, "exportable": True})
    store.upsert("by-cert", version, managed=True)
    listed = {p.name: p async for p in src.keys.list_properties_of_keys()}
    assert listed["by-cert"].managed is True and listed["plain"].managed is None
    key = await src.keys.get_key("by-cert")
    assert key.properties.managed is True and key.properties.exportable is False
    assert public_members(key) == public_members(own)
    writes = [
        lambda: src.keys.update_key_properties("by-cert", enabled=False),
        lambda: src.keys.backup_key("by-cert"),
        lambda: src.keys.delete_key("by-cert", _polling_interval=0.05),
        lambda: src.keys.create_ec_key("by-cert"),
        lambda: src.keys.import_key("by-cert", ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256")),
    ]
    for write in writes:
        with pytest.raises(HttpResponseError) as err:
            await write()
        assert err.value.status_code == 403 and "associated with a certificate" in str(err.value.message)
    assert (await src.keys.get_key("by-cert")).properties.enabled is True


async def test_backup_of_more_than_500_versions_is_refused(src: VaultClients, emulator: Emulator) -> None:
    await src.keys.create_ec_key("many")
    item = emulator.vaults["src"].vault.keys.get("many")
    for _ in range(499):  # built in the store for speed; the behaviour is observed through the SDK
        item.add(Version(id=new_version_id(), created=1, updated=1, data=dict(item.latest.data)))
    assert len(await src.keys.backup_key("many")) > 0  # exactly 500 is still allowed
    item.add(Version(id=new_version_id(), created=1, updated=1, data=dict(item.latest.data)))
    with pytest.raises(HttpResponseError) as err:
        await src.keys.backup_key("many")
    assert err.value.status_code == 400 and "500 versions" in str(err.value.message)


async def test_imports_use_the_create_budget(src: VaultClients, emulator: Emulator) -> None:
    """Key imports draw on the small create/import budget; creates and reads on the general one (facts §11)."""
    emulator.vaults["src"].vault.settings.create_rate_limit = 1
    await src.keys.import_key("budget", ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256"))
    with pytest.raises(HttpResponseError) as throttled:
        await src.keys.import_key("budget", ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256"), retry_total=0)
    assert throttled.value.status_code == 429
    await src.keys.create_ec_key("budget", retry_total=0)
    assert len([p async for p in src.keys.list_properties_of_key_versions("budget")]) == 2
