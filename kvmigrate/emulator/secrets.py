"""Secret routes: set, get (latest and by version), update, plus the shared collection routes."""

from __future__ import annotations

from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, attributes, now, read_attributes, route
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter
from kvmigrate.emulator.objects import Kind, get_version, managed_forbidden, name_checked, shared_routes
from kvmigrate.emulator.store import Item, Version, check_tags, new_version_id

MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255
MAX_TAG_LENGTH = 512


def secret_bundle(vault: Vault, item: Item, version: Version) -> JsonBody:
    body: JsonBody = {"value": version.data["value"], "id": vault.object_id("secrets", item.name, version.id)}
    if version.content_type is not None:
        body["contentType"] = version.content_type
    body["attributes"] = attributes(vault, version)
    if version.tags:
        body["tags"] = version.tags
    if item.managed:
        body["kid"] = vault.object_id("keys", item.name, version.id)
        body["managed"] = True
    return body


def secret_item(vault: Vault, item: Item, version: Version, versioned: bool) -> JsonBody:
    body: JsonBody = {"id": vault.object_id("secrets", item.name, version.id if versioned else None)}
    body["attributes"] = attributes(vault, version)
    if version.tags:
        body["tags"] = version.tags
    if version.content_type is not None:
        body["contentType"] = version.content_type
    if item.managed:
        body["managed"] = True
    return body


KIND = Kind("secret", lambda vault: vault.secrets, secret_bundle, secret_item)


def _content_type(body: JsonBody) -> str | None:
    value = body.get("contentType")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_CONTENT_TYPE):
        raise bad_parameter(f"contentType must be a string of at most {MAX_CONTENT_TYPE} characters.")
    return value


def _readable(item: Item, version: Version) -> None:
    if not version.enabled:
        raise KeyVaultError(
            403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
        )


async def set_secret(vault: Vault, call: Call) -> Reply:
    body = call.json()
    value = body.get("value")
    if not isinstance(value, str):
        raise bad_parameter("The secret value (value) is required and must be a string.")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise bad_parameter(f"The secret value is too large: at most {MAX_VALUE_BYTES} bytes are allowed.")
    name = call.params["name"]
    existing = vault.secrets.find(name)
    if existing is not None and existing.managed:
        raise managed_forbidden("secret", "set")
    attrs = read_attributes(body)
    stamp = now()
    version = Version(
        id=new_version_id(),
        created=stamp,
        updated=stamp,
        enabled=attrs.get("enabled", True),
        nbf=attrs.get("nbf"),
        exp=attrs.get("exp"),
        tags=check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH),
        content_type=_content_type(body),
        data={"value": value},
    )
    item = vault.secrets.upsert(name, version)
    return Reply(secret_bundle(vault, item, version))


async def get_secret(vault: Vault, call: Call) -> Reply:
    item = vault.secrets.get(call.params["name"])
    version = get_version(KIND, item, call.params.get("version", ""))
    _readable(item, version)
    return Reply(secret_bundle(vault, item, version))


async def update_secret(vault: Vault, call: Call) -> Reply:
    body = call.json()
    item = vault.secrets.get(call.params["name"])
    if item.managed:
        raise managed_forbidden("secret", "update")
    version = get_version(KIND, item, call.params.get("version", ""))
    attrs = read_attributes(body)
    for key, value in attrs.items():
        setattr(version, key, value)
    if "contentType" in body:
        version.content_type = _content_type(body)
    if "tags" in body:
        version.tags = check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH)
    version.updated = now()
    rendered = secret_bundle(vault, item, version)
    rendered.pop("value")
    return Reply(rendered)


def routes() -> list[Route]:
    return [
        *shared_routes(KIND),
        route("PUT", "/secrets/{name}", "secrets.set", "set", name_checked(set_secret), is_create=True),
        route("GET", "/secrets/{name}", "secrets.get", "get", name_checked(get_secret)),
        route("GET", "/secrets/{name}/{version}", "secrets.get", "get", name_checked(get_secret)),
        route("PATCH", "/secrets/{name}/{version}", "secrets.update", "set", name_checked(update_secret)),
    ]
