"""The managed key and secret of a certificate: every certificate version V has a key version and a secret version of
the same name and id (facts §13), written together and looked up wherever they are (active, deleted, recovering)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509

from kvmigrate.emulator import material
from kvmigrate.emulator.app import JsonBody, Vault
from kvmigrate.emulator.errors import KeyVaultError
from kvmigrate.emulator.store import Collection, Item, Version

RSA_KEY_OPS = ["sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"]
EC_KEY_OPS = ["sign", "verify"]
BACKDATE = timedelta(minutes=10)  # recordings: nbf = created - 600 s


def linked_item(store: Collection, name: str) -> Item | None:
    """The object of ``name`` wherever it is: active, soft-deleted or being recovered."""
    key = name.lower()
    if key in store.active:
        return store.active[key]
    if key in store.deleted:
        return store.deleted[key].item
    if key in store.recovering:
        return store.recovering[key][0]
    return None


def versions_of(vault: Vault, item: Item, version_id: str) -> list[Version]:
    """Version ``version_id`` of the certificate and of its managed key and secret (those that exist)."""
    found = [item.version(version_id)]
    for store in (vault.keys, vault.secrets):
        linked = linked_item(store, item.name)
        found.append(linked.version(version_id) if linked else None)
    return [version for version in found if version is not None]


def check_free(vault: Vault, name: str) -> None:
    """Refuse a create or import that would collide, before anything is written (no half-made certificate)."""
    vault.certificates.check_writable(name)
    for store in (vault.keys, vault.secrets):
        store.check_writable(name)
        existing = store.find(name)
        if existing is not None and not existing.managed:
            # Guess at the wording: the service refuses with 409 but the facts sheet has no recorded message.
            raise KeyVaultError(
                409,
                "Conflict",
                f"There is already a {store.kind} named {name} in this key vault that does not belong to a "
                f"certificate; a certificate needs its own key and secret of that name. Choose another name.",
            )


def add_versions(
    vault: Vault,
    name: str,
    *,
    version_id: str,
    stamp: int,
    key: material.PrivateKey,
    policy: JsonBody,
    certificate: JsonBody,
    secret_value: str,
    validity: tuple[int, int],
    enabled: bool,
    tags: dict[str, str] | None,
) -> Item:
    """Write version ``version_id`` of the certificate, its key and its secret (same id, facts §13)."""
    nbf, exp = validity
    key_props = policy["key_props"]

    def version(data: JsonBody, content_type: str | None = None, version_tags: dict[str, str] | None = None) -> Version:
        return Version(
            id=version_id,
            created=stamp,
            updated=stamp,
            enabled=enabled,
            nbf=nbf,
            exp=exp,
            tags=version_tags,
            content_type=content_type,
            data=data,
        )

    key_ops = RSA_KEY_OPS if key_props["kty"].startswith("RSA") else EC_KEY_OPS
    # Guess: the key carries the certificate's validity as nbf/exp (the secret does, facts §13); tags stay on the
    # certificate only.
    vault.keys.upsert(
        name,
        version(
            {
                "kty": key_props["kty"],
                "key_ops": list(key_ops),
                "pem": material.private_key_to_pem(key).decode("ascii"),
                "exportable": key_props["exportable"],
            }
        ),
        managed=True,
    )
    vault.secrets.upsert(name, version({"value": secret_value}, policy["secret_props"]["contentType"]), managed=True)
    item = vault.certificates.upsert(name, version(certificate, version_tags=tags))
    item.extra["policy"] = policy
    return item


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def validity_of(cert: x509.Certificate) -> tuple[int, int]:
    return _timestamp(cert.not_valid_before_utc), _timestamp(cert.not_valid_after_utc)


def planned_validity(months: int) -> tuple[int, int]:
    """nbf/exp a pending CSR shows before any certificate exists: backdated 10 min, ``months`` long (approx.)."""
    start = datetime.now(UTC) - BACKDATE
    return _timestamp(start), _timestamp(start + timedelta(days=round(months * 30.436875)))


def certificate_data(cert: x509.Certificate, *, pending: bool) -> JsonBody:
    return {"cer": material.cer(cert), "x5t": material.x5t(cert), "pending": pending}
