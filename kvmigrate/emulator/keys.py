"""Key routes: create (real RSA/EC material), import, get, update, plus the shared collection routes.

Version.data of a key: ``{"kty": as requested ("RSA", "RSA-HSM", "EC", "EC-HSM"), "key_ops": [...], "pem": PKCS8
private key, "exportable": bool, "release_policy"?: {...}}`` - certificates create their managed keys in the same
shape. Only the public JWK ever leaves the emulator, as in Key Vault.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from kvmigrate.emulator import material, rotation
from kvmigrate.emulator.app import (
    Call,
    JsonBody,
    Reply,
    Route,
    Vault,
    attributes,
    is_newer_api,
    now,
    read_attributes,
    route,
)
from kvmigrate.emulator.errors import bad_parameter
from kvmigrate.emulator.objects import Kind, get_version, managed_forbidden, name_checked, shared_routes
from kvmigrate.emulator.store import Item, Version, check_tags, new_version_id

MAX_TAG_LENGTH = 256  # keys doc (facts §5)
RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]  # as the recordings show
EC_OPS = ["sign", "verify"]
KEY_TYPES = ("RSA", "RSA-HSM", "EC", "EC-HSM")  # a standard vault: no oct / oct-HSM
VALID_OPS = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}
DEFAULT_POLICY_CONTENT_TYPE = "application/json; charset=utf-8"

# Public JWK members by stored PEM. Reading an RSA PEM back validates the key (about 40 ms for 2048 bits, 0.3 s for
# 4096), which every GET, delete and restore answer would pay; the members never change for a given PEM.
_PUBLIC_MEMBERS: OrderedDict[str, dict[str, object]] = OrderedDict()
_PUBLIC_MEMBERS_MAX = 4096


def _public_members(pem: str, key: material.PrivateKey | None = None) -> dict[str, object]:
    """``n``/``e`` or ``crv``/``x``/``y`` of a stored key (``key`` spares the PEM parse when the caller has it)."""
    members = _PUBLIC_MEMBERS.get(pem)
    if members is not None:
        _PUBLIC_MEMBERS.move_to_end(pem)
        return members
    if key is None:
        key = material.private_key_from_pem(pem.encode("ascii"))
    jwk = material.public_jwk(key, kid="", kty="", key_ops=[])
    members = {name: value for name, value in jwk.items() if name not in ("kid", "kty", "key_ops")}
    _PUBLIC_MEMBERS[pem] = members
    if len(_PUBLIC_MEMBERS) > _PUBLIC_MEMBERS_MAX:
        _PUBLIC_MEMBERS.popitem(last=False)
    return members


def _jwk(vault: Vault, item: Item, version: Version) -> JsonBody:
    kty = version.data["kty"]
    jwk: JsonBody = {
        "kid": vault.object_id("keys", item.name, version.id),
        "kty": kty,
        "key_ops": list(version.data["key_ops"]),
        **_public_members(version.data["pem"]),
    }
    if kty == "RSA-HSM":
        # The HSM pads the exponent to four bytes: the recordings show "AAEAAQ" where software keys say "AQAB".
        exponent = int.from_bytes(material.b64url_decode(str(jwk["e"])), "big")
        jwk["e"] = material.b64url_encode(exponent.to_bytes(max(4, (exponent.bit_length() + 7) // 8), "big"))
    return jwk


def _key_attributes(vault: Vault, item: Item, version: Version) -> JsonBody:
    """Key attributes by the era of the api-version (app docstring).

    The 7.3 recordings carry no "exportable" on ordinary keys, so there it is sent only when true; the 7.6 and
    2025-07-01 ones always send ``exportable`` and ``hsmPlatform`` ("0" for software keys), plus ``key_size`` right
    after ``enabled`` for RSA keys. Guesses: a certificate's key says exportable false whatever the certificate
    policy says (the attribute belongs to secure key release, and the service refuses an exportable key without a
    release policy, AKV.SKR.1004); an -HSM key's platform is "2".
    """
    exportable = bool(version.data.get("exportable")) and not item.managed
    if not is_newer_api():
        return attributes(vault, version, extra={"exportable": True} if exportable else None)
    platform = "2" if version.data["kty"].endswith("-HSM") else "0"
    body = attributes(vault, version, extra={"exportable": exportable, "hsmPlatform": platform})
    if version.data["kty"].startswith("RSA"):
        modulus = int.from_bytes(material.b64url_decode(str(_public_members(version.data["pem"])["n"])), "big")
        body = {"enabled": body.pop("enabled"), "key_size": modulus.bit_length(), **body}
    return body


def key_bundle(vault: Vault, item: Item, version: Version) -> JsonBody:
    """A KeyBundle: public JWK, attributes, then tags, managed and release_policy when set (recordings)."""
    body: JsonBody = {"key": _jwk(vault, item, version), "attributes": _key_attributes(vault, item, version)}
    if version.tags:
        body["tags"] = version.tags
    if item.managed:
        body["managed"] = True
    if version.data.get("release_policy"):
        body["release_policy"] = version.data["release_policy"]
    return body


def key_item(vault: Vault, item: Item, version: Version, versioned: bool) -> JsonBody:
    """A KeyItem: ``kid`` without the version in ``GET /keys``, with it in ``/versions`` (recordings)."""
    body: JsonBody = {
        "kid": vault.object_id("keys", item.name, version.id if versioned else None),
        "attributes": _key_attributes(vault, item, version),
    }
    if version.tags:
        body["tags"] = version.tags
    if item.managed:
        body["managed"] = True
    return body


KIND = Kind("key", lambda vault: vault.keys, key_bundle, key_item, not_backed_up=(rotation.POLICY,))


# -- request parsing --------------------------------------------------------------------------------------------------
def _key_ops(raw: Any, default: list[str], what: str = "key_ops") -> list[str]:
    if raw is None:
        return list(default)
    if not isinstance(raw, list) or not all(isinstance(op, str) and op in VALID_OPS for op in raw):
        raise bad_parameter(f"{what} must be a list of key operations: {', '.join(sorted(VALID_OPS))}.")
    return list(raw)


def _optional(body: JsonBody, member: str, kind: type, what: str) -> Any:
    """``body[member]`` if it is a ``kind`` (a JSON boolean is not an integer here), else 400; None when absent."""
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise bad_parameter(f"{member} must be {what}.")
    return value


def _release_policy(raw: Any) -> JsonBody | None:
    """Validate a ``release_policy``; the service fills in the default content type."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_parameter("release_policy must be an object.")
    data = raw.get("data")
    if not isinstance(data, str) or not data:
        raise bad_parameter("release_policy.data must be the base64url-encoded policy.")
    try:
        material.b64url_decode(data)
    except material.MaterialError as exc:
        raise bad_parameter("release_policy.data must be the base64url-encoded policy.") from exc
    content_type = raw.get("contentType") or DEFAULT_POLICY_CONTENT_TYPE
    immutable = raw.get("immutable")
    if not isinstance(content_type, str) or (immutable is not None and not isinstance(immutable, bool)):
        raise bad_parameter("release_policy.contentType must be a string and release_policy.immutable a boolean.")
    policy: JsonBody = {"contentType": content_type, "data": data}
    if immutable is not None:
        policy["immutable"] = immutable
    return policy


def _new_version(body: JsonBody, *, kty: str, key: material.PrivateKey, default_ops: list[str]) -> Version:
    """A version from a create or import request; only the key material differs between the two."""
    attrs = read_attributes(body)
    raw_attrs = body.get("attributes") or {}
    exportable = _optional(raw_attrs, "exportable", bool, "a boolean") or False
    policy = _release_policy(body.get("release_policy"))
    # Secure key release pairs the two (secondary sources: azure-sdk-for-python#29945, azure-cli#28288).
    if exportable and policy is None:
        raise bad_parameter("AKV.SKR.1004: Exportable keys must have release policy.")
    if policy is not None and not exportable:
        raise bad_parameter("AKV.SKR.1005: Non-exportable keys must not have release policy.")
    pem = material.private_key_to_pem(key).decode("ascii")
    _public_members(pem, key)  # warm the cache while the parsed key is at hand
    data: dict[str, Any] = {
        "kty": kty,
        "key_ops": _key_ops(body.get("key_ops"), default_ops),
        "pem": pem,
        "exportable": exportable,
    }
    if policy is not None:
        data["release_policy"] = policy
    stamp = now()
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


# -- handlers ---------------------------------------------------------------------------------------------------------
async def create_key(vault: Vault, call: Call) -> Reply:
    body = call.json()
    kty = body.get("kty")
    if kty is None:
        raise bad_parameter("The key type (kty) is required.")
    if kty not in KEY_TYPES:
        raise bad_parameter(
            f"The key type (kty) {kty!r} is not supported by this vault. Supported: {', '.join(KEY_TYPES)}."
        )
    size = _optional(body, "key_size", int, "an integer")
    crv = _optional(body, "crv", str, "a curve name")
    exponent = _optional(body, "public_exponent", int, "an integer")
    name = call.params["name"]
    _refuse_managed(vault, name, "create")
    vault.keys.check_writable(name)  # refuse before spending the time on key generation
    try:
        # RSA generation takes up to a second for 4096 bits: keep the vault's other requests moving meanwhile.
        key = await asyncio.to_thread(material.generate_key, kty, size=size, crv=crv, public_exponent=exponent)
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    version = _new_version(body, kty=kty, key=key, default_ops=RSA_OPS if kty.startswith("RSA") else EC_OPS)
    item = vault.keys.upsert(name, version)
    return Reply(key_bundle(vault, item, version))


async def import_key(vault: Vault, call: Call) -> Reply:
    body = call.json()
    jwk = body.get("key")
    if not isinstance(jwk, dict):
        raise bad_parameter("The key (key) to import is required and must be a JSON Web Key.")
    hsm = _optional(body, "Hsm", bool, "a boolean")
    _refuse_managed(vault, call.params["name"], "import")
    try:
        key = material.private_key_from_jwk(jwk)
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    base = material.key_type_of(key)
    kty = f"{base}-HSM" if hsm or str(jwk.get("kty", "")).endswith("-HSM") else base
    default_ops = _key_ops(jwk.get("key_ops"), RSA_OPS if base == "RSA" else EC_OPS, "key.key_ops")
    version = _new_version(body, kty=kty, key=key, default_ops=default_ops)
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
    attrs = read_attributes(body)
    key_ops = _key_ops(body.get("key_ops"), version.data["key_ops"])
    tags = check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH) if "tags" in body else version.tags
    policy = _release_policy(body.get("release_policy"))
    current = version.data.get("release_policy")
    if policy is not None and not version.data.get("exportable"):
        raise bad_parameter("AKV.SKR.1005: Non-exportable keys must not have release policy.")
    if policy is not None and current and current.get("immutable") and policy != current:
        # Guess on the status: the SDK documents that an immutable release policy cannot be changed.
        raise bad_parameter("The release policy of this key is immutable and cannot be changed.")
    for name, value in attrs.items():
        setattr(version, name, value)
    version.data["key_ops"] = key_ops
    version.tags = tags
    if policy is not None:
        version.data["release_policy"] = policy
    version.updated = now()
    return Reply(key_bundle(vault, item, version))


async def rotate_key(vault: Vault, call: Call) -> Reply:
    """``POST /keys/{name}/rotate``: a new version with the current one's type, size or curve and operations, ``exp``
    from the rotation policy (rotation.py). Guess: tags are not carried over (the recordings rotate untagged keys)."""
    item = vault.keys.get(call.params["name"])
    if item.managed:
        raise managed_forbidden("key", "rotate")
    current = item.latest
    old = material.private_key_from_pem(current.data["pem"].encode("ascii"))
    curve = material.curve_name(old)
    size = None if curve else old.key_size
    key = await asyncio.to_thread(material.generate_key, current.data["kty"], size=size, crv=curve)
    stamp = now()
    data: JsonBody = {
        "kty": current.data["kty"],
        "key_ops": list(current.data["key_ops"]),
        "pem": material.private_key_to_pem(key).decode("ascii"),
        "exportable": bool(current.data.get("exportable")),
    }
    if current.data.get("release_policy"):
        data["release_policy"] = dict(current.data["release_policy"])
    version = Version(
        id=new_version_id(), created=stamp, updated=stamp, exp=rotation.rotated_expiry(item, stamp), data=data
    )
    vault.keys.upsert(item.name, version)
    return Reply(key_bundle(vault, item, version))


def routes() -> list[Route]:
    return [
        *rotation.routes(),
        route("POST", "/keys/{name}/rotate", "keys.rotate", "rotate", name_checked(rotate_key)),
        *shared_routes(KIND),
        route("POST", "/keys/{name}/create", "keys.create", "create", name_checked(create_key)),
        route("PUT", "/keys/{name}", "keys.import", "import", name_checked(import_key), is_create=True),
        route("GET", "/keys/{name}", "keys.get", "get", name_checked(get_key)),
        route("GET", "/keys/{name}/{version}", "keys.get", "get", name_checked(get_key)),
        route("PATCH", "/keys/{name}/{version}", "keys.update", "update", name_checked(update_key)),
    ]
