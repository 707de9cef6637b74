"""Certificate create (self-signed or CSR), import, get, update and the policy routes."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from datetime import UTC, datetime

from cryptography import x509

from kvmigrate.emulator import material
from kvmigrate.emulator.app import Call, JsonBody, Reply, Vault, now, read_attributes
from kvmigrate.emulator.certificates.hooks import KIND
from kvmigrate.emulator.certificates.lifecycle import advance, schedule
from kvmigrate.emulator.certificates.managed import (
    BACKDATE,
    add_versions,
    certificate_data,
    check_free,
    planned_validity,
    validity_of,
    versions_of,
)
from kvmigrate.emulator.certificates.policy import (
    as_object,
    build_policy,
    key_props_of,
    merged_policy,
    parse_issuer,
    read_tags,
    requested_policy,
    x509_of,
)
from kvmigrate.emulator.certificates.render import certificate_bundle, operation_body, policy_body, version_body
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter
from kvmigrate.emulator.objects import get_version
from kvmigrate.emulator.store import Item, new_version_id


def _preserve_order(body: JsonBody, data: JsonBody) -> None:
    value = body.get("preserveCertOrder")
    if value is not None:
        if not isinstance(value, bool):
            raise bad_parameter("preserveCertOrder must be a boolean.")
        data["preserveCertOrder"] = value


def _reusable_key(vault: Vault, name: str, key_props: JsonBody) -> material.PrivateKey | None:
    """The current key of ``name`` when the policy says ``reuse_key`` and its type still fits."""
    if not key_props["reuse_key"]:
        return None
    item = vault.keys.find(name)
    if item is None or "pem" not in item.latest.data:
        return None
    key = material.private_key_from_pem(item.latest.data["pem"].encode("ascii"))
    same_type = material.key_type_of(key) == key_props["kty"].removesuffix("-HSM")
    return key if same_type and material.curve_name(key) == key_props.get("crv") else None


def _no_running_operation(vault: Vault, name: str) -> Item | None:
    existing = vault.certificates.find(name)
    if existing is not None:
        advance(vault, existing)
        op = existing.extra.get("operation")
        if op and op["status"] == "inProgress":
            # Guess at status and wording: the facts sheet has no recording of a second create while one is pending.
            raise KeyVaultError(
                409,
                "Conflict",
                f"Certificate {name} has a pending certificate operation; wait "
                "for it to complete, or delete it, before adding a new version.",
            )
    return existing


async def create_certificate(vault: Vault, call: Call) -> Reply:
    name, body = call.params["name"], call.json()
    raw_policy = body.get("policy")
    if not isinstance(raw_policy, dict):
        raise bad_parameter("The certificate policy (policy) is required.")
    existing = _no_running_operation(vault, name)
    stamp = now()
    policy = requested_policy(
        vault, raw_policy, stamp=stamp, previous=existing.extra.get("policy") if existing else None
    )
    attrs, tags = read_attributes(body), read_tags(body)
    check_free(vault, name)
    x509_props, key_props = policy["x509_props"], policy["key_props"]
    sans = x509_props.get("sans") or {}
    subject = x509_props.get("subject", "")  # empty with SANs only: the service issues such certificates
    is_self = policy["issuer"]["name"].lower() == "self"
    try:
        key = _reusable_key(vault, name, key_props) or material.generate_key(
            key_props["kty"], size=key_props["key_size"], crv=key_props.get("crv")
        )
        csr = material.certificate_signing_request(
            key, subject=subject, sans=sans, ekus=x509_props["ekus"], key_usage=x509_props["key_usage"]
        )
        cert: x509.Certificate | None = None
        secret = ""  # an outside CA's certificate arrives with the merge
        if is_self:  # signed now, shown once the operation completes
            cert = material.self_signed_certificate(
                key,
                subject=subject,
                sans=sans,
                validity_months=x509_props["validity_months"],
                ekus=x509_props["ekus"],
                key_usage=x509_props["key_usage"],
                not_before=datetime.now(UTC) - BACKDATE,
            )
            secret = material.export_secret_value(key, cert, [], content_type=policy["secret_props"]["contentType"])
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    data = certificate_data(cert, pending=True) if cert is not None else {"pending": True}
    _preserve_order(body, data)
    version_id = new_version_id()
    validity = validity_of(cert) if cert is not None else planned_validity(x509_props["validity_months"])
    item = add_versions(
        vault,
        name,
        version_id=version_id,
        stamp=stamp,
        key=key,
        policy=policy,
        certificate=data,
        secret_value=secret,
        validity=validity,
        enabled=False,
        tags=tags,
    )
    op: JsonBody = {
        "request_id": uuid.uuid4().hex,
        "issuer": {"name": policy["issuer"]["name"]},  # the operation names only the issuer (recordings)
        "csr": base64.b64encode(csr).decode("ascii"),
        "cancellation_requested": False,
        "status": "inProgress",
        "version": version_id,
        "enabled": attrs.get("enabled", True),
    }
    if is_self:  # Unknown waits for a merge; a registered issuer's CA is out of an offline emulator's reach
        op["due"] = time.time() + vault.settings.issuance_delay
    item.extra["operation"] = op
    schedule(vault, item)
    api_version = call.request.query["api-version"]  # the app has checked it
    location = (
        f"{vault.object_id('certificates', item.name, 'pending')}?api-version={api_version}"
        f"&request_id={op['request_id']}"
    )
    return Reply(operation_body(vault, item, op), status=202, headers={"Location": location, "Retry-After": "10"})


def _is_pem(value: str) -> bool:
    if value.lstrip().startswith("-----BEGIN"):
        return True
    head = "".join(value.split())[:64].rstrip("=")
    try:
        return base64.b64decode(head + "=" * (-len(head) % 4)).lstrip().startswith(b"-----BEGIN")
    except (binascii.Error, ValueError):
        return False


async def import_certificate(vault: Vault, call: Call) -> Reply:
    name, body = call.params["name"], call.json()
    value, password = body.get("value"), body.get("pwd")
    if not isinstance(value, str) or not value:
        raise bad_parameter("The certificate content (value) is required: base64 of a PFX file or of PEM text.")
    if password is not None and not isinstance(password, str):
        raise bad_parameter("pwd must be a string.")
    raw_policy = as_object(body.get("policy"), "policy")
    hint = as_object(raw_policy.get("secret_props"), "policy.secret_props").get("contentType")
    try:
        key, cert, chain = material.load_certificate_import(value, password=password, content_type=hint)
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    existing = _no_running_operation(vault, name)
    stamp = now()
    default_type = material.PEM_CONTENT_TYPE if _is_pem(value) else material.PKCS12_CONTENT_TYPE
    policy = build_policy(
        raw_policy,
        x509_props=x509_of(cert),
        key_props=key_props_of(key, as_object(raw_policy.get("key_props"), "policy.key_props")),
        issuer=parse_issuer(vault, raw_policy.get("issuer"), default="Unknown"),
        stamp=stamp,
        previous=existing.extra.get("policy") if existing else None,
        content_type=default_type,
    )
    attrs, tags = read_attributes(body), read_tags(body)
    check_free(vault, name)
    try:
        secret = material.export_secret_value(key, cert, chain, content_type=policy["secret_props"]["contentType"])
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    data = certificate_data(cert, pending=False)
    _preserve_order(body, data)
    item = add_versions(
        vault,
        name,
        version_id=new_version_id(),
        stamp=stamp,
        key=key,
        policy=policy,
        certificate=data,
        secret_value=secret,
        validity=validity_of(cert),
        enabled=attrs.get("enabled", True),
        tags=tags,
    )
    item.extra.pop("operation", None)  # an import answers without ``pending`` (recording)
    return Reply(certificate_bundle(vault, item, item.latest))


async def get_certificate(vault: Vault, call: Call) -> Reply:
    item = vault.certificates.get(call.params["name"])
    version_id = call.params.get("version", "")
    if not version_id:
        return Reply(certificate_bundle(vault, item, item.latest))
    advance(vault, item)
    return Reply(version_body(vault, item, get_version(KIND, item, version_id)))


async def update_certificate(vault: Vault, call: Call) -> Reply:
    body = call.json()
    item = vault.certificates.get(call.params["name"])
    advance(vault, item)
    version = get_version(KIND, item, call.params.get("version", ""))
    attrs = read_attributes(body)  # nbf/exp come from the certificate itself and are not changed here
    tags = read_tags(body) if "tags" in body else version.tags
    if body.get("policy") is not None:
        item.extra["policy"] = merged_policy(vault, item, as_object(body["policy"], "policy"))
    stamp = now()
    if "enabled" in attrs:
        op = item.extra.get("operation")
        if version.data.get("pending") and op and op["version"] == version.id and op["status"] == "inProgress":
            op["enabled"] = attrs["enabled"]  # applies once the issuance completes
        else:
            for linked in versions_of(vault, item, version.id):  # the key and secret follow (facts §13)
                linked.enabled = attrs["enabled"]
                linked.updated = stamp
    version.tags = tags
    version.updated = stamp
    if call.params.get("version"):
        return Reply(version_body(vault, item, version))
    return Reply(certificate_bundle(vault, item, version))


async def get_policy(vault: Vault, call: Call) -> Reply:
    return Reply(policy_body(vault, vault.certificates.get(call.params["name"])))


async def update_policy(vault: Vault, call: Call) -> Reply:
    item = vault.certificates.get(call.params["name"])
    item.extra["policy"] = merged_policy(vault, item, call.json())
    return Reply(policy_body(vault, item))
