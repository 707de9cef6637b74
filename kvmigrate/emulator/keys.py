"""Key routes: create (real RSA/EC material), import, get, update, plus the shared collection routes.

Version.data of a key: ``{"kty": as requested ("RSA", "RSA-HSM", "EC", "EC-HSM"), "key_ops": [...], "pem": PKCS8
private key, "exportable": bool}`` - certificates create their managed keys in the same shape. Only the public JWK
ever leaves the emulator, as in Key Vault.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from kvmigrate.emulator import material
from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, attributes, now, read_attributes, route
from kvmigrate.emulator.errors import bad_parameter
from kvmigrate.emulator.objects import Kind, get_version, managed_forbidden, name_checked, shared_routes
from kvmigrate.emulator.store import Item, Version, check_tags, new_version_id

MAX_TAG_LENGTH = 256  # keys doc (facts §5)
RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]  # as the recordings show
EC_OPS = ["sign", "verify"]
KEY_TYPES = {"RSA", "RSA-HSM", "EC", "EC-HSM"}
VALID_OPS = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}


def _jwk(vault: Vault, item: Item, version: Version) -> JsonBody:
    key = material.private_key_from_pem(version.data["pem"].encode())
    jwk = material.public_jwk(
        key,
        kid=vault.object_id("keys", item.name, version.id),
        kty=version.data["kty"],
        key_ops=list(version.data["key_ops"]),
    )
    if version.data["kty"] == "RSA-HSM" and isinstance(key, rsa.RSAPrivateKey):
        # The HSM pads the exponent to four bytes: the recordings show "AAEAAQ" where software keys say "AQAB".
        jwk["e"] = material.b64url_encode(key.public_key().public_numbers().e.to_bytes(4, "big"))
    return jwk


def _key_attributes(vault: Vault, version: Version) -> JsonBody:
    extra = {"exportable": True} if version.data.get("exportable") else None
    return attributes(vault, version, extra=extra)


def key_bundle(vault: Vault, item: Item, version: Version) -> JsonBody:
    body: JsonBody = {"key": _jwk(vault, item, version), "attributes": _key_attributes(vault, version)}
    if version.tags:
        body["tags"] = version.tags
    if item.managed:
        body["managed"] = True
    if version.data.get("release_policy"):
        body["release_policy"] = version.data["release_policy"]
    return body


def key_item(vault: Vault, item: Item, version: Version, versioned: bool) -> JsonBody:
    body: JsonBody = {
        "kid": vault.object_id("keys", item.name, version.id if versioned else None),
        "attributes": _key_attributes(vault, version),
    }
    if version.tags:
        body["tags"] = version.tags
    if item.managed:
        body["managed"] = True
    return body


KIND = Kind("key", lambda vault: vault.keys, key_bundle, key_item)


def _key_ops(body: JsonBody, default: list[str]) -> list[str]:
    ops = body.get("key_ops")
    if ops is None:
        return list(default)
    if not isinstance(ops, list) or not all(isinstance(op, str) and op in VALID_OPS for op in ops):
        raise bad_parameter(f"key_ops must be a list of {sorted(VALID_OPS)}.")
    return list(ops)


def _new_version(body: JsonBody, *, kty: str, key: material.PrivateKey, default_ops: list[str]) -> Version:
    attrs = read_attributes(body)
    raw_attrs: Any = body.get("attributes") or {}
    stamp = now()
    data: dict[str, Any] = {
        "kty": kty,
        "key_ops": _key_ops(body, default_ops),
        "pem": material.private_key_to_pem(key).decode("ascii"),
        "exportable": bool(raw_attrs.get("exportable", False)),
    }
    if body.get("release_policy") is not None:
        data["release_policy"] = body["release_policy"]
    return Version(
        id=new_version_id(),
        created=stamp,
        updated=stamp,
        enabled=attrs.get("enabled", True),
        nbf=attrs.get("nbf"),
        exp=attrs.get("exp"),
        tags=check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH),
        data=data,
    )


def _refuse_managed(vault: Vault, name: str, operation: str) -> None:
    existing = vault.keys.find(name)
    if existing is not None and existing.managed:
        raise managed_forbidden("key", operation)


async def create_key(vault: Vault, call: Call) -> Reply:
    body = call.json()
    kty = body.get("kty")
    if kty not in KEY_TYPES:
        raise bad_parameter(
            f"The key type (kty) {kty!r} is not supported by this vault; use RSA, RSA-HSM, EC or EC-HSM."
        )
    _refuse_managed(vault, call.params["name"], "create")
    size, crv, exponent = body.get("key_size"), body.get("crv"), body.get("public_exponent")
    try:
        key = material.generate_key(
            kty,
            size=size if isinstance(size, int) else None,
            crv=crv if isinstance(crv, str) else None,
            public_exponent=exponent if isinstance(exponent, int) else None,
        )
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    version = _new_version(body, kty=kty, key=key, default_ops=RSA_OPS if kty.startswith("RSA") else EC_OPS)
    item = vault.keys.upsert(call.params["name"], version)
    return Reply(key_bundle(vault, item, version))


async def import_key(vault: Vault, call: Call) -> Reply:
    body = call.json()
    jwk = body.get("key")
    if not isinstance(jwk, dict):
        raise bad_parameter("The key (key) to import is required and must be a JSON Web Key.")
    _refuse_managed(vault, call.params["name"], "import")
    try:
        key = material.private_key_from_jwk(jwk)
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    base = material.key_type_of(key)
    kty = f"{base}-HSM" if body.get("Hsm") or str(jwk.get("kty", "")).endswith("-HSM") else base
    default_ops = jwk.get("key_ops") if isinstance(jwk.get("key_ops"), list) else None
    version = _new_version(body, kty=kty, key=key, default_ops=default_ops or (RSA_OPS if base == "RSA" else EC_OPS))
    item = vault.keys.upsert(call.params["name"], version)
    return Reply(key_bundle(vault, item, version))


async def get_key(vault: Vault, call: Call) -> Reply:
    item = vault.keys.get(call.params["name"])
    return Reply(key_bundle(vault, item, get_version(KIND, item, call.params.get("version", ""))))


async def update_key(vault: Vault, call: Call) -> Reply:
    body = call.json()
    item = vault.keys.get(call.params["name"])
    if item.managed:
        raise managed_forbidden("key", "update")
    version = get_version(KIND, item, call.params.get("version", ""))
    for key, value in read_attributes(body).items():
        setattr(version, key, value)
    if "key_ops" in body:
        version.data["key_ops"] = _key_ops(body, version.data["key_ops"])
    if "tags" in body:
        version.tags = check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH)
    if body.get("release_policy") is not None:
        version.data["release_policy"] = body["release_policy"]
    version.updated = now()
    return Reply(key_bundle(vault, item, version))


def routes() -> list[Route]:
    return [
        *shared_routes(KIND),
        route("POST", "/keys/{name}/create", "keys.create", "create", name_checked(create_key)),
        route("PUT", "/keys/{name}", "keys.import", "import", name_checked(import_key), is_create=True),
        route("GET", "/keys/{name}", "keys.get", "get", name_checked(get_key)),
        route("GET", "/keys/{name}/{version}", "keys.get", "get", name_checked(get_key)),
        route("PATCH", "/keys/{name}/{version}", "keys.update", "update", name_checked(update_key)),
    ]
