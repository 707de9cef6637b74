"""How the shared collection routes treat a certificate: delete, recover, purge, backup and restore carry its key
and secret along, and ``KIND`` ties the renderings together."""

from __future__ import annotations

from typing import Any

from kvmigrate.emulator import backup_blob
from kvmigrate.emulator.app import Vault
from kvmigrate.emulator.certificates.lifecycle import advance, schedule
from kvmigrate.emulator.certificates.render import certificate_bundle, certificate_item, restored_bundle
from kvmigrate.emulator.errors import KeyVaultError
from kvmigrate.emulator.objects import Kind
from kvmigrate.emulator.paging import PageQuery
from kvmigrate.emulator.store import Collection, Item, Version


def _cascade_delete(vault: Vault, name: str) -> None:
    for store in (vault.keys, vault.secrets):
        if store.find(name) is not None:
            store.delete(name)


def _cascade_recover(vault: Vault, name: str) -> None:
    for store in (vault.keys, vault.secrets):  # deleted together with the certificate: visible with it
        entry = store.deleted.pop(name.lower(), None)
        if entry is not None:
            store.recovering[name.lower()] = (entry.item, store.clock() + store.delay())


def _cascade_purge(vault: Vault, name: str) -> None:
    for store in (vault.keys, vault.secrets):
        if store.deleted.pop(name.lower(), None) is not None:
            store.purging[name.lower()] = store.clock() + store.delay()


def _pack(vault: Vault, item: Item) -> dict[str, Any]:
    """A certificate backup holds its key and secret (facts §8, §13)."""
    advance(vault, item)
    linked: dict[str, Any] = {}
    for field, store in (("key", vault.keys), ("secret", vault.secrets)):
        found = store.find(item.name)
        if found is not None:
            linked[field] = found.to_blob()
    return linked


def _unpack(vault: Vault, item: Item, linked: dict[str, Any]) -> None:
    """Restore the key and secret with their version ids, or nothing at all (the caller removes the certificate)."""
    if not isinstance(linked.get("key"), dict) or not isinstance(linked.get("secret"), dict):
        raise backup_blob.malformed()
    done: list[tuple[Collection, str]] = []
    try:
        for field, store in (("key", vault.keys), ("secret", vault.secrets)):
            restored = Item.from_blob(linked[field])
            store.restore(restored, object_id=vault.object_id(f"{field}s", restored.name, restored.latest.id))
            done.append((store, restored.name.lower()))
    except KeyVaultError as exc:
        for store, key in done:
            del store.active[key]
        certificate_id = vault.object_id("certificates", item.name, item.latest.id)
        raise KeyVaultError(
            409,
            "Conflict",
            f"There was a conflict restoring the certificate '{certificate_id}'. This can happen if either: a key or "
            f"secret named {item.name} is in use or deleted in this vault; the certificate needs both names for its "
            f"own key and secret. To fix this, rename or purge that object and try the restore again. Or: multiple "
            f"operations were performed on this certificate in parallel. To fix this, retry the restore operation "
            f"again.",
        ) from exc
    schedule(vault, item)


def _listed(vault: Vault, item: Item, query: PageQuery) -> Version | None:
    """A listing shows the newest issued version; a certificate with none shows only with ``includePending``."""
    advance(vault, item)
    issued = next((version for version in reversed(item.versions.values()) if not version.data.get("pending")), None)
    if issued is not None:
        return issued
    return item.latest if query.include_pending else None


KIND = Kind(
    "certificate",
    lambda vault: vault.certificates,
    certificate_bundle,
    certificate_item,
    pack=_pack,
    unpack=_unpack,
    on_delete=_cascade_delete,
    on_recover=_cascade_recover,
    on_purge=_cascade_purge,
    restore_bundle=restored_bundle,
    listed=_listed,
)
