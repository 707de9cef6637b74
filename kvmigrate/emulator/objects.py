"""Routes every collection shares: list, versions, delete, deleted, recover, purge, backup and restore.

A ``Kind`` says how one collection renders its objects and which hooks it needs (certificates cascade to their
managed key and secret); the handlers here are written once for secrets, keys and certificates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kvmigrate.emulator import backup_blob
from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, route
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter, not_found
from kvmigrate.emulator.material import MaterialError, b64url_decode, b64url_encode
from kvmigrate.emulator.paging import PageQuery, page
from kvmigrate.emulator.store import Collection, Deleted, Item, Version, check_name

MAX_BACKUP_VERSIONS = 500


@dataclass(frozen=True)
class Kind:
    """How one collection renders and moves its objects."""

    name: str  # secret | key | certificate
    store: Callable[[Vault], Collection]
    bundle: Callable[[Vault, Item, Version], JsonBody]  # GET answer
    list_item: Callable[[Vault, Item, Version, bool], JsonBody]  # bool: versioned id (versions listing)
    pack: Callable[[Vault, Item], dict[str, Any]] | None = None  # extra payload for a backup (certificates)
    unpack: Callable[[Vault, Item, dict[str, Any]], None] | None = None  # restore the extra payload
    on_delete: Callable[[Vault, str], None] | None = None
    on_recover: Callable[[Vault, str], None] | None = None
    on_purge: Callable[[Vault, str], None] | None = None
    restore_bundle: Callable[[Vault, Item, Version], JsonBody] | None = None
    #: The version a listing shows for an object, or None to leave the object out (pending certificates).
    listed: Callable[[Vault, Item, PageQuery], Version | None] = lambda vault, item, query: item.latest
    #: ``Item.extra`` members no backup blob carries (a key's rotation policy, facts §17).
    not_backed_up: tuple[str, ...] = ()

    @property
    def collection(self) -> str:
        return f"{self.name}s"

    @property
    def deleted_collection(self) -> str:
        return f"deleted{self.name}s"


def managed_forbidden(kind: str, operation: str) -> KeyVaultError:
    """The 403 for a direct write to a certificate's key or secret (facts §10, §13)."""
    word = "Key" if kind == "key" else kind
    return KeyVaultError(
        403,
        "Forbidden",
        f'Operation "{operation}" is not allowed on this {word}, since it is associated with a certificate. '
        f"Perform the operation on the corresponding certificate. For more information, see "
        f"https://go.microsoft.com/fwlink/?linkid=2125182",
        inner="SecretManagedByKeyVault" if kind == "secret" else "KeyManagedByKeyVault",
    )


def deleted_fields(vault: Vault, kind: Kind, entry: Deleted) -> JsonBody:
    return {
        "recoveryId": vault.object_id(kind.deleted_collection, entry.item.name),
        "deletedDate": entry.deleted_date,
        "scheduledPurgeDate": entry.scheduled_purge,
    }


def get_version(kind: Kind, item: Item, version_id: str) -> Version:
    if not version_id:
        return item.latest
    found = item.version(version_id)
    if found is None:
        raise not_found(kind.name, f"{item.name}/{version_id}")
    return found


def shared_routes(kind: Kind) -> list[Route]:
    """The routes every collection has, in matching order (fixed words before ``{version}``)."""
    c, d = kind.collection, kind.deleted_collection

    async def list_objects(vault: Vault, call: Call) -> Reply:
        query = PageQuery.read(vault, call)
        shown = [
            (item, version)
            for item in kind.store(vault).listing_after(
                query.marker, query.window, lambda i: kind.listed(vault, i, query) is not None
            )
            if (version := kind.listed(vault, item, query)) is not None
        ]
        return page(
            vault,
            call,
            query,
            shown,
            lambda pair: pair[0].name.upper(),
            lambda pair: kind.list_item(vault, pair[0], pair[1], False),
        )

    async def list_versions(vault: Vault, call: Call) -> Reply:
        item = kind.store(vault).find(call.params["name"])
        versions = sorted(item.versions.values(), key=lambda v: v.id) if item else []
        assert item is not None or not versions
        query = PageQuery.read(vault, call)
        return page(vault, call, query, versions, lambda v: v.id, lambda v: kind.list_item(vault, item, v, True))  # type: ignore[arg-type]

    async def delete(vault: Vault, call: Call) -> Reply:
        store = kind.store(vault)
        item = store.get(call.params["name"])
        if item.managed:
            raise managed_forbidden(kind.name, "delete")
        entry = store.delete(call.params["name"])
        if kind.on_delete:
            kind.on_delete(vault, item.name)
        body = kind.bundle(vault, item, item.latest)
        body.pop("value", None)
        if vault.settings.soft_delete_days:
            body = {**deleted_fields(vault, kind, entry), **body}
        return Reply(body)

    async def get_deleted(vault: Vault, call: Call) -> Reply:
        entry = kind.store(vault).get_deleted(call.params["name"])
        body = kind.bundle(vault, entry.item, entry.item.latest)
        body.pop("value", None)
        return Reply({**deleted_fields(vault, kind, entry), **body})

    async def list_deleted(vault: Vault, call: Call) -> Reply:
        query = PageQuery.read(vault, call)
        entries = kind.store(vault).deleted_after(
            query.marker, query.window, lambda e: kind.listed(vault, e.item, query) is not None
        )

        def render(entry: Deleted) -> JsonBody:
            version = kind.listed(vault, entry.item, query)
            assert version is not None  # the store picked only listed entries
            body = kind.list_item(vault, entry.item, version, False)
            return {
                "recoveryId": vault.object_id(d, entry.item.name),
                "deletedDate": entry.deleted_date,
                "scheduledPurgeDate": entry.scheduled_purge,
                **body,
            }

        return page(vault, call, query, entries, lambda e: e.item.name.upper(), render, trailing_empty=True)

    async def recover(vault: Vault, call: Call) -> Reply:
        store = kind.store(vault)
        entry = store.get_deleted(call.params["name"])
        if entry.item.managed:
            raise managed_forbidden(kind.name, "recover")
        item = store.recover(call.params["name"])
        if kind.on_recover:
            kind.on_recover(vault, item.name)
        body = kind.bundle(vault, item, item.latest)
        body.pop("value", None)
        return Reply(body)

    async def purge(vault: Vault, call: Call) -> Reply:
        store = kind.store(vault)
        entry = store.get_deleted(call.params["name"])
        if entry.item.managed:
            raise managed_forbidden(kind.name, "purge")
        if vault.settings.purge_protection:
            raise KeyVaultError(
                403,
                "Forbidden",
                'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault '
                "service will automatically purge it after the retention period has passed.",
                inner="PurgeProtectionEnabled",
            )
        store.purge(call.params["name"])
        if kind.on_purge:
            kind.on_purge(vault, entry.item.name)
        return Reply(None, status=204)

    async def backup(vault: Vault, call: Call) -> Reply:
        item = kind.store(vault).get(call.params["name"])
        if item.managed:
            raise managed_forbidden(kind.name, "backup")
        if len(item.versions) > MAX_BACKUP_VERSIONS:
            # Guess: the docs say only that backup of more than 500 versions "may result in an error".
            raise bad_parameter(
                f"Backup is not supported for a {kind.name} with more than {MAX_BACKUP_VERSIONS} versions; "
                f"{item.name} has {len(item.versions)}."
            )
        saved = item.to_blob()
        saved["extra"] = {member: value for member, value in item.extra.items() if member not in kind.not_backed_up}
        payload: dict[str, Any] = {"item": saved}
        if kind.pack:
            payload["linked"] = kind.pack(vault, item)
        vault.stats.objects[f"{c}.backup/{item.name.lower()}"] += 1
        blob = backup_blob.seal(
            kind.name, payload, subscription=vault.settings.subscription, geography=vault.settings.geography
        )
        return Reply({"value": b64url_encode(blob)})

    async def restore(vault: Vault, call: Call) -> Reply:
        body = call.json()
        value = body.get("value")
        if not isinstance(value, str) or not value:
            raise bad_parameter("The backup blob (value) is required.")
        try:
            blob = b64url_decode(value)
        except MaterialError as exc:
            raise backup_blob.malformed() from exc
        payload = backup_blob.open_blob(
            blob,
            expected_tag=backup_blob.TAG_FOR[kind.name],
            subscription=vault.settings.subscription,
            geography=vault.settings.geography,
        )
        if payload.get("kind") != kind.name:
            raise backup_blob.malformed()
        item = Item.from_blob(payload["item"])
        store = kind.store(vault)
        store.restore(item, object_id=vault.object_id(kind.collection, item.name, item.latest.id))
        if kind.unpack:
            try:
                kind.unpack(vault, item, payload.get("linked") or {})
            except KeyVaultError:
                del store.active[item.name.lower()]
                raise
        vault.stats.objects[f"{c}.restore/{item.name.lower()}"] += 1
        render = kind.restore_bundle or kind.bundle
        restored = render(vault, item, item.latest)
        restored.pop("value", None)
        return Reply(restored)

    def checked(handler: Callable[[Vault, Call], Any]) -> Callable[[Vault, Call], Any]:
        async def wrapper(vault: Vault, call: Call) -> Reply:
            if "name" in call.params:
                check_name(call.params["name"])
            result: Reply = await handler(vault, call)
            return result

        return wrapper

    return [
        route("GET", f"/{c}", f"{c}.list", "list", list_objects),
        route("POST", f"/{c}/restore", f"{c}.restore", "restore", restore),
        route("GET", f"/{c}/{{name}}/versions", f"{c}.versions", "list", checked(list_versions)),
        route("POST", f"/{c}/{{name}}/backup", f"{c}.backup", "backup", checked(backup)),
        route("DELETE", f"/{c}/{{name}}", f"{c}.delete", "delete", checked(delete)),
        route("GET", f"/{d}", f"{c}.list_deleted", "list", list_deleted),
        route("GET", f"/{d}/{{name}}", f"{c}.get_deleted", "get", checked(get_deleted)),
        route("DELETE", f"/{d}/{{name}}", f"{c}.purge", "purge", checked(purge)),
        route("POST", f"/{d}/{{name}}/recover", f"{c}.recover", "recover", checked(recover)),
    ]


def name_checked(handler: Callable[[Vault, Call], Any]) -> Callable[[Vault, Call], Any]:
    """Validate ``{name}`` before a collection-specific handler runs."""

    async def wrapper(vault: Vault, call: Call) -> Reply:
        check_name(call.params.get("name", ""))
        result: Reply = await handler(vault, call)
        return result

    return wrapper
